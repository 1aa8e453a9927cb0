import { test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { discoverGateway } from '../../src/discover/discover.js'
import { discoverNAT } from '../../src/nat/discover-nat.js'
import { discoverNATs } from '../../src/nat/discover-nats.js'
import { SimulatedPmpGateway } from '../../src/testing/pmp-gateway.js'
import { SimulatedIgd } from '../../src/testing/igd.js'
import { FakeClock } from '../../src/testing/fake-clock.js'
import { InterfaceError, NoDefaultGatewayError, NoGatewayError } from '../../src/errors.js'
import type { HostNetwork } from '../../src/net/host-network.js'
import type { Ipv4Route } from '../../src/net/routes.js'
import { ipv4 } from '../helpers/net.js'
import { waitFor } from '../helpers/wait.js'

/**
 * A host with two networks, on loopback (Linux has all of 127/8 there): interface simA has the
 * address 127.0.0.12 and its router at 127.0.0.2, simB 127.0.0.13 and 127.0.0.3. Unbound, a
 * socket to 127.0.0.x would send from 127.0.0.1: a request seen from .12 or .13 was sent from
 * the chosen interface.
 */
function twoNetworks (extra: { routes?: Ipv4Route[] } = {}): HostNetwork & { table: Ipv4Route[] } {
  const table: Ipv4Route[] = extra.routes ?? [
    { destination: '0.0.0.0', prefixLength: 0, gateway: '127.0.0.2', interface: 'simA', metric: 100 },
    { destination: '0.0.0.0', prefixLength: 0, gateway: '127.0.0.3', interface: 'simB', metric: 200 }
  ]
  const interfaces = {
    lo: [ipv4('127.0.0.1', 8, true)],
    simA: [ipv4('127.0.0.12', 24)],
    simB: [ipv4('127.0.0.13', 24)],
    simC: [ipv4('127.0.0.14', 24)],
    six: [{ ...ipv4('fe80::6', 64), family: 'IPv6' as const, address: 'fe80::6', cidr: 'fe80::6/64', scopeid: 9 }]
  }
  return { table, interfaces: () => interfaces, routes: async () => [...table], exists: () => false, platform: 'linux' }
}

/** Two PCP/NAT-PMP routers on one port (discovery asks one port of every gateway). */
async function twoRouters (ctx: TestContext): Promise<{ a: SimulatedPmpGateway, b: SimulatedPmpGateway, port: number }> {
  const a = await SimulatedPmpGateway.start({ address: '127.0.0.2', externalAddress: '11.0.0.2' })
  const b = await SimulatedPmpGateway.start({ address: '127.0.0.3', port: a.port, externalAddress: '11.0.0.3' })
  ctx.after(async () => { await Promise.all([a.close(), b.close()]) })
  return { a, b, port: a.port }
}

const pmp = { methods: ['pcp', 'natpmp'] as const, announcements: false as const }

test('interface simB: the mapping is made on simB\'s router alone, from 127.0.0.13; simA\'s router hears nothing', async (ctx) => {
  const { a, b, port } = await twoRouters(ctx)
  const nat = await discoverNAT({ ...pmp, methods: [...pmp.methods], interface: 'simB', network: twoNetworks(), port })
  ctx.after(async () => { await nat.close() })
  assert.equal(nat.gatewayAddress, '127.0.0.3')
  await nat.addMapping('tcp', 4001)
  assert.deepEqual(nat.getMapping('tcp', 4001), { address: '11.0.0.3', port: 4001 })
  assert.deepEqual(b.mappings().map((m) => `${m.protocol} ${m.clientAddress}:${m.internalPort}`), ['tcp 127.0.0.13:4001'])
  assert.ok(b.received.length >= 2 && b.received.every((r) => r.from === '127.0.0.13'), `every request from 127.0.0.13: ${b.received.map((r) => r.from).join(', ')}`)
  assert.equal(a.received.length, 0, 'simA\'s router was never asked')
  await nat.close()
  assert.deepEqual(b.mappings(), [], 'close deletes it on simB\'s router')
})

test('localAddress 127.0.0.12 chooses simA; without a choice the default route with the lowest metric decides (simA, sent from 127.0.0.1)', async (ctx) => {
  const { a, b, port } = await twoRouters(ctx)
  const found = await discoverGateway({ methods: ['pcp'], localAddress: '127.0.0.12', network: twoNetworks(), port })
  found.gateway.close()
  assert.deepEqual([found.gateway.address, found.interface, found.localAddress], ['127.0.0.2', 'simA', '127.0.0.12'])
  assert.deepEqual(a.received.map((r) => r.from), ['127.0.0.12'])
  const plain = await discoverGateway({ methods: ['pcp'], network: twoNetworks(), port })
  plain.gateway.close()
  assert.deepEqual([plain.gateway.address, plain.interface, plain.localAddress], ['127.0.0.2', 'simA', undefined])
  assert.equal(a.received.at(-1)?.from, '127.0.0.1', 'unbound: the kernel\'s source for loopback')
  assert.equal(b.received.length, 0)
})

test('a bad choice of network is an InterfaceError with its reason, and nothing is sent', async (ctx) => {
  const { a, b, port } = await twoRouters(ctx)
  const network = twoNetworks()
  const cases: Array<[Parameters<typeof discoverGateway>[0], string]> = [
    [{ interface: 'eth7' }, 'unknown-interface'],
    [{ interface: 'six' }, 'no-ipv4'],
    [{ localAddress: '127.0.0.99' }, 'address-not-local'],
    [{ interface: 'simA', localAddress: '127.0.0.13' }, 'mismatch'],
    [{ localAddress: 'simA' }, 'not-ipv4']
  ]
  for (const [choice, reason] of cases) {
    await assert.rejects(discoverGateway({ ...choice, network, port }), (err: unknown) => {
      assert.ok(err instanceof InterfaceError, String(err))
      assert.equal(err.code, 'NATMAPPER_BAD_INTERFACE')
      assert.equal(err.reason, reason)
      return true
    })
    await assert.rejects(discoverNAT({ ...choice, network, port, announcements: false }), InterfaceError)
  }
  assert.equal(a.received.length + b.received.length, 0)
})

test('an interface without a default route: NoDefaultGatewayError naming it, nothing sent', async (ctx) => {
  const { a, b, port } = await twoRouters(ctx)
  await assert.rejects(discoverGateway({ interface: 'simC', network: twoNetworks(), port }), (err: unknown) => {
    assert.ok(err instanceof NoDefaultGatewayError)
    assert.match(err.message, /no IPv4 default route leaves by simC \(127\.0\.0\.14\)/)
    return true
  })
  assert.equal(a.received.length + b.received.length, 0)
})

test('discoverNATs: one NAT per interface with a gateway, each mapping on its own router from its own address; simC is listed with why', async (ctx) => {
  const { a, b, port } = await twoRouters(ctx)
  const found = await discoverNATs({ ...pmp, methods: [...pmp.methods], network: twoNetworks(), port })
  ctx.after(async () => { await found.close() })
  assert.deepEqual(found.nats.map((n) => `${n.interface} ${n.localAddress} -> ${n.nat.gatewayAddress}`), ['simA 127.0.0.12 -> 127.0.0.2', 'simB 127.0.0.13 -> 127.0.0.3'])
  assert.deepEqual(found.failures.map((f) => [f.interface, f.error.constructor.name]), [['simC', 'NoDefaultGatewayError']], 'loopback and the IPv6-only interface are not candidates')
  await Promise.all(found.nats.map(async ({ nat }) => await nat.addMapping('udp', 5000)))
  assert.deepEqual(a.mappings().map((m) => `${m.clientAddress}:${m.internalPort}`), ['127.0.0.12:5000'])
  assert.deepEqual(b.mappings().map((m) => `${m.clientAddress}:${m.internalPort}`), ['127.0.0.13:5000'])
  assert.deepEqual(await found.close(), [], 'nothing left')
  assert.deepEqual([a.mappings().length, b.mappings().length], [0, 0])
})

test('discoverNATs: a router that does not answer is a failure of its interface, not of the call', async (ctx) => {
  const { a, b, port } = await twoRouters(ctx)
  b.faults.silent = true
  const found = await discoverNATs({ ...pmp, methods: [...pmp.methods], network: twoNetworks(), port, timeout: 400 })
  ctx.after(async () => { await found.close() })
  assert.deepEqual(found.nats.map((n) => n.nat.gatewayAddress), ['127.0.0.2'])
  const simB = found.failures.find((f) => f.interface === 'simB')
  assert.ok(simB?.error instanceof NoGatewayError)
  assert.equal(simB.gateway, '127.0.0.3')
  assert.ok(a.received.length > 0)
})

test('UPnP on interface simA: the SSDP search and every HTTP request come from 127.0.0.12, and the mapping points there', async (ctx) => {
  const igd = await SimulatedIgd.start({ address: '127.0.0.2' })
  ctx.after(async () => { await igd.close() })
  const nat = await discoverNAT({
    methods: ['upnp'], interface: 'simA', network: twoNetworks(), announcements: false, ssdpListen: false,
    ssdpTarget: igd.ssdpMulticastTarget, ssdpGatewayPort: igd.ssdpUnicastTarget.port
  })
  ctx.after(async () => { await nat.close() })
  await nat.addMapping('tcp', 4002)
  assert.deepEqual(igd.mappings().map((m) => `${m.internalClient}:${m.internalPort}`), ['127.0.0.12:4002'])
  const kinds = new Set(igd.requests.map((r) => r.kind))
  assert.deepEqual([...kinds].sort(), ['http', 'ssdp'])
  assert.deepEqual([...new Set(igd.requests.map((r) => r.from))], ['127.0.0.12'])
})

test('a new default route on the chosen interface is followed on that interface: rediscovered from 127.0.0.13, simA untouched', async (ctx) => {
  const { a, b, port } = await twoRouters(ctx)
  const c = await SimulatedPmpGateway.start({ address: '127.0.0.4', port, externalAddress: '11.0.0.4' })
  ctx.after(async () => { await c.close() })
  const clock = new FakeClock()
  const network = twoNetworks()
  const nat = await discoverNAT({ ...pmp, methods: [...pmp.methods], interface: 'simB', network, port, clock })
  ctx.after(async () => { await nat.close() })
  await nat.addMapping('tcp', 4003)
  const changed = new Promise<{ address: string }>((resolve) => { nat.once('gateway-changed', resolve) })
  // simB's network now has its router at 127.0.0.4; simA's route, the better one, stays.
  network.table[1] = { ...network.table[1]!, gateway: '127.0.0.4' }
  await clock.advance(10_000)
  assert.equal((await changed).address, '127.0.0.4')
  await waitFor(() => c.mappings().length === 1, 'the mapping made again on the new router')
  assert.deepEqual(c.mappings().map((m) => `${m.clientAddress}:${m.internalPort}`), ['127.0.0.13:4003'])
  assert.ok(c.received.every((r) => r.from === '127.0.0.13'))
  assert.equal(a.received.length, 0)
  assert.ok(b.received.length > 0)
})
