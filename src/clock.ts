import { AbortError } from './errors.js'

/**
 * Time enters natmapper through this interface only, so that retransmission, renewal and
 * epoch checks can be driven by a fake clock in tests (see natmapper/testing's FakeClock)
 * instead of real sleeps.
 */
export interface Clock {
  /** Milliseconds on a monotonic scale; only differences are meaningful. */
  now(): number
  setTimeout(callback: () => void, delayMs: number): TimerHandle
  clearTimeout(handle: TimerHandle): void
}

export interface TimerHandle {
  /** Keeps a real timer from holding the process open; a no-op on fake clocks. */
  unref?(): void
}

// process.hrtime, not performance.now: the performance global loads perf_hooks on first use, a
// millisecond or two of a fresh process's first mapping. Counted from module load, as
// performance.now counts from process start, so that values stay small and sums of times exact
// enough (an expiry minus its grant time gives back the lifetime).
const origin = process.hrtime.bigint()

export const systemClock: Clock = {
  now: () => Number(process.hrtime.bigint() - origin) / 1e6,
  setTimeout: (callback, delayMs) => setTimeout(callback, delayMs),
  clearTimeout: (handle) => { clearTimeout(handle as ReturnType<typeof setTimeout>) }
}

/**
 * Resolves after `delayMs` on the given clock, or rejects with the signal's AbortError.
 */
export async function sleep (clock: Clock, delayMs: number, signal?: AbortSignal): Promise<void> {
  if (signal?.aborted === true) throw new AbortError(signal.reason)
  await new Promise<void>((resolve, reject) => {
    const onAbort = (): void => {
      clock.clearTimeout(handle)
      reject(new AbortError(signal?.reason))
    }
    const handle = clock.setTimeout(() => {
      signal?.removeEventListener('abort', onAbort)
      resolve()
    }, delayMs)
    signal?.addEventListener('abort', onAbort, { once: true })
  })
}
