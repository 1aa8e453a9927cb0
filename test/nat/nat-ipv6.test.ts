import { test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { NAT, type MappingEvent } from '../../src/nat/nat.js'
import { PcpClient } from '../../src/port-control/pcp-client.js'
import { SimulatedPmpGateway } from '../../src/testing/pmp-gateway.js'
import { FakeClock } from '../../src/testing/fake-clock.js'
import { InboundPinholeNotAllowedError, NoIpv6Error, UsageError } from '../../src/errors.js'
import type { Gateway } from '../../src/gateway.js'
import { PinholeClient } from '../../src/upnp/pinhole.js'
import { PinholeGateway } from '../../src/upnp/pinhole-gateway.js'
import { pinholeServer } from '../upnp/pinhole-server.js'

/** An IPv4 PCP gateway on 127.0.0.1 and, as the IPv6 side, the given one. */
async function setup (ctx: TestContext, side: (clock: FakeClock) => Promise<Gateway> | Gateway | undefined, keep = true) {
  const clock = new FakeClock()
  const v4 = await SimulatedPmpGateway.start({ clock, externalAddress: '198.51.100.1' })
  const ipv6 = await side(clock)
  const nat = new NAT(new PcpClient({ gateway: v4.address, port: v4.port, clock }), { clock, random: () => 0, keep, ...(ipv6 === undefined ? {} : { ipv6: { gateway: ipv6 } }) })
  const events: Array<[string, unknown]> = []
  for (const name of ['mapped', 'renewed', 'lost', 'unmapped', 'error'] as const) nat.on(name, (e: unknown, key?: unknown) => events.push([name, key ?? e]))
  ctx.after(async () => { await nat.close(); await v4.close() })
  return { clock, v4, nat, events }
}

async function pcpSide (ctx: TestContext, clock: FakeClock): Promise<{ gateway: SimulatedPmpGateway, client: PcpClient }> {
  const gateway = await SimulatedPmpGateway.start({ clock, address: '::1' })
  ctx.after(async () => { await gateway.close() })
  return { gateway, client: new PcpClient({ gateway: '::1', port: gateway.port, clock, localAddress: '::1' }) }
}

test('NAT family: 4 unless asked; family 6 opens the host\'s IPv6 address over PCP; events, getMapping and mappings() carry the family; close deletes the pinhole', async (ctx) => {
  let v6: SimulatedPmpGateway | undefined
  const t = await setup(ctx, async (clock) => { const side = await pcpSide(ctx, clock); v6 = side.gateway; return side.client })
  await t.nat.addMapping('tcp', 4001)
  assert.equal(t.v4.mappings().length, 1)
  assert.equal(v6!.requestCount, 0, 'nothing asked on IPv6 unless asked for')
  await t.nat.addMapping('tcp', 4001, { family: 6 })
  assert.deepEqual(v6!.mappings().map((m) => [m.clientAddress, m.internalPort]), [['::1', 4001]])
  assert.deepEqual(t.nat.getMapping('tcp', 4001), { address: '198.51.100.1', port: 4001 })
  assert.deepEqual(t.nat.getMapping('tcp', 4001, { family: 6 }), { address: '::1', port: 4001 })
  const mapped = t.events.filter(([name]) => name === 'mapped').map(([, e]) => e as MappingEvent)
  assert.deepEqual(mapped.map((e) => [e.family, e.method, e.externalAddress]), [[4, 'pcp', '198.51.100.1'], [6, 'pcp', '::1']])
  assert.deepEqual(t.nat.mappings().map((m) => [m.family, m.externalAddress]), [[4, '198.51.100.1'], [6, '::1']])
  assert.deepEqual(t.nat.ipv6Gateway, { address: '::1', method: 'pcp' })
  assert.deepEqual(await t.nat.close(), [])
  assert.deepEqual(v6!.mappings(), [])
  assert.deepEqual(t.v4.mappings(), [])
  assert.deepEqual(t.events.filter(([name]) => name === 'unmapped').map(([, e]) => (e as { family: number }).family).sort(), [4, 6])
})

test('NAT family \'both\' over a UPnP pinhole: AddPinhole from the address opened, removeMapping and close DeletePinhole', async (ctx) => {
  const router = await pinholeServer()
  ctx.after(() => router.server.close())
  const t = await setup(ctx, (clock) => new PinholeGateway({ client: new PinholeClient({ controlURL: router.url, clock }), localAddress: '::1' }))
  await t.nat.addMapping('udp', 4002, { family: 'both' })
  await t.nat.addMapping('tcp', 4003, { family: 'both' })
  assert.equal(t.v4.mappings().length, 2)
  assert.deepEqual([...router.pinholes.values()].map((p) => [p.InternalClient, p.InternalPort, p.Protocol]), [['::1', '4002', '17'], ['::1', '4003', '6']])
  const six = t.events.filter(([name, e]) => name === 'mapped' && (e as MappingEvent).family === 6).map(([, e]) => e as MappingEvent)
  assert.deepEqual(six.map((e) => [e.method, e.externalAddress, e.externalPort]), [['upnp-pinhole', '::1', 4002], ['upnp-pinhole', '::1', 4003]])
  await t.nat.removeMapping('udp', 4002, { family: 6 })
  assert.equal(router.pinholes.size, 1)
  assert.equal(t.v4.mappings().length, 2, 'the IPv4 mapping of the port stays')
  await t.nat.close()
  assert.equal(router.pinholes.size, 0)
  assert.equal(t.v4.mappings().length, 0)
})

test('NAT family: IPv6 asked of a NAT without an IPv6 gateway is NoIpv6Error; a bad family a UsageError; nothing sent', async (ctx) => {
  const t = await setup(ctx, () => undefined)
  await assert.rejects(t.nat.addMapping('tcp', 4001, { family: 6 }), (err: unknown) => err instanceof NoIpv6Error && err.reason === 'no-gateway')
  await assert.rejects(t.nat.addMapping('tcp', 4001, { family: 'both' }), NoIpv6Error)
  await assert.rejects(t.nat.addMapping('tcp', 4001, { family: 5 as 4 }), (err: unknown) => err instanceof UsageError && err.message.includes('5'))
  assert.throws(() => t.nat.getMapping('tcp', 4001, { family: 'both' as unknown as 4 }), UsageError)
  assert.equal(t.v4.requestCount, 0)
  assert.deepEqual(t.nat.mappings(), [])
})

test('NAT family: a router that allows no pinholes (703) is one clear error with family 6, retried rarely, not in a loop', async (ctx) => {
  const router = await pinholeServer({ inboundAllowed: false })
  ctx.after(() => router.server.close())
  const t = await setup(ctx, (clock) => new PinholeGateway({ client: new PinholeClient({ controlURL: router.url, clock }), localAddress: '::1' }))
  const errors: Array<[Error, unknown]> = []
  t.nat.on('error', (err, key) => errors.push([err, key]))
  await t.nat.addMapping('tcp', 4001, { family: 6 })
  assert.equal(errors.length, 1)
  assert.ok(errors[0]![0] instanceof InboundPinholeNotAllowedError, String(errors[0]![0]))
  assert.deepEqual(errors[0]![1], { family: 6, protocol: 'tcp', internalPort: 4001 })
  assert.equal(t.nat.getMapping('tcp', 4001, { family: 6 }), undefined)
  const asked = router.seen.length
  await t.clock.advance(10 * 60_000)
  assert.equal(router.seen.length, asked, 'no retry within 10 min')
})

test('NAT family: with keep false, a refused pinhole rejects addMapping', async (ctx) => {
  const router = await pinholeServer({ firewallEnabled: false })
  ctx.after(() => router.server.close())
  const t = await setup(ctx, (clock) => new PinholeGateway({ client: new PinholeClient({ controlURL: router.url, clock }), localAddress: '::1' }), false)
  await assert.rejects(t.nat.addMapping('tcp', 4001, { family: 6 }), (err: unknown) => err instanceof Error && err.name === 'FirewallDisabledError')
})

test('NAT family 6 over PCP: a restart of the IPv6 gateway (its epoch went backwards in a renewal reply) re-maps every pinhole, as on IPv4', async (ctx) => {
  const clock = new FakeClock()
  const side = await pcpSide(ctx, clock)
  const nat = new NAT(side.client, { clock, family: 6, random: () => 0, lifetimeSeconds: 120 })
  ctx.after(async () => { await nat.close() })
  const events: string[] = []
  for (const name of ['mapped', 'renewed', 'lost'] as const) nat.on(name, (e: { internalPort: number }) => events.push(`${name} ${e.internalPort}`))
  await nat.addMapping('tcp', 4001)
  await nat.addMapping('udp', 4002)
  await clock.advance(30_000)
  side.gateway.restart()
  assert.equal(side.gateway.mappings().length, 0)
  // The next renewal (at half the lifetime) carries the new, small epoch: both pinholes made again.
  for (let i = 0; i < 40 && side.gateway.mappings().length < 2; i++) await clock.advance(1_000)
  assert.deepEqual(side.gateway.mappings().map((m) => [m.clientAddress, m.internalPort]).sort(), [['::1', 4001], ['::1', 4002]])
  assert.ok(events.includes('lost 4002') || events.includes('lost 4001'), events.join(', '))
  assert.equal(nat.stats().recoveries, 1, events.join(', '))
})
