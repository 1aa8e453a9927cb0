import { test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { NAT } from '../../src/nat/nat.js'
import { expandRequests, MAX_BULK_PORTS } from '../../src/nat/bulk.js'
import { PcpClient } from '../../src/port-control/pcp-client.js'
import { NatPmpClient } from '../../src/port-control/natpmp-client.js'
import { SimulatedPmpGateway } from '../../src/testing/pmp-gateway.js'
import { FakeClock } from '../../src/testing/fake-clock.js'
import { AbortError, EntryNotOursError, GatewayRefusedError, UsageError } from '../../src/errors.js'
import { UpnpClient } from '../../src/upnp/client.js'
import type { SimulatedIgd } from '../../src/testing/igd.js'
import { discoverOptions, startIgd } from '../upnp/setup.js'

/** A seeded generator (mulberry32): the same "random" renewal times at every run. */
function seeded (seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

async function pmp (ctx: TestContext, method: 'pcp' | 'natpmp', options: { maxMappings?: number, random?: () => number, keep?: boolean } = {}) {
  const clock = new FakeClock()
  const gateway = await SimulatedPmpGateway.start({ clock, ...(options.maxMappings === undefined ? {} : { maxMappings: options.maxMappings }) })
  const client = method === 'pcp' ? new PcpClient({ gateway: gateway.address, port: gateway.port, clock }) : new NatPmpClient({ gateway: gateway.address, port: gateway.port, clock })
  const nat = new NAT(client, { clock, random: options.random ?? seeded(1), keep: options.keep ?? true })
  nat.on('error', () => {})
  ctx.after(async () => { await nat.close(); await gateway.close() })
  return { clock, gateway, nat }
}

async function upnp (ctx: TestContext, igdVersion: 1 | 2, configure?: (igd: SimulatedIgd) => void) {
  const clock = new FakeClock()
  const igd = await startIgd(ctx, { clock, igdVersion })
  configure?.(igd)
  const client = await UpnpClient.discover({ ...discoverOptions(igd), clock })
  const nat = new NAT(client, { clock, random: seeded(2) })
  nat.on('error', () => {})
  ctx.after(async () => { await nat.close() })
  return { clock, igd, nat }
}

const range = (first: number, last: number): number[] => Array.from({ length: last - first + 1 }, (_v, i) => first + i)

test('expandRequests: ports and ranges in order; a bad, backwards, repeated or oversized request is a UsageError naming it', () => {
  assert.deepEqual(expandRequests([{ protocol: 'tcp', port: 4001 }, { protocol: 'udp', ports: [5000, 5002] }]).map((p) => `${p.protocol}/${p.internalPort}`),
    ['tcp/4001', 'udp/5000', 'udp/5001', 'udp/5002'])
  const rejects = (requests: unknown, pattern: RegExp): void => {
    assert.throws(() => expandRequests(requests), (err: Error) => err instanceof UsageError && pattern.test(err.message), String(pattern))
  }
  rejects('5000', /expected an array/)
  rejects([{ protocol: 'sctp', port: 1 }], /requests\[0\]: invalid protocol "sctp"/)
  rejects([{ protocol: 'udp', ports: [10, 5] }], /requests\[0\]: range 10-5 goes backwards/)
  rejects([{ protocol: 'tcp', ports: [0, 3] }], /requests\[0\]: first port: 0 is not a port/)
  rejects([{ protocol: 'udp', ports: [1, 70000] }], /last port: 70000 is not a port/)
  rejects([{ protocol: 'udp', port: '4001' }], /"4001" is not a port/)
  rejects([{ protocol: 'udp', ports: [5000, 5010] }, { protocol: 'udp', port: 5005 }], /requests\[1\]: udp port 5005 is already asked for by requests\[0\]/)
  rejects([{ protocol: 'udp', ports: [1, MAX_BULK_PORTS + 1] }], /too many ports: at most 4096/)
  // The same port number on the other protocol is another mapping.
  assert.equal(expandRequests([{ protocol: 'udp', port: 5005 }, { protocol: 'tcp', port: 5005 }]).length, 2)
})

test('addMappings on PCP: a range with a port taken in the middle: one result per port, in order, the taken one on another external port', async (ctx) => {
  const { gateway, nat } = await pmp(ctx, 'pcp')
  gateway.occupy(5005, 'udp')
  const results = await nat.addMappings([{ protocol: 'udp', ports: [5000, 5009] }])
  assert.deepEqual(results.map((r) => r.internalPort), range(5000, 5009))
  for (const r of results) assert.ok(r.mapping !== undefined, `${r.internalPort}: ${r.error?.message ?? ''}`)
  const external = results.map((r) => r.mapping!.externalPort)
  assert.notEqual(external[5], 5005, 'not the port another host holds')
  assert.equal(new Set([...external, 5005]).size, 11, 'every external port distinct')
  assert.deepEqual(external.slice(0, 5), range(5000, 5004), 'the ports below it on their own')
  // Above it, the router hands out the next free port (miniupnpd's search): a port taken by the one before moves up too.
  for (const r of results) assert.equal(r.mapping!.internalPort, r.internalPort)
  await nat.close()
  assert.deepEqual(gateway.mappings().map((m) => m.externalPort), [5005], 'only the other host\'s entry left')
})

test('addMappings on UPnP IGD v2: another host\'s entry in the middle of the range: that port mapped elsewhere, the others on their own', async (ctx) => {
  const { igd, nat } = await upnp(ctx, 2, (i) => { i.occupy(5005, 'UDP') })
  const results = await nat.addMappings([{ protocol: 'udp', ports: [5000, 5009] }])
  assert.deepEqual(results.map((r) => r.internalPort), range(5000, 5009))
  const byPort = new Map(results.map((r) => [r.internalPort, r]))
  for (const p of range(5000, 5009).filter((p) => p !== 5005)) assert.equal(byPort.get(p)?.mapping?.externalPort, p)
  const moved = byPort.get(5005)
  assert.ok(moved?.mapping !== undefined && moved.mapping.externalPort !== 5005, moved?.error?.message)
  await nat.close()
  assert.deepEqual(igd.mappings().map((m) => `${m.externalPort} ${m.internalClient}`), ['5005 192.0.2.99'], 'only the other host\'s entry left')
})

for (const [method, result] of [['pcp', /NO_RESOURCES \(8\)/], ['natpmp', /OUT_OF_RESOURCES \(4\)/]] as const) {
  test(`addMappings on a ${method} router that allows only 32 mappings: the first 32 mapped, the other 8 fail with ${String(result)} (kept, retried), nothing left after close`, async (ctx) => {
    const { gateway, nat } = await pmp(ctx, method, { maxMappings: 32 })
    const results = await nat.addMappings([{ protocol: 'udp', ports: [6000, 6039] }])
    assert.deepEqual(results.filter((r) => r.mapping !== undefined).map((r) => r.internalPort), range(6000, 6031))
    const failed = results.filter((r) => r.error !== undefined)
    assert.deepEqual(failed.map((r) => r.internalPort), range(6032, 6039))
    for (const r of failed) {
      assert.ok(r.error instanceof GatewayRefusedError && result.test(r.error.message), r.error?.message)
      assert.equal(r.mapping === undefined && 'retrying' in r && r.retrying, true, 'kept and retried in the background')
    }
    assert.equal(gateway.mappings().length, 32)
    assert.deepEqual(await nat.close(), [])
    assert.deepEqual(gateway.mappings(), [])
  })
}

test('addMappings on a UPnP router that allows only 32 mappings: the first 32 mapped, the rest fail with 728 NoPortMapsAvailable, nothing left after close', async (ctx) => {
  const { igd, nat } = await upnp(ctx, 2, (i) => { i.quirks.maxMappings = 32 })
  const results = await nat.addMappings([{ protocol: 'udp', ports: [6000, 6039] }])
  assert.deepEqual(results.filter((r) => r.mapping !== undefined).map((r) => r.internalPort), range(6000, 6031))
  const failed = results.filter((r) => r.error !== undefined)
  assert.deepEqual(failed.map((r) => r.internalPort), range(6032, 6039))
  for (const r of failed) assert.ok(r.error instanceof GatewayRefusedError && r.error.resultCode === 728, r.error?.message)
  assert.equal(igd.mappings().length, 32)
  assert.deepEqual(await nat.close(), [])
  assert.deepEqual(igd.mappings(), [])
})

test('addMappings with keep: false (map --once): failures are not retried', async (ctx) => {
  const { nat } = await pmp(ctx, 'pcp', { maxMappings: 2, keep: false })
  const results = await nat.addMappings([{ protocol: 'tcp', ports: [7000, 7002] }])
  assert.deepEqual(results.map((r) => r.mapping === undefined ? `${r.internalPort} retrying ${String(r.retrying)}` : `${r.internalPort} mapped`), ['7000 mapped', '7001 mapped', '7002 retrying false'])
})

test('addMappings: an abort ends the attempts not yet made, each with an AbortError; the ports mapped stay mapped', async (ctx) => {
  const { gateway, nat } = await pmp(ctx, 'pcp')
  gateway.faults.delayMs = 10
  const stop = new AbortController()
  const pending = nat.addMappings([{ protocol: 'udp', ports: [8000, 8039] }], { signal: stop.signal })
  stop.abort()
  const results = await pending
  assert.equal(results.length, 40)
  for (const r of results) assert.ok(r.mapping !== undefined || r.error instanceof AbortError, r.error?.message)
  assert.ok(results.some((r) => r.error instanceof AbortError))
  assert.equal(nat.mappings().length, results.filter((r) => r.mapping !== undefined).length)
  await assert.rejects(nat.addMappings([{ protocol: 'udp', port: 1 }], { signal: stop.signal }), AbortError)
})

test('renewals of 256 mappings made together are spread over 1/2-5/8 of the lifetime (no minute holds more than 40), and the steady state costs <= 1 request per mapping-hour', async (ctx) => {
  const { clock, gateway, nat } = await pmp(ctx, 'pcp', { random: seeded(7) })
  const results = await nat.addMappings([{ protocol: 'udp', ports: [49387, 49642] }])
  assert.equal(results.filter((r) => r.mapping !== undefined).length, 256)
  const from = gateway.received.length
  const hours = 24
  for (let h = 0; h < hours; h++) await clock.advance(3600_000)
  const renewals = gateway.received.slice(from)
  const firstRound = renewals.filter((r) => r.atMs < 5000_000)
  assert.equal(firstRound.length, 256, 'each renewed once in the first window')
  const perMinute = new Map<number, number>()
  for (const r of firstRound) perMinute.set(Math.floor(r.atMs / 60_000), (perMinute.get(Math.floor(r.atMs / 60_000)) ?? 0) + 1)
  const times = firstRound.map((r) => r.atMs)
  assert.ok(Math.min(...times) >= 3600_000 && Math.max(...times) <= 4500_000, 'within 1/2 and 5/8 of 7200 s')
  assert.ok(Math.max(...perMinute.values()) <= 40, `busiest minute: ${Math.max(...perMinute.values())} renewals`)
  assert.ok(perMinute.size >= 12, `spread over ${perMinute.size} minutes`)
  const perMappingHour = renewals.length / 256 / hours
  assert.ok(perMappingHour <= 1, `${perMappingHour.toFixed(3)} requests per mapping-hour`)
  assert.ok(perMappingHour > 0.75, `${perMappingHour.toFixed(3)}: still renewed`)
  assert.equal(gateway.mappings().length, 256)
})

test('without jitter (random 0) the same 256 renewals come in one burst: what the spread prevents', async (ctx) => {
  const { clock, gateway, nat } = await pmp(ctx, 'pcp', { random: () => 0 })
  await nat.addMappings([{ protocol: 'udp', ports: [49387, 49642] }])
  const from = gateway.received.length
  await clock.advance(3600_000)
  const minutes = new Set(gateway.received.slice(from).map((r) => Math.floor(r.atMs / 60_000)))
  assert.equal(gateway.received.length - from, 256)
  assert.equal(minutes.size, 1)
})

test('removeMappings on UPnP IGD v2: a contiguous range all ours goes in one DeletePortMappingRange, after a look at each entry', async (ctx) => {
  const { igd, nat } = await upnp(ctx, 2)
  await nat.addMappings([{ protocol: 'udp', ports: [5000, 5015] }, { protocol: 'tcp', port: 4001 }])
  const before = igd.requests.length
  const unmapped: number[] = []
  nat.on('unmapped', (e) => unmapped.push(e.internalPort))
  const results = await nat.removeMappings([{ protocol: 'udp', ports: [5000, 5015] }, { protocol: 'tcp', port: 4001 }])
  assert.deepEqual(results.map((r) => r.error?.message), Array(17).fill(undefined))
  const since = igd.requests.slice(before).filter((r) => r.kind === 'http')
  assert.equal(since.filter((r) => r.what === 'DeletePortMappingRange').length, 1)
  const args = Object.fromEntries(since.find((r) => r.what === 'DeletePortMappingRange')?.args ?? [])
  assert.deepEqual(args, { NewStartPort: '5000', NewEndPort: '5015', NewProtocol: 'UDP', NewManage: '0' })
  assert.equal(since.filter((r) => r.what === 'DeletePortMapping').length, 1, 'the lone TCP port alone')
  assert.equal(unmapped.length, 17)
  assert.deepEqual(igd.mappings(), [])
  assert.deepEqual(nat.mappings(), [])
})

test('removeMappings on UPnP IGD v2: another program\'s entry inside the range: no DeletePortMappingRange, each of ours deleted, that one left and said', async (ctx) => {
  const { igd, nat } = await upnp(ctx, 2)
  await nat.addMappings([{ protocol: 'udp', ports: [5000, 5015] }])
  // Another host took external port 5007 over ours meanwhile.
  igd.occupy(5007, 'UDP', '192.0.2.99')
  const before = igd.requests.length
  const results = await nat.removeMappings([{ protocol: 'udp', ports: [5000, 5015] }])
  const since = igd.requests.slice(before).filter((r) => r.kind === 'http').map((r) => r.what)
  assert.equal(since.filter((w) => w === 'DeletePortMappingRange').length, 0)
  assert.equal(since.filter((w) => w === 'DeletePortMapping').length, 15)
  assert.deepEqual(results.filter((r) => r.error !== undefined).map((r) => r.internalPort), [5007])
  assert.ok(results[7]?.error instanceof EntryNotOursError)
  assert.deepEqual(igd.mappings().map((m) => `${m.externalPort} ${m.internalClient}`), ['5007 192.0.2.99'])
})

test('removeMappings on UPnP IGD v1: port by port (DeletePortMappingRange is a v2 action)', async (ctx) => {
  const { igd, nat } = await upnp(ctx, 1)
  await nat.addMappings([{ protocol: 'udp', ports: [5000, 5007] }])
  const results = await nat.removeMappings([{ protocol: 'udp', ports: [5000, 5007] }])
  assert.deepEqual(results.filter((r) => r.error !== undefined), [])
  assert.equal(igd.count('http', 'DeletePortMappingRange'), 0)
  assert.equal(igd.count('http', 'DeletePortMapping'), 8)
  assert.deepEqual(igd.mappings(), [])
})

test('removeMappings on UPnP IGD v2 whose DeletePortMappingRange faults: port by port', async (ctx) => {
  const { igd, nat } = await upnp(ctx, 2)
  await nat.addMappings([{ protocol: 'udp', ports: [5000, 5003] }])
  igd.quirks.faultNext = [{ action: 'DeletePortMappingRange', code: 602 }]
  const results = await nat.removeMappings([{ protocol: 'udp', ports: [5000, 5003] }])
  assert.deepEqual(results.filter((r) => r.error !== undefined), [])
  assert.equal(igd.count('http', 'DeletePortMappingRange'), 1)
  assert.equal(igd.count('http', 'DeletePortMapping'), 4)
  assert.deepEqual(igd.mappings(), [])
})

test('removeMappings on PCP: each deleted, a port not kept said as a UsageError, in order', async (ctx) => {
  const { gateway, nat } = await pmp(ctx, 'pcp')
  await nat.addMappings([{ protocol: 'udp', ports: [5000, 5003] }])
  const results = await nat.removeMappings([{ protocol: 'udp', ports: [5000, 5004] }])
  assert.deepEqual(results.map((r) => r.error === undefined ? 'ok' : r.error.constructor.name), ['ok', 'ok', 'ok', 'ok', 'UsageError'])
  assert.deepEqual(gateway.mappings(), [])
})

test('quirk: DeletePortMappingRange over more than 128 entries crashes miniupnpd 2.3.1-2.3.3: 256 ports go in two ranges of 128', async (ctx) => {
  const { igd, nat } = await upnp(ctx, 2, (i) => { i.quirks.rangeDeleteCrashAbove = 128 })
  await nat.addMappings([{ protocol: 'udp', ports: [49387, 49642] }])
  assert.equal(igd.mappings().length, 256)
  const results = await nat.removeMappings([{ protocol: 'udp', ports: [49387, 49642] }])
  assert.deepEqual(results.filter((r) => r.error !== undefined).map((r) => r.error?.message), [])
  const ranges = igd.requests.filter((r) => r.what === 'DeletePortMappingRange').map((r) => Object.fromEntries(r.args ?? []))
  assert.deepEqual(ranges.map((a) => `${a.NewStartPort ?? ''}-${a.NewEndPort ?? ''}`), ['49387-49514', '49515-49642'])
  assert.equal(igd.count('http', 'DeletePortMapping'), 0)
  assert.deepEqual(igd.mappings(), [])
})
