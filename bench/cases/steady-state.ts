import { discoverNAT } from '../../src/index.js'
import { FakeClock, SimulatedPmpGateway } from '../../src/testing/index.js'
import type { Lab } from '../../test/lab/lab.js'
import { clearLeftovers, describeCounts, PortPool, requestsSince, totalRequests, type BenchContext } from '../lib/context.js'
import { verdict, type Section } from '../lib/report.js'
import { startRunner } from '../lib/runner.js'
import { withBenchLab } from './first-mapping.js'

/**
 * Benchmark 3: router requests per mapping-hour in steady state. Two measurements:
 * - natmapper against natmapper/testing's SimulatedPmpGateway on loopback with the FakeClock,
 *   over a week, counted by the simulated gateway. Router and client share the fake clock, so the
 *   server's epoch advances with the client's time, as on a real router.
 * - the peer against the lab's real miniupnpd over a simulated horizon (runners/steady.ts, the
 *   peer under node:test mock timers), counted from miniupnpd's log. natmapper is not run this
 *   way: miniupnpd's epoch follows real time, so after an hour of virtual time natmapper's epoch
 *   check (RFC 6887 §8.5) rightly concludes the router rebooted and re-maps, which is not
 *   steady state.
 * Steady state starts once the first mapping is granted: discovery and the first request are
 * benchmark 1's business.
 */

interface LabRow { label: string, hours: number, counts?: ReturnType<typeof requestsSince>, perHour?: number, detail: string }

async function labRun (lab: Lab, tool: string, label: string, port: number, hours: number): Promise<LabRow> {
  const runner = startRunner(lab, 'steady', [`--tool=${tool}`, `--port=${port}`, `--gateway=${lab.gatewayLanAddress}`, `--client=${lab.clientAddress}`, `--hours=${hours}`])
  try {
    await runner.next('mapped', 20_000)
    const from = lab.routerLog().length
    runner.send('go')
    const done = await runner.next('done', 300_000)
    const counts = requestsSince(lab, from)
    runner.send('cleanup')
    await runner.next('cleaned', 20_000)
    const extra = done.renewals !== undefined ? `; ${String(done.renewals)} renewals, ${String(done.lost)} lost` : ''
    return { label, hours, counts, perHour: totalRequests(counts) / hours, detail: `${(done.realMs as number / 1000).toFixed(1)} s real${extra}` }
  } catch (err) {
    return { label, hours, detail: `not measured: ${(err as Error).message.split('\n')[0] ?? ''}` }
  } finally {
    runner.kill()
    await runner.exited
    await clearLeftovers(lab)
  }
}

async function simulated (method: 'pcp' | 'natpmp', mappings: number, hours: number): Promise<{ perHour: number, requests: number, renewals: number, lost: number }> {
  const clock = new FakeClock(1_000_000)
  const router = await SimulatedPmpGateway.start({ clock, pcp: method === 'pcp' })
  try {
    const nat = await discoverNAT({ gateway: router.address, port: router.port, clock, announcements: false, methods: [method] })
    let renewals = 0
    let lost = 0
    nat.on('renewed', () => { renewals++ })
    nat.on('lost', () => { lost++ })
    nat.on('error', () => {})
    await Promise.all(Array.from({ length: mappings }, async (_v, i) => { await nat.addMapping('tcp', 41000 + i) }))
    const before = router.requestCount
    // Advance an hour at a time so the FakeClock interleaves loopback I/O with the timers.
    for (let h = 0; h < hours; h++) await clock.advance(3600_000)
    const requests = router.requestCount - before
    await nat.close()
    return { perHour: requests / mappings / hours, requests, renewals, lost }
  } finally {
    await router.close()
  }
}

export async function steadyState (ctx: BenchContext): Promise<Section> {
  const hours = ctx.quick ? 6 : 24
  const ports = new PortPool(32000)
  ctx.log(`3. steady state: the peer, ${hours} h simulated against the lab router`)
  const labRows = await withBenchLab({}, async (lab) => [
    await labRun(lab, 'peer-upnp', 'peer UPnP (default ttl 3 600 000 ms)', ports.take(), hours),
    await labRun(lab, 'peer-pmp', 'peer NAT-PMP (default ttl 3 600 000 ms)', ports.take(), hours)
  ])
  const simHours = ctx.quick ? 24 : 7 * 24
  const simMappings = 10
  ctx.log(`3. steady state: ${simHours} h on the simulated gateway with the FakeClock`)
  const sim = [
    { label: 'natmapper PCP', ...(await simulated('pcp', simMappings, simHours)) },
    { label: 'natmapper NAT-PMP', ...(await simulated('natpmp', simMappings, simHours)) }
  ]
  const rows = [
    ...sim.map((s) => [s.label, `SimulatedPmpGateway + FakeClock, ${simMappings} mappings × ${simHours} h`, String(s.requests), s.perHour.toFixed(2), `${s.renewals} renewals, ${s.lost} lost`]),
    ...labRows.map((r) => [r.label, `lab miniupnpd, ${r.hours} h simulated`, r.counts === undefined ? r.detail : describeCounts(r.counts),
      r.perHour === undefined ? '' : r.perHour.toFixed(2), r.counts === undefined ? '' : r.detail])
  ]
  const simWorst = Math.max(...sim.map((s) => s.perHour))
  return {
    id: 3,
    title: 'Router requests per mapping-hour in steady state',
    goal: 'at most 2 requests per mapping-hour (the seed\'s design cost about 300).',
    method: 'natmapper: 10 mappings on the simulated NAT-PMP/PCP gateway, which shares the FakeClock (so its epoch advances as a real router\'s does); the peer: one mapping on the lab\'s miniupnpd under node:test mock timers (setTimeout, Date) ticked 30 s at a time. After the first mapping is granted, virtual time runs for the horizon while the router is real (lab) or simulated; every request the router receives in that window is counted (miniupnpd -d log lines, or the simulated gateway\'s counter) and divided by mappings × hours.',
    columns: ['client', 'router, horizon', 'requests in the window', 'per mapping-hour', 'detail'],
    rows,
    verdicts: [
      verdict(simWorst <= 2, `natmapper on the simulated gateway over ${simHours} h: at most ${simWorst.toFixed(2)} per mapping-hour (target ≤ 2)`)
    ],
    notes: [
      'natmapper is not run against the lab router under virtual time: miniupnpd\'s epoch follows real time, so after an hour of virtual time natmapper\'s epoch check (RFC 6887 §8.5) correctly reads "the router rebooted" and re-maps. The lab test test/lab/nat.test.ts checks the real-time side: 45 s of steady state cost at most 1 request.',
      'natmapper renews at half the granted lifetime (RFC 6886 §3.3, RFC 6887 §11.2.1): 7200 s granted → one request per hour.',
      'The peer refreshes at ttl − 60 s; its UPnP lease is at least 3600 s and its NAT-PMP request carries the ttl in milliseconds as seconds (js-peers.md §1.1). The peer runs under mock timers, so its SSDP re-discovery after the description\'s max-age, if any, is counted too.'
    ]
  }
}
