import type { Lab } from '../../test/lab/lab.js'
import { clearLeftovers, describeCounts, requestsSince, type BenchContext } from '../lib/context.js'
import { verdict, type Section } from '../lib/report.js'
import { startRunner } from '../lib/runner.js'
import { formatMs, formatSummary, summarize } from '../lib/stats.js'
import { withBenchLab } from './first-mapping.js'

/**
 * Benchmark 5: many TCP mappings from port 20000 at once, then close() removing them all.
 * - 1,000 on natmapper/testing's SimulatedPmpGateway, in its own process on the lan namespace's
 *   loopback: the client's own cost (time, memory, requests), which is what natmapper controls.
 * - fewer on the lab's miniupnpd, whose nftables chain is read after each phase: miniupnpd
 *   2.3.1's time per request grows with the number of rules it holds (measured: about 6 ms more
 *   per rule on this machine, so the 1,000th mapping alone would take seconds), which makes
 *   1,000 mappings on it a benchmark of miniupnpd, not of the client.
 */

const FIRST = 20000

interface Sample {
  count: number
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
  baseHeapMiB: number
  mappedHeapMiB: number
  error: string | undefined
}

interface Target {
  /** Number of mappings held by the router: nft rules (lab) or the simulated table. */
  rules: () => Promise<number>
  mark: () => Promise<unknown>
  requestsSince: (mark: unknown) => Promise<string>
  gatewayArgs: string[]
  settle: () => Promise<void>
}

async function sample (lab: Lab, target: Target, tool: string, count: number, limitMs: number): Promise<Sample> {
  const runner = startRunner(lab, 'scale', [`--tool=${tool}`, `--first=${FIRST}`, `--count=${count}`, `--client=${lab.clientAddress}`, `--limit=${limitMs}`, ...target.gatewayArgs])
  try {
    const ready = await runner.next('ready', 20_000)
    const m0 = await target.mark()
    runner.send('map')
    const mapped = await runner.next('mapped', limitMs + 30_000)
    await new Promise((resolve) => { setTimeout(resolve, 100) })
    const mapRequests = await target.requestsSince(m0)
    const m1 = await target.mark()
    const rulesAfterMap = await target.rules()
    runner.send('close')
    const closed = await runner.next('closed', limitMs + 30_000)
    await new Promise((resolve) => { setTimeout(resolve, 100) })
    const rulesAfterClose = await target.rules()
    const closeRequests = await target.requestsSince(m1)
    const errors = await runner.next('errors', 5000)
    return {
      count,
      mapMs: mapped.ms as number,
      closeMs: closed.ms as number,
      mapped: mapped.ok as number,
      rulesAfterMap,
      rulesAfterClose,
      mapRequests,
      closeRequests,
      baseRssMiB: ready.rssMiB as number,
      peakRssMiB: Math.max(mapped.peakRssMiB as number, closed.peakRssMiB as number),
      afterRssMiB: closed.rssMiB as number,
      baseHeapMiB: ready.heapUsedMiB as number,
      mappedHeapMiB: mapped.heapUsedMiB as number,
      error: (mapped.error ?? closed.error ?? ((errors.total as number) > 0 ? `${String(errors.total)} errors, e.g. ${String((errors.errors as string[])[0])}` : undefined)) as string | undefined
    }
  } finally {
    runner.kill()
    await runner.exited
    await target.settle()
  }
}

interface Variant { tool: string, label: string, where: 'simulated' | 'lab', count: number, limitMs: number, reps: number }

export async function scale (ctx: BenchContext): Promise<Section> {
  const labCount = 20
  const variants: Variant[] = [
    { tool: 'natmapper', label: 'natmapper (PCP)', where: 'simulated', count: 1000, limitMs: 30_000, reps: ctx.quick ? 1 : 5 },
    ...(ctx.quick ? [] : [{ tool: 'peer-pmp', label: 'peer NAT-PMP', where: 'simulated' as const, count: 1000, limitMs: 30_000, reps: 3 }]),
    ...(ctx.quick ? [] : [{ tool: 'natmapper', label: 'natmapper (PCP)', where: 'lab' as const, count: labCount, limitMs: 60_000, reps: 1 }])
  ]
  const results = new Map<Variant, Sample[]>(variants.map((v) => [v, []]))
  ctx.log(`5. scale: 1000 mappings on the simulated gateway${ctx.quick ? '' : `, ${labCount} on the lab router`}`)
  await withBenchLab({}, async (lab) => {
    const simulator = startRunner(lab, 'sim-gateway', ['--address=127.0.0.1', '--port=5351'])
    try {
      await simulator.next('ready', 10_000)
      const count = async (): Promise<Record<string, number>> => { simulator.send('count'); return await simulator.next('count', 5000) }
      const simulated: Target = {
        rules: async () => (await count()).mappings!,
        mark: async () => await count(),
        requestsSince: async (mark) => {
          const now = await count()
          const before = mark as Record<string, number>
          return describeCounts({ pcp: now.pcp! - before.pcp!, natpmp: now.natpmp! - before.natpmp!, http: 0, ssdp: 0 })
        },
        gatewayArgs: ['--gateway=127.0.0.1', '--gateway-port=5351'],
        settle: async () => {}
      }
      const real: Target = {
        rules: async () => (await lab.rules()).dnat.length,
        mark: async () => lab.routerLog().length,
        requestsSince: async (mark) => describeCounts(requestsSince(lab, mark as number)),
        gatewayArgs: [`--gateway=${lab.gatewayLanAddress}`],
        settle: async () => { await clearLeftovers(lab) }
      }
      const maxReps = Math.max(...variants.map((v) => v.reps))
      for (let rep = 0; rep < maxReps; rep++) {
        for (const v of rep % 2 === 0 ? variants : [...variants].reverse()) {
          if (rep >= v.reps) continue
          results.get(v)!.push(await sample(lab, v.where === 'lab' ? real : simulated, v.tool, v.count, v.limitMs))
        }
      }
      simulator.send('exit')
    } finally {
      simulator.kill()
      await simulator.exited
    }
  })
  const mib = (v: number): string => `${v.toFixed(1)} MiB`
  const rows = variants.map((v) => {
    const s = results.get(v)!
    const median = (f: (x: Sample) => number): string => formatSummary(summarize(s.map(f)))
    const last = s[s.length - 1]!
    return [
      v.label,
      v.where === 'lab' ? `lab miniupnpd, ${v.count} mappings` : `SimulatedPmpGateway (own process), ${v.count} mappings`,
      `${last.mapped}/${v.count} granted; router holds ${last.rulesAfterMap}`,
      median((x) => x.mapMs),
      median((x) => x.closeMs),
      `${last.rulesAfterClose}`,
      `${formatSummary(summarize(s.map((x) => x.peakRssMiB)), mib)} (base ${mib(last.baseRssMiB)}, after ${mib(last.afterRssMiB)})`,
      `${mib(last.baseHeapMiB)} → ${mib(last.mappedHeapMiB)}`,
      `map: ${last.mapRequests}; close: ${last.closeRequests}`,
      last.error ?? ''
    ]
  })
  const ours = results.get(variants[0]!)!
  const mapMedian = summarize(ours.map((x) => x.mapMs))?.median ?? NaN
  const closeMedian = summarize(ours.map((x) => x.closeMs))?.median ?? NaN
  const peakGrowth = Math.max(...ours.map((x) => x.peakRssMiB - x.baseRssMiB))
  const allMapped = ours.every((x) => x.mapped === x.count && x.rulesAfterMap === x.count)
  const labSamples = [...results].filter(([v]) => v.where === 'lab').flatMap(([, s]) => s)
  const labClean = labSamples.every((x) => x.rulesAfterClose === 0)
  const labAll = labSamples.every((x) => x.mapped === x.count)
  return {
    id: 5,
    title: 'Scale: 1,000 TCP mappings on one gateway (ports 20000–20999)',
    goal: '2 s each way with PCP, flat memory, nothing left behind.',
    method: 'one runner process per sample in lan maps all ports at once (Promise.all of addMapping), then close(); the router\'s table is read after each phase (the simulated gateway\'s own table, or miniupnpd\'s nftables chain); RSS is sampled every 5 ms. The simulated gateway runs in a process of its own on the lan namespace\'s loopback (127.0.0.1:5351, where the peer\'s NAT-PMP client also finds it).',
    columns: ['client', 'router', 'result', 'map all, median (min–max, n)', 'remove all', 'left on the router', 'peak RSS', 'JS heap used: before → all mapped', 'router requests (last sample)', 'errors'],
    rows,
    verdicts: [
      verdict(mapMedian <= 2000 && allMapped, `1,000 on the simulated gateway, map all: ${formatMs(mapMedian)}${allMapped ? '' : ' (not all mapped)'} (target ≤ 2 s)`),
      verdict(closeMedian <= 2000 && ours.every((x) => x.rulesAfterClose === 0), `remove all: ${formatMs(closeMedian)} (target ≤ 2 s, nothing left)`),
      verdict(peakGrowth <= 50, `memory: peak RSS at most ${peakGrowth.toFixed(1)} MiB over the base for 1,000 mappings (judged flat at ≤ 50 MiB, about 50 KiB per mapping)`),
      ...(labSamples.length === 0
        ? []
        : [verdict(labAll && labClean, `lab router, ${labCount} mappings: ${labAll ? 'all granted' : 'not all granted'}, ${labClean ? 'nftables chain empty after close()' : 'rules left in the nftables chain after close()'}`)])
    ],
    notes: [
      'miniupnpd 2.3.1 (nftables) walks its whole rule set for every request: one PCP MAP at a time, with no retransmission, took 86 ms at 0–25 rules and 867 ms at 125–150 rules on this machine (2 cores, shared), so 1,000 mappings on it would take most of an hour whatever the client. The lab row therefore uses fewer mappings; it checks that everything is granted and nothing is left in the chain.'
    ]
  }
}
