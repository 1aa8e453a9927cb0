import type { Lab } from '../../test/lab/lab.js'
import { clearLeftovers, describeCounts, requestsSince, type BenchContext } from '../lib/context.js'
import { verdict, type Section } from '../lib/report.js'
import { startRunner } from '../lib/runner.js'
import { formatMs, formatSummary, summarize } from '../lib/stats.js'
import { withBenchLab } from './first-mapping.js'

/**
 * Benchmark 5: 1,000 TCP mappings (ports 20000-20999) on the lab router at once, then close()
 * removing them all. The router's nftables chain is read after each phase: 1,000 DNAT rules,
 * then none.
 */

const FIRST = 20000
const COUNT = 1000

interface Sample {
  mapMs: number
  closeMs: number
  mapped: number
  rulesAfterMap: number
  rulesAfterClose: number
  mapRequests: string
  closeRequests: string
  baseRssMiB: number
  peakRssMiB: number
  afterRssMiB: number
  error: string | undefined
}

async function sample (lab: Lab, tool: string, limitMs: number): Promise<Sample> {
  const runner = startRunner(lab, 'scale', [`--tool=${tool}`, `--first=${FIRST}`, `--count=${COUNT}`, `--gateway=${lab.gatewayLanAddress}`, `--client=${lab.clientAddress}`, `--limit=${limitMs}`])
  try {
    const ready = await runner.next('ready', 20_000)
    const m0 = lab.routerLog().length
    runner.send('map')
    const mapped = await runner.next('mapped', limitMs + 30_000)
    await new Promise((resolve) => { setTimeout(resolve, 100) })
    const m1 = lab.routerLog().length
    const rulesAfterMap = (await lab.rules()).dnat.length
    runner.send('close')
    const closed = await runner.next('closed', limitMs + 30_000)
    await new Promise((resolve) => { setTimeout(resolve, 100) })
    const rulesAfterClose = (await lab.rules()).dnat.length
    const errors = await runner.next('errors', 5000)
    return {
      mapMs: mapped.ms as number,
      closeMs: closed.ms as number,
      mapped: mapped.ok as number,
      rulesAfterMap,
      rulesAfterClose,
      mapRequests: describeCounts(requestsSince(lab, m0, m1)),
      closeRequests: describeCounts(requestsSince(lab, m1)),
      baseRssMiB: ready.rssMiB as number,
      peakRssMiB: Math.max(mapped.peakRssMiB as number, closed.peakRssMiB as number),
      afterRssMiB: closed.rssMiB as number,
      error: (mapped.error ?? closed.error ?? ((errors.total as number) > 0 ? `${String(errors.total)} errors, e.g. ${String((errors.errors as string[])[0])}` : undefined)) as string | undefined
    }
  } finally {
    runner.kill()
    await runner.exited
    await clearLeftovers(lab)
  }
}

export async function scale (ctx: BenchContext): Promise<Section> {
  const reps = ctx.quick ? 1 : 3
  const tools = ctx.quick
    ? [{ tool: 'natmapper', label: 'natmapper (PCP)', limitMs: 30_000 }]
    : [
        { tool: 'natmapper', label: 'natmapper (PCP)', limitMs: 60_000 },
        { tool: 'peer-pmp', label: 'peer NAT-PMP', limitMs: 60_000 },
        { tool: 'peer-upnp', label: 'peer UPnP', limitMs: 60_000 }
      ]
  const results = new Map<string, Sample[]>(tools.map((t) => [t.tool, []]))
  ctx.log(`5. scale: ${COUNT} mappings, ${reps} sample(s) per tool`)
  await withBenchLab({}, async (lab) => {
    for (let rep = 0; rep < reps; rep++) {
      for (const t of rep % 2 === 0 ? tools : [...tools].reverse()) {
        results.get(t.tool)!.push(await sample(lab, t.tool, t.limitMs))
      }
    }
  })
  const rows = tools.map((t) => {
    const s = results.get(t.tool)!
    const median = (f: (x: Sample) => number): string => formatSummary(summarize(s.map(f)))
    const mib = (v: number): string => `${v.toFixed(1)} MiB`
    const last = s[s.length - 1]!
    return [
      t.label,
      `${last.mapped}/${COUNT} granted; ${last.rulesAfterMap} rules on the router`,
      median((x) => x.mapMs),
      median((x) => x.closeMs),
      `${last.rulesAfterClose} rules left`,
      `${formatSummary(summarize(s.map((x) => x.peakRssMiB)), mib)} (base ${mib(last.baseRssMiB)}, after ${mib(last.afterRssMiB)})`,
      `map: ${last.mapRequests}; close: ${last.closeRequests}`,
      last.error ?? ''
    ]
  })
  const ours = results.get('natmapper')!
  const mapMedian = summarize(ours.map((x) => x.mapMs))?.median ?? NaN
  const closeMedian = summarize(ours.map((x) => x.closeMs))?.median ?? NaN
  const peakGrowth = Math.max(...ours.map((x) => x.peakRssMiB - x.baseRssMiB))
  const allMapped = ours.every((x) => x.mapped === COUNT && x.rulesAfterMap === COUNT)
  const noneLeft = ours.every((x) => x.rulesAfterClose === 0)
  return {
    id: 5,
    title: `Scale: ${COUNT.toLocaleString('en')} TCP mappings on one gateway (ports ${FIRST}–${FIRST + COUNT - 1})`,
    goal: '2 s each way with PCP, flat memory, nothing left behind.',
    method: `one runner process per sample in lan maps all ports at once (Promise.all of addMapping), then close(); the nftables chain is read after each phase; RSS is sampled every 5 ms; ${reps} sample(s) per tool.`,
    columns: ['client', 'result', 'map all, median (min–max, n)', 'remove all', 'after removal', 'peak RSS', 'router requests (last sample)', 'errors'],
    rows,
    verdicts: [
      verdict(mapMedian <= 2000 && allMapped, `map all: ${formatMs(mapMedian)}${allMapped ? '' : ' (not all mapped)'} (target ≤ 2 s)`),
      verdict(closeMedian <= 2000 && noneLeft, `remove all: ${formatMs(closeMedian)}, ${noneLeft ? 'nothing left on the router' : 'rules left on the router'} (target ≤ 2 s, nothing left)`),
      verdict(peakGrowth <= 50, `memory: peak RSS grows by at most ${peakGrowth.toFixed(1)} MiB over the base for ${COUNT} mappings (judged flat at ≤ 50 MiB, about 50 KiB per mapping)`)
    ],
    notes: []
  }
}
