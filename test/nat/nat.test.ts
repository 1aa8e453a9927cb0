import { test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { NAT } from '../../src/nat/nat.js'
import { PcpClient } from '../../src/port-control/pcp-client.js'
import { NatPmpClient } from '../../src/port-control/natpmp-client.js'
import { SimulatedPmpGateway } from '../../src/testing/pmp-gateway.js'
import { FakeClock } from '../../src/testing/fake-clock.js'
import { ClosedError, UsageError } from '../../src/errors.js'
import { PcpResultCode } from '../../src/pcp/codes.js'
import type { MappingEvent } from '../../src/nat/nat.js'
import { AnnouncementListener } from '../../src/port-control/announcements.js'
import type { Gateway } from '../../src/gateway.js'
import { waitFor } from '../helpers/wait.js'

/** Announcements on loopback, where the simulated gateway sends them (no group joined). */
const loopback = { portControl: { port: 0, bindAddress: '127.0.0.1', multicastGroup: undefined } }

/** Starts the client's announcement listener on loopback; resolves to its port. */
async function listenOnLoopback (client: Gateway): Promise<number> {
  const where = await client.describe().listen?.(loopback)
  assert.ok(where !== undefined, 'listening')
  return where.port
}

async function setup (ctx: TestContext, method: 'pcp' | 'natpmp' = 'pcp') {
  const clock = new FakeClock()
  const gateway = await SimulatedPmpGateway.start({ clock, externalAddress: '198.51.100.1' })
  const options = { gateway: gateway.address, port: gateway.port, clock }
  const client = method === 'pcp' ? new PcpClient(options) : new NatPmpClient(options)
  // random 0: renewals at exactly half the lifetime, the start of RFC 6887's 1/2-5/8 window.
  const nat = new NAT(client, { clock, lifetimeSeconds: 7200, random: () => 0 })
  ctx.after(async () => {
    await nat.close()
    await gateway.close()
  })
  return { clock, gateway, nat }
}

test('addMapping rejects anything but tcp/udp, naming the protocol, and bad ports', async (ctx) => {
  const { nat } = await setup(ctx)
  await assert.rejects(nat.addMapping('sctp' as 'tcp', 4001), (err: Error) => err instanceof UsageError && err.message.includes('"sctp"'))
  await assert.rejects(nat.addMapping('tcp', 0), UsageError)
  await assert.rejects(nat.addMapping('tcp', 70000), UsageError)
  // Issue 18.12: a port given as text (from JavaScript, or JSON) is named as such, not as an invalid number.
  await assert.rejects(nat.addMapping('tcp', '4001' as unknown as number), (err: Error) => err instanceof UsageError && /"4001" is a string, not a number/.test(err.message))
  await assert.rejects(nat.removeMapping('sctp' as 'tcp', 4001), (err: Error) => err instanceof UsageError && err.message.includes('"sctp"'))
})

test('addMapping maps once before resolving; getMapping then has the external address and port', async (ctx) => {
  const { nat, gateway } = await setup(ctx)
  const events: MappingEvent[] = []
  nat.on('mapped', (e) => events.push(e))
  assert.equal(nat.getMapping('tcp', 4001), undefined)
  await nat.addMapping('tcp', 4001)
  assert.deepEqual(nat.getMapping('tcp', 4001), { address: '198.51.100.1', port: 4001 })
  assert.equal(nat.externalAddress, '198.51.100.1')
  assert.equal(events.length, 1)
  assert.equal(events[0]?.method, 'pcp')
  assert.equal(gateway.mappings().length, 1)
})

test('20 concurrent addMapping calls for one port cost the router one request', async (ctx) => {
  const { nat, gateway } = await setup(ctx)
  await Promise.all(Array.from({ length: 20 }, async () => { await nat.addMapping('udp', 4001) }))
  assert.equal(gateway.requestCount, 1)
  await nat.addMapping('udp', 4001)
  assert.equal(gateway.requestCount, 1)
})

test('renewal happens at half the granted lifetime (random 0): two router requests in the first hour, one per mapping-hour after', async (ctx) => {
  const { nat, gateway, clock } = await setup(ctx)
  let renewals = 0
  nat.on('renewed', () => { renewals++ })
  await nat.addMapping('tcp', 4001)
  await clock.advance(3600_000 - 1)
  assert.equal(renewals, 0)
  await clock.advance(1)
  assert.equal(renewals, 1)
  assert.equal(gateway.requestCount, 2)
  await clock.advance(10 * 3600_000)
  assert.equal(gateway.requestCount, 12, 'one renewal per hour after the first')
  assert.deepEqual(nat.getMapping('tcp', 4001), { address: '198.51.100.1', port: 4001 })
})

test('a mapping the router dropped comes back at the next renewal, on the same external port', async (ctx) => {
  const { nat, gateway, clock } = await setup(ctx, 'natpmp')
  await nat.addMapping('tcp', 4001, { externalPort: 45000 })
  gateway.dropMappings()
  await clock.advance(3600_000)
  assert.deepEqual(gateway.mappings().map((m) => m.externalPort), [45000])
})

test('a failed first attempt resolves anyway and is retried in the background', async (ctx) => {
  const { nat, gateway, clock } = await setup(ctx)
  const errors: Error[] = []
  nat.on('error', (err) => errors.push(err))
  gateway.faults.refuseWith = { pcp: PcpResultCode.NO_RESOURCES, lifetimeSeconds: 30 }
  await nat.addMapping('tcp', 4001)
  assert.equal(nat.getMapping('tcp', 4001), undefined)
  assert.equal(errors.length, 1)
  gateway.faults.refuseWith = undefined
  await clock.advance(29_999)
  assert.equal(nat.getMapping('tcp', 4001), undefined, 'NO_RESOURCES is retried after the lifetime in the reply, not before')
  await clock.advance(1)
  await clock.advance(0)
  assert.deepEqual(nat.getMapping('tcp', 4001), { address: '198.51.100.1', port: 4001 })
})

test('a mapping whose renewals fail until it expires is reported lost', async (ctx) => {
  const { nat, gateway, clock } = await setup(ctx)
  const lost: number[] = []
  nat.on('lost', (e) => lost.push(e.internalPort))
  nat.on('error', () => {})
  await nat.addMapping('tcp', 4001)
  gateway.faults.refuseWith = { pcp: PcpResultCode.NOT_AUTHORIZED }
  await clock.advance(7200_000)
  assert.deepEqual(lost, [4001])
  assert.equal(nat.getMapping('tcp', 4001), undefined)
})

test('removeMapping deletes on the router and rejects for an unknown mapping', async (ctx) => {
  const { nat, gateway } = await setup(ctx)
  await nat.addMapping('tcp', 4001)
  await nat.removeMapping('tcp', 4001)
  assert.deepEqual(gateway.mappings(), [])
  assert.equal(nat.getMapping('tcp', 4001), undefined)
  await assert.rejects(nat.removeMapping('tcp', 4001), UsageError)
})

test('close deletes every mapping, stops every timer, is idempotent, and later calls are refused', async (ctx) => {
  const { nat, gateway, clock } = await setup(ctx)
  await nat.addMapping('tcp', 4001)
  await nat.addMapping('udp', 4002)
  assert.equal(gateway.mappings().length, 2)
  await Promise.all([nat.close(), nat.close()])
  assert.deepEqual(gateway.mappings(), [])
  assert.equal(clock.pendingTimers, 0)
  await assert.rejects(nat.addMapping('tcp', 4003), ClosedError)
})

test('addMapping rejects with AbortError when its signal fires, and forgets the port', async (ctx) => {
  const { nat, gateway } = await setup(ctx)
  gateway.faults.silent = true
  const controller = new AbortController()
  const pending = nat.addMapping('tcp', 4001, { signal: controller.signal })
  controller.abort()
  await assert.rejects(pending, (err: Error) => err.name === 'AbortError')
  assert.equal(nat.getMapping('tcp', 4001), undefined)
  gateway.faults.silent = false
  await nat.addMapping('tcp', 4001)
  assert.deepEqual(nat.getMapping('tcp', 4001), { address: '198.51.100.1', port: 4001 })
})

test('after a reboot announced by the gateway, mappings come back on their ports after the RFC\'s random 0-5 s wait', async (ctx) => {
  const clock = new FakeClock()
  const gateway = await SimulatedPmpGateway.start({ clock, externalAddress: '198.51.100.1' })
  const client = new PcpClient({ gateway: gateway.address, port: gateway.port, clock })
  const port = await listenOnLoopback(client)
  const nat = new NAT(client, { clock, random: () => 0.5 })
  ctx.after(async () => { await nat.close(); await gateway.close() })
  await nat.addMapping('tcp', 4001, { externalPort: 41000 })
  await nat.addMapping('udp', 4002)
  await clock.advance(60_000)
  gateway.restart()
  const before = gateway.requestCount
  gateway.announce({ address: '127.0.0.1', port })
  await waitFor(() => clock.pendingTimers === 3, 'the recovery timer')
  await clock.advance(2_499)
  assert.equal(gateway.requestCount, before, 'nothing before the random wait (0.5 x 5 s) is over')
  await clock.advance(1)
  await waitFor(() => gateway.mappings().length === 2, 'both mappings back')
  assert.deepEqual(gateway.mappings().map((m) => m.externalPort).sort(), [4002, 41000])
  assert.equal(gateway.requestCount, before + 2)
})

test('an epoch that shows a reboot on a renewal re-maps every other mapping too', async (ctx) => {
  const clock = new FakeClock()
  const gateway = await SimulatedPmpGateway.start({ clock })
  const nat = new NAT(new NatPmpClient({ gateway: gateway.address, port: gateway.port, clock }), { clock, random: () => 0 })
  ctx.after(async () => { await nat.close(); await gateway.close() })
  await nat.addMapping('tcp', 4001)
  await clock.advance(600_000)
  await nat.addMapping('tcp', 4002)
  await clock.advance(3000_000)
  gateway.restart()
  await clock.advance(600_000) // 4001's renewal at 3600 s sees epoch 0 and re-creates it; 4002 follows
  await clock.advance(0)
  assert.deepEqual(gateway.mappings().map((m) => m.internalPort).sort(), [4001, 4002])
})

test('a NAT-PMP address announcement (no restart: its epoch goes on) updates the external address and emits external-address; the mapping is not lost', async (ctx) => {
  const clock = new FakeClock()
  const gateway = await SimulatedPmpGateway.start({ clock, externalAddress: '11.0.0.1', pcp: false })
  const client = new NatPmpClient({ gateway: gateway.address, port: gateway.port, clock })
  const port = await listenOnLoopback(client)
  const nat = new NAT(client, { clock })
  ctx.after(async () => { await nat.close(); await gateway.close() })
  await nat.addMapping('tcp', 4001)
  assert.equal(nat.externalAddress, '11.0.0.1')
  const seen: string[] = []
  nat.on('external-address', (e) => seen.push(e.address))
  gateway.externalAddress = '11.0.0.99'
  gateway.announce({ address: '127.0.0.1', port })
  const lost: number[] = []
  nat.on('lost', (e) => lost.push(e.internalPort))
  await waitFor(() => seen.length === 1, 'external-address event')
  assert.equal(nat.externalAddress, '11.0.0.99')
  assert.deepEqual(nat.getMapping('tcp', 4001), { address: '11.0.0.99', port: 4001 })
  await clock.advance(5_000)
  assert.deepEqual(lost, [])
})

test('announcements from another host are ignored', async (ctx) => {
  // The listener believes 127.0.0.2 only. A host at 127.0.0.1 announces first, the gateway after:
  // loopback keeps the order, so once the gateway's is heard the other one was dropped.
  const gateway = await SimulatedPmpGateway.start({ address: '127.0.0.2', externalAddress: '11.0.0.77' })
  const other = await SimulatedPmpGateway.start({ address: '127.0.0.1', externalAddress: '11.0.0.66' })
  const listener = await AnnouncementListener.start({ gateway: '127.0.0.2', port: 0, bindAddress: '127.0.0.1', multicastGroup: undefined })
  assert.ok(listener !== undefined)
  ctx.after(async () => { listener.close(); await gateway.close(); await other.close() })
  const heard: string[] = []
  listener.on('announcement', (a) => heard.push(a.kind === 'natpmp' ? a.externalAddress : a.kind))
  other.announce({ address: '127.0.0.1', port: listener.port })
  gateway.announce({ address: '127.0.0.1', port: listener.port })
  // Each announces in PCP and in NAT-PMP (with its own address): only the gateway's two are heard.
  await waitFor(() => heard.includes('11.0.0.77'), 'the gateway\'s NAT-PMP announcement')
  assert.deepEqual(heard, ['pcp', '11.0.0.77'])
})

test('behind a second NAT the NAT object says so', async (ctx) => {
  for (const [address, pattern] of [['100.64.3.4', /carrier-grade NAT/], ['192.168.1.3', /double NAT/]] as const) {
    const clock = new FakeClock()
    const gateway = await SimulatedPmpGateway.start({ clock, externalAddress: address })
    const nat = new NAT(new PcpClient({ gateway: gateway.address, port: gateway.port, clock }), { clock })
    ctx.after(async () => { await nat.close(); await gateway.close() })
    assert.equal(nat.notPublicReason, undefined, 'unknown before the first answer')
    await nat.addMapping('udp', 4001)
    assert.match(nat.notPublicReason ?? '', pattern)
    assert.notEqual(nat.externalAddressClass, 'public')
  }
})

test('repeated "connection refused" rediscovers the gateway and re-applies the mappings on their ports', async (ctx) => {
  const clock = new FakeClock()
  const first = await SimulatedPmpGateway.start({ clock })
  const second = await SimulatedPmpGateway.start({ clock })
  const changes: string[] = []
  const nat = new NAT(new PcpClient({ gateway: first.address, port: first.port, clock }), {
    clock,
    random: () => 0,
    rediscover: async () => new PcpClient({ gateway: second.address, port: second.port, clock })
  })
  const errors: Error[] = []
  nat.on('gateway-changed', (e) => changes.push(e.reason))
  nat.on('error', (err) => errors.push(err))
  ctx.after(async () => { await nat.close(); await second.close() })
  await nat.addMapping('tcp', 4001, { externalPort: 42000 })
  await first.close() // the router restarted elsewhere: its old port now answers ICMP unreachable
  await clock.advance(3600_000) // renewal: refused
  await waitFor(() => errors.length === 1, 'first refusal')
  assert.equal(errors[0]?.name, 'NoResponseError')
  await clock.advance(1_000) // retry: refused again, so rediscover
  await waitFor(() => changes.length === 1, 'gateway-changed')
  await clock.advance(0)
  await waitFor(() => second.mappings().length === 1, 'mapping on the new gateway')
  assert.equal(second.mappings()[0]?.externalPort, 42000)
  assert.match(changes[0] ?? '', /refused/)
})

test('after a gateway change, announcements are heard from the new gateway; the old one\'s listener is closed with it', async (ctx) => {
  const clock = new FakeClock()
  const first = await SimulatedPmpGateway.start({ clock })
  const second = await SimulatedPmpGateway.start({ clock })
  const firstClient = new PcpClient({ gateway: first.address, port: first.port, clock })
  const secondClient = new PcpClient({ gateway: second.address, port: second.port, clock })
  const nat = new NAT(firstClient, { clock, random: () => 0, listen: loopback, rediscover: async () => secondClient })
  const changes: string[] = []
  nat.on('gateway-changed', (e) => changes.push(e.reason))
  nat.on('error', () => {})
  ctx.after(async () => { await nat.close(); await second.close() })
  await clock.advance(0)
  const firstPort = await listenOnLoopback(firstClient)
  await nat.addMapping('tcp', 4001)
  await first.close()
  await clock.advance(3600_000)
  await clock.advance(1_000)
  await waitFor(() => changes.length === 1, 'gateway-changed')
  await waitFor(() => second.mappings().length === 1, 'mapped on the new gateway')
  await clock.advance(0)
  const secondPort = await listenOnLoopback(secondClient)
  assert.notEqual(secondPort, firstPort)
  // The old gateway's listener went with it: its port is free again.
  const probe = await AnnouncementListener.start({ gateway: '127.0.0.1', port: firstPort, bindAddress: '127.0.0.1', multicastGroup: undefined })
  assert.ok(probe !== undefined, 'the first gateway\'s announcement port was released')
  probe.close()
  // The new gateway's announcement is acted on.
  const before = second.requestCount
  second.restart()
  second.announce({ address: '127.0.0.1', port: secondPort })
  await waitFor(() => clock.pendingTimers >= 1 && second.requestCount === before, 'the recovery timer')
  await clock.advance(60_000)
  await waitFor(() => second.requestCount > before, 'the mapping made again after the new gateway\'s announcement')
})

test('a change of default route rediscovers the gateway', async (ctx) => {
  const clock = new FakeClock()
  const gateway = await SimulatedPmpGateway.start({ clock })
  let route = '192.168.1.1'
  let rediscoveries = 0
  const nat = new NAT(new PcpClient({ gateway: gateway.address, port: gateway.port, clock }), {
    clock,
    watchRoute: { lookup: async () => route, intervalMs: 10_000 },
    rediscover: async () => { rediscoveries++; return new PcpClient({ gateway: gateway.address, port: gateway.port, clock }) }
  })
  ctx.after(async () => { await nat.close(); await gateway.close() })
  await clock.advance(30_000)
  assert.equal(rediscoveries, 0)
  route = '10.0.0.1'
  await clock.advance(10_000)
  assert.equal(rediscoveries, 1)
})

test('the route discovery just read is not read again at once: the first look-up is one interval later', async (ctx) => {
  const clock = new FakeClock()
  const gateway = await SimulatedPmpGateway.start({ clock })
  let route = '10.0.0.1'
  let lookups = 0
  let rediscoveries = 0
  const nat = new NAT(new PcpClient({ gateway: gateway.address, port: gateway.port, clock }), {
    clock,
    watchRoute: { lookup: async () => { lookups++; return route }, intervalMs: 10_000, initialGateway: '192.168.1.1' },
    rediscover: async () => { rediscoveries++; return new PcpClient({ gateway: gateway.address, port: gateway.port, clock }) }
  })
  ctx.after(async () => { await nat.close(); await gateway.close() })
  await clock.advance(9_999)
  assert.equal(lookups, 0)
  // The route changed since discovery: the first look-up sees it against the route discovery used.
  await clock.advance(1)
  assert.equal(lookups, 1)
  assert.equal(rediscoveries, 1)
  route = '10.0.0.1'
  await clock.advance(10_000)
  assert.equal(lookups, 2)
  assert.equal(rediscoveries, 1, 'the same route again changes nothing')
})

test('a huge granted lifetime does not overflow the renewal timer into a renewal loop', async (ctx) => {
  const clock = new FakeClock()
  const gateway = await SimulatedPmpGateway.start({ clock })
  const nat = new NAT(new NatPmpClient({ gateway: gateway.address, port: gateway.port, clock }), { clock, lifetimeSeconds: 0xffffffff })
  ctx.after(async () => { await nat.close(); await gateway.close() })
  await nat.addMapping('tcp', 4001)
  const after = gateway.requestCount
  await clock.advance(24 * 3600_000)
  assert.equal(gateway.requestCount, after, 'no renewal within a day of a ~136-year lease')
})

test('one reboot, one re-map: the epoch in the re-map\'s own reply is not taken for a second reset', async (ctx) => {
  const clock = new FakeClock()
  const gateway = await SimulatedPmpGateway.start({ clock })
  const client = new PcpClient({ gateway: gateway.address, port: gateway.port, clock })
  const port = await listenOnLoopback(client)
  const nat = new NAT(client, { clock, random: () => 0.2 })
  ctx.after(async () => { await nat.close(); await gateway.close() })
  await nat.addMapping('tcp', 4001)
  await clock.advance(600_000)
  gateway.restart()
  const before = gateway.requestCount
  gateway.announce({ address: '127.0.0.1', port })
  await waitFor(() => clock.pendingTimers === 2, 'the recovery timer')
  await clock.advance(1_000)
  await waitFor(() => gateway.mappings().length === 1, 'the mapping back')
  await clock.advance(120_000)
  assert.equal(gateway.requestCount, before + 1, 'exactly one re-map for the reboot')
})

test('issue 18.6: a hundred ports at once go a few at a time (8 in flight), the wait for a turn does not time out, and close() leaves nothing, without a MaxListenersExceededWarning', async (ctx) => {
  const clock = new FakeClock()
  const gateway = await SimulatedPmpGateway.start({ clock })
  const warnings: string[] = []
  const onWarning = (w: Error): void => { warnings.push(`${w.name}: ${w.message}`) }
  process.on('warning', onWarning)
  ctx.after(async () => { process.off('warning', onWarning); await gateway.close() })
  const nat = new NAT(new PcpClient({ gateway: gateway.address, port: gateway.port, clock }), { clock, requestTimeoutMs: 1000 })
  gateway.faults.delayMs = 5_000
  const ports = Array.from({ length: 100 }, (_, i) => 20000 + i)
  const adding = Promise.all(ports.map(async (port) => { await nat.addMapping('tcp', port) }))
  await waitFor(() => gateway.received.length === 8, 'the first eight requests')
  await clock.advance(0)
  assert.equal(gateway.received.length, 8, 'the other 92 wait their turn, unsent')
  // Answers within the request timeout from now on: every port gets mapped, none times out in the queue.
  gateway.faults.delayMs = 0
  await clock.advance(1000)
  await waitFor(() => nat.mappings().length === 100, 'all mapped', 5000)
  await adding
  const errors: Error[] = []
  nat.on('error', (err) => errors.push(err))
  assert.deepEqual(await nat.close(), [])
  assert.deepEqual(gateway.mappings(), [])
  assert.deepEqual(errors, [])
  await new Promise((resolve) => setImmediate(resolve))
  assert.deepEqual(warnings, [])
})

test('a first MAP the gateway applied but did not answer is asked for again with its nonce, not refused for ever (RFC 6887 §11.5)', async (ctx) => {
  const clock = new FakeClock()
  const gateway = await SimulatedPmpGateway.start({ clock })
  const nat = new NAT(new PcpClient({ gateway: gateway.address, port: gateway.port, clock }), { clock, requestTimeoutMs: 1000 })
  ctx.after(async () => { await nat.close(); await gateway.close() })
  const errors: string[] = []
  nat.on('error', (err) => errors.push(err.message))
  // The gateway makes the mapping (under our nonce) and its answers are lost.
  gateway.faults.silent = true
  const adding = nat.addMapping('udp', 4003)
  await waitFor(() => gateway.received.length === 1, 'the MAP')
  await clock.advance(1000)
  await adding
  gateway.faults.silent = false
  await clock.advance(5_000) // the retry
  await waitFor(() => nat.getMapping('udp', 4003) !== undefined, 'mapped on the retry')
  assert.equal(errors.length, 1, `the timeout only, no NOT_AUTHORIZED: ${errors.join('; ')}`)
  assert.equal(gateway.mappings().length, 1)
})
