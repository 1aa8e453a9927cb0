import type { Lab } from '../../test/lab/lab.js'
import { clearLeftovers, PortPool, wallNow, type BenchContext } from '../lib/context.js'
import { verdict, type Section } from '../lib/report.js'
import { startRunner } from '../lib/runner.js'
import { formatMs, formatSummary, summarize } from '../lib/stats.js'
import { withBenchLab } from './first-mapping.js'

/**
 * Benchmark 4: recovery after a router reboot. The tool keeps one TCP mapping to a listener in
 * lan; the router is rebooted (stopped, its chains flushed, started again on a new HTTP port);
 * from the moment it is up again (lab.restartRouter resolves when miniupnpd says it listens), a
 * prober in wan connects every few ms until the listener answers through the mapping.
 */

interface Variant {
  label: string
  router: 'full' | 'upnp-only'
  tool: 'natmapper' | 'peer-upnp' | 'peer-pmp'
  random?: '0' | 'rfc'
  /** Give up after this long (the peers refresh only after 59 min). */
  limitMs: number
  reps: number
}

interface Outcome {
  variant: Variant
  totals: number[]
  waits: number[]
  rests: number[]
  /** Random draws per reboot (each one a re-map of every mapping). */
  draws: number[]
  timeouts: number
  notMeasured: string | undefined
}

async function sample (lab: Lab, v: Variant, port: number, outcome: Outcome): Promise<void> {
  const listener = await lab.listen('lan', port, 'tcp')
  const runner = startRunner(lab, 'recovery', [`--tool=${v.tool}`, `--port=${port}`, `--gateway=${lab.gatewayLanAddress}`, `--client=${lab.clientAddress}`, `--random=${v.random ?? '0'}`])
  const waits: number[] = []
  try {
    const mapped = await runner.next('mapped', 20_000)
    if (mapped.ok !== true) {
      outcome.notMeasured = String(mapped.error)
      return
    }
    const externalPort = mapped.externalPort as number
    if (await lab.connect('wan', lab.externalAddress, externalPort) !== listener.token) throw new Error('the mapping did not work before the reboot')
    const prober = startRunner(lab, 'prober', [`--address=${lab.externalAddress}`, `--port=${externalPort}`, `--token=${listener.token}`, `--limit=${v.limitMs}`], 'wan')
    try {
      runner.take('wait')
      await lab.restartRouter({ httpPort: 0 })
      const upAt = wallNow()
      prober.send('go')
      const reachable = await prober.next('reachable', v.limitMs + 10_000)
      // Every random draw the NAT made since the reboot. The first is the wait before the re-map
      // that brought the mapping back; natmapper draws again when that re-map's reply shows the
      // epoch reset the ANNOUNCE already told it about (see bench/analysis.md).
      for (const w of runner.take('wait')) waits.push(w.ms as number)
      // Later draws come after the mapping is back; give them a moment to show up.
      await new Promise((resolve) => { setTimeout(resolve, v.random === 'rfc' ? 5500 : 0) })
      for (const w of runner.take('wait')) waits.push(w.ms as number)
      if (v.random === 'rfc') outcome.draws.push(waits.length)
      if (reachable.at === undefined) {
        outcome.timeouts++
      } else {
        const total = (reachable.at as number) - upAt
        outcome.totals.push(total)
        if (v.random === 'rfc') {
          const wait = waits[0] ?? 0
          outcome.waits.push(wait)
          outcome.rests.push(total - wait)
        }
      }
    } finally {
      prober.kill()
      await prober.exited
    }
  } finally {
    runner.send('cleanup')
    await runner.next('cleaned', 10_000).catch(() => undefined)
    runner.kill()
    await runner.exited
    await listener.close()
    await clearLeftovers(lab)
  }
}

export async function recovery (ctx: BenchContext): Promise<Section> {
  const peerLimit = 10_000
  const variants: Variant[] = [
    { label: 'natmapper, RFC random wait fixed at 0', router: 'full', tool: 'natmapper', random: '0', limitMs: 10_000, reps: ctx.reps },
    ...(ctx.quick ? [] : [{ label: 'natmapper, RFC random wait 0–5 s (Math.random)', router: 'full' as const, tool: 'natmapper' as const, random: 'rfc' as const, limitMs: 10_000, reps: ctx.reps }]),
    ...(ctx.quick ? [] : [{ label: 'peer NAT-PMP', router: 'full' as const, tool: 'peer-pmp' as const, limitMs: peerLimit, reps: ctx.reps }]),
    { label: 'natmapper (discoverNAT)', router: 'upnp-only', tool: 'natmapper', random: '0', limitMs: ctx.quick ? 2000 : 10_000, reps: ctx.quick ? 1 : ctx.reps },
    ...(ctx.quick ? [] : [{ label: 'peer UPnP', router: 'upnp-only' as const, tool: 'peer-upnp' as const, limitMs: peerLimit, reps: ctx.reps }])
  ]
  const outcomes: Outcome[] = variants.map((variant) => ({ variant, totals: [], waits: [], rests: [], draws: [], timeouts: 0, notMeasured: undefined }))
  const ports = new PortPool(33000)
  for (const router of ['full', 'upnp-only'] as const) {
    ctx.log(`4. recovery after a reboot: ${router} router`)
    await withBenchLab(router === 'full' ? {} : { natpmp: false }, async (lab) => {
      const mine = outcomes.filter((o) => o.variant.router === router)
      const maxReps = Math.max(...mine.map((o) => o.variant.reps))
      for (let rep = 0; rep < maxReps; rep++) {
        for (const o of rep % 2 === 0 ? mine : [...mine].reverse()) {
          if (rep >= o.variant.reps || o.notMeasured !== undefined) continue
          // Two samples that never came back within the bound say enough; more only cost time.
          if (o.timeouts >= 2 && o.totals.length === 0) continue
          await sample(lab, o.variant, ports.take(), o).catch((err: unknown) => {
            if (o.totals.length === 0) o.notMeasured = (err as Error).message.split('\n')[0]
          })
        }
      }
    })
  }
  const rows = outcomes.map((o) => {
    const router = o.variant.router === 'full' ? 'PCP + NAT-PMP + UPnP' : 'UPnP only'
    if (o.notMeasured !== undefined && o.totals.length === 0) return [o.variant.label, router, `not measured: ${o.notMeasured}`, '', '']
    const total = summarize(o.totals)
    const n = o.totals.length + o.timeouts
    const timeouts = o.timeouts === 0 ? '' : `${o.timeouts} of ${n} not back within ${formatMs(o.variant.limitMs)}`
    return [
      o.variant.label,
      router,
      total === undefined ? `not back within ${formatMs(o.variant.limitMs)} (${n} of ${n})` : formatSummary(total) + (timeouts === '' ? '' : `; ${timeouts}`),
      o.waits.length === 0 ? (o.variant.router === 'upnp-only' ? 'none (no RFC wait for UPnP)' : o.variant.random === '0' ? '0 (fixed)' : '') : formatSummary(summarize(o.waits)),
      o.rests.length === 0 ? (o.variant.random === '0' && total !== undefined ? formatSummary(total) : '') : formatSummary(summarize(o.rests))
    ]
  })
  const zero = summarize(outcomes[0]!.totals)
  const rfc = summarize(outcomes.find((o) => o.variant.random === 'rfc')?.rests ?? [])
  const upnp = outcomes.find((o) => o.variant.router === 'upnp-only' && o.variant.tool === 'natmapper')!
  const upnpTotal = summarize(upnp.totals)
  return {
    id: 4,
    title: 'Recovery after a router reboot',
    goal: 'UPnP-only router: back and reachable within 1 s; PCP/NAT-PMP router: nothing beyond the RFC\'s random 0–5 s wait (the wait and the rest reported apart).',
    method: 'the tool keeps one TCP mapping to a listener in lan; the router is rebooted (miniupnpd stopped, its nftables chains flushed, started again on a new HTTP port); from the moment it listens again a prober in wan connects every 5 ms until the listener answers through the mapping. Wall clocks of the two processes are compared (same machine).',
    columns: ['client', 'router', 'up → reachable, median (min–max, n)', 'of which the RFC random wait', 'the rest'],
    rows,
    verdicts: [
      verdict(zero === undefined ? undefined : zero.median <= 250,
        `PCP router, random wait 0: back ${zero === undefined ? 'n/a' : formatMs(zero.median)} after the router is up (goal: nothing beyond the wait; judged as ≤ 250 ms)`),
      ...(rfc === undefined ? [] : [verdict(rfc.median <= 250, `PCP router with the RFC wait: ${formatMs(rfc.median)} beyond the drawn wait`)]),
      verdict(upnpTotal === undefined ? undefined : upnpTotal.median <= 1000,
        `UPnP-only router: ${upnpTotal === undefined ? `not measured (${upnp.notMeasured ?? 'no sample'})` : formatMs(upnpTotal.median)} (target ≤ 1 s)`)
    ],
    notes: [
      ...(outcomes.some((o) => o.draws.length > 0)
        ? [`Random waits drawn per reboot by natmapper (each draw is one re-map of every mapping): ${outcomes.flatMap((o) => o.draws).join(', ')}.`]
        : []),
      'natmapper hears miniupnpd\'s PCP ANNOUNCE / NAT-PMP address packet sent at start-up (224.0.0.1:5350) and re-maps after the RFC 6887 §14.1.3 / RFC 6886 §3.2.1 random wait; `random` is passed through discoverNAT options so the wait is known.',
      `The peers have no reboot detection: their mappings come back at the next refresh, 59 min after mapping; the bound here is ${formatMs(peerLimit)}.`
    ]
  }
}
