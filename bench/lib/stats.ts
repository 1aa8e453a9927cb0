/** Small statistics for benchmark samples: medians, not means, since a few slow runs are normal. */

export interface Summary {
  n: number
  median: number
  min: number
  max: number
}

export function summarize (samples: number[]): Summary | undefined {
  if (samples.length === 0) return undefined
  const sorted = [...samples].sort((a, b) => a - b)
  const mid = Math.floor(sorted.length / 2)
  const median = sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2
  return { n: sorted.length, median, min: sorted[0]!, max: sorted[sorted.length - 1]! }
}

/** `12.3 ms`, `1.24 s`: three significant digits are plenty for these measurements. */
export function formatMs (ms: number): string {
  if (ms >= 10_000) return `${(ms / 1000).toFixed(1)} s`
  if (ms >= 1000) return `${(ms / 1000).toFixed(2)} s`
  if (ms >= 100) return `${ms.toFixed(0)} ms`
  if (ms >= 10) return `${ms.toFixed(1)} ms`
  return `${ms.toFixed(2)} ms`
}

/** `12.3 ms (min 11.0, max 15.2, n=7)` */
export function formatSummary (s: Summary | undefined, format: (v: number) => string = formatMs): string {
  if (s === undefined) return '—'
  if (s.n === 1) return `${format(s.median)} (n=1)`
  return `${format(s.median)} (${format(s.min)}–${format(s.max)}, n=${s.n})`
}

export function formatBytes (bytes: number): string {
  if (bytes >= 1024 * 1024) return `${(bytes / 1024 / 1024).toFixed(2)} MiB`
  if (bytes >= 1024) return `${(bytes / 1024).toFixed(0)} KiB`
  return `${bytes} B`
}

/** `27×`, `3.7×`, `1.96×` (two decimals below 3, where the targets 1.5× and 2× sit) */
export function formatRatio (ratio: number): string {
  if (ratio >= 10) return `${ratio.toFixed(0)}×`
  return ratio >= 3 ? `${ratio.toFixed(1)}×` : `${ratio.toFixed(2)}×`
}
