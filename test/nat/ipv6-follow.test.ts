import { test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { NAT, type MappingEvent } from '../../src/nat/nat.js'
import { FakeClock } from '../../src/testing/fake-clock.js'
import type { CallOptions, Gateway, MapRequest, MapResult, PortMapping } from '../../src/gateway.js'
import type { HostIpv6Address } from '../../src/net/ipv6-addresses.js'
import { PcpClient } from '../../src/port-control/pcp-client.js'
import { SimulatedPmpGateway } from '../../src/testing/pmp-gateway.js'

/**
 * A router's pinhole table shared by the gateways made for each host address (Gateway.forAddress),
 * as one PCP server or WANIPv6FirewallControl service is: every request logged in order. The
 * host's own global addresses cannot be bound on loopback, so the router is in memory here; the
 * lab test (test/lab/ipv6-recovery.test.ts) moves real pinholes on miniupnpd.
 */
class PinholeTable {
  readonly rules = new Map<string, { address: string, protocol: string, port: number }>()
  readonly log: string[] = []
  /** Maps from these addresses fail this many more times. */
  readonly failing = new Map<string, number>()
  readonly closed: string[] = []
  constructor (readonly clock: FakeClock) {}

  gateway (localAddress: string): Gateway {
    const table = this
    const key = (protocol: string, port: number): string => `[${localAddress}]:${protocol}/${port}`
    return {
      method: 'pcp',
      address: '2001:db8::1',
      localAddress,
      externalAddress: async () => localAddress,
      async map (request: MapRequest, _options?: CallOptions): Promise<MapResult> {
        table.log.push(`map ${key(request.protocol, request.internalPort)}`)
        const failures = table.failing.get(localAddress) ?? 0
        if (failures > 0) {
          table.failing.set(localAddress, failures - 1)
          throw new Error(`refused from ${localAddress}`)
        }
        table.rules.set(key(request.protocol, request.internalPort), { address: localAddress, protocol: request.protocol, port: request.internalPort })
        const now = table.clock.now()
        return { mapping: { method: 'pcp', protocol: request.protocol, internalPort: request.internalPort, externalPort: request.internalPort, externalAddress: localAddress, lifetimeSeconds: request.lifetimeSeconds, grantedAtMs: now, expiresAtMs: now + request.lifetimeSeconds * 1000, session: {} } }
      },
      async renew (mapping: PortMapping): Promise<PortMapping> {
        table.log.push(`renew ${key(mapping.protocol, mapping.internalPort)}`)
        const now = table.clock.now()
        return { ...mapping, grantedAtMs: now, expiresAtMs: now + mapping.lifetimeSeconds * 1000 }
      },
      async unmap (mapping: PortMapping): Promise<void> {
        table.log.push(`unmap ${key(mapping.protocol, mapping.internalPort)}`)
        table.rules.delete(key(mapping.protocol, mapping.internalPort))
      },
      onReset: () => () => {},
      describe: () => ({}),
      close: () => { table.closed.push(localAddress) },
      forAddress: (address: string) => table.gateway(address)
    }
  }
}

const A = '2001:db8:1::a'
const B = '2001:db8:1::b'
const host = (address: string, deprecated = false): HostIpv6Address => ({ address, interface: 'eth0', prefixLength: 64, temporary: true, deprecated })

function setup (ctx: TestContext, options: { v4?: SimulatedPmpGateway } = {}) {
  const clock = new FakeClock()
  const table = new PinholeTable(clock)
  let now: HostIpv6Address[] = [host(A)]
  let reads = 0
  const followAddress = { addresses: () => { reads++; return now }, intervalMs: 30_000 }
  const nat = options.v4 === undefined
    ? new NAT(table.gateway(A), { clock, family: 6, random: () => 0, lifetimeSeconds: 600, followAddress })
    : new NAT(new PcpClient({ gateway: options.v4.address, port: options.v4.port, clock }), { clock, random: () => 0, lifetimeSeconds: 600, followAddress, ipv6: { gateway: table.gateway(A) } })
  const events: Array<[string, unknown]> = []
  for (const name of ['mapped', 'renewed', 'unmapped', 'address-changed', 'error'] as const) nat.on(name, (e: unknown) => events.push([name, e]))
  ctx.after(async () => { await nat.close() })
  return { clock, table, nat, events, set: (list: HostIpv6Address[]) => { now = list }, reads: () => reads }
}

/** Lets the move's requests (promises on no timer) run. */
async function settle (clock: FakeClock): Promise<void> {
  for (let i = 0; i < 20; i++) await clock.advance(0)
}

test('follow: the address deprecated -> pinholes made on the new one first, then deleted on the old; address-changed, mapped with the new address; close deletes on the new', async (ctx) => {
  const t = setup(ctx)
  await t.nat.addMapping('tcp', 4001)
  await t.nat.addMapping('udp', 4002)
  await t.clock.advance(30_000)
  await settle(t.clock)
  assert.equal(t.reads(), 1, 'read every 30 s')
  assert.deepEqual(t.table.log, [`map [${A}]:tcp/4001`, `map [${A}]:udp/4002`], 'no change: nothing sent')
  t.set([host(B), host(A, true)])
  await t.clock.advance(30_000)
  await settle(t.clock)
  const moves = t.table.log.slice(2)
  for (const rule of ['tcp/4001', 'udp/4002']) {
    assert.ok(moves.indexOf(`map [${B}]:${rule}`) >= 0 && moves.indexOf(`map [${B}]:${rule}`) < moves.indexOf(`unmap [${A}]:${rule}`), `${rule}: made on the new address before the delete on the old: ${moves.join(', ')}`)
  }
  assert.equal(moves.length, 4)
  assert.deepEqual([...t.table.rules.values()].map((r) => r.address), [B, B])
  assert.deepEqual(t.events.filter(([name]) => name === 'address-changed').map(([, e]) => e), [{ family: 6, previous: A, address: B }])
  const mapped = t.events.filter(([name]) => name === 'mapped').map(([, e]) => e as MappingEvent)
  assert.deepEqual(mapped.map((e) => [e.family, e.externalAddress, e.internalPort]), [[6, A, 4001], [6, A, 4002], [6, B, 4001], [6, B, 4002]])
  assert.deepEqual(t.nat.getMapping('tcp', 4001), { address: B, port: 4001 })
  assert.deepEqual(t.table.closed, [A], 'the old address\'s gateway closed once nothing is on it')
  // The renewal goes to the new address.
  await t.clock.advance(300_000)
  await settle(t.clock)
  assert.ok(t.table.log.includes(`renew [${B}]:tcp/4001`))
  assert.deepEqual(await t.nat.close(), [])
  assert.equal(t.table.rules.size, 0)
  assert.ok(t.table.log.slice(-2).every((l) => l.startsWith(`unmap [${B}]`)))
})

test('follow: the address removed and the map on the new one refused once -> the old pinhole stays until a retry succeeds, then deleted; host has no address left: nothing moves', async (ctx) => {
  const t = setup(ctx)
  await t.nat.addMapping('tcp', 4001)
  t.set([])
  await t.clock.advance(30_000)
  await settle(t.clock)
  assert.equal(t.table.log.length, 1, 'no address at all: the pinhole stays where it is')
  t.table.failing.set(B, 1)
  t.set([host(B)])
  await t.clock.advance(30_000)
  await settle(t.clock)
  assert.deepEqual(t.table.log.slice(1), [`map [${B}]:tcp/4001`])
  assert.deepEqual([...t.table.rules.values()].map((r) => r.address), [A], 'the old one kept while the new one is not made')
  assert.equal(t.events.filter(([name]) => name === 'error').length, 1)
  assert.deepEqual(t.table.closed, [], 'the old gateway stays open: it holds a pinhole')
  await t.clock.advance(120_000)
  await settle(t.clock)
  assert.deepEqual(t.table.log.slice(2), [`map [${B}]:tcp/4001`, `unmap [${A}]:tcp/4001`])
  assert.deepEqual([...t.table.rules.values()].map((r) => r.address), [B])
  await t.nat.close()
  assert.equal(t.table.rules.size, 0)
  assert.deepEqual([...(t.table.closed as string[])].sort(), [B, A].sort(), 'both gateways closed by close()')
})

test('follow: the IPv6 side of an IPv4 NAT moves its pinholes and the IPv4 NAT passes address-changed on; the IPv4 mapping untouched', async (ctx) => {
  const clock4 = new FakeClock()
  const v4 = await SimulatedPmpGateway.start({ clock: clock4, externalAddress: '198.51.100.1' })
  ctx.after(async () => { await v4.close() })
  const t = setup(ctx, { v4 })
  await t.nat.addMapping('tcp', 4001, { family: 'both' })
  assert.equal(v4.mappings().length, 1)
  t.set([host(B)])
  await t.clock.advance(30_000)
  await settle(t.clock)
  assert.deepEqual(t.events.filter(([name]) => name === 'address-changed').map(([, e]) => e), [{ family: 6, previous: A, address: B }])
  assert.deepEqual(t.nat.getMapping('tcp', 4001, { family: 6 }), { address: B, port: 4001 })
  assert.deepEqual(t.nat.getMapping('tcp', 4001, { family: 4 }), { address: '198.51.100.1', port: 4001 })
  assert.equal(v4.mappings().length, 1)
  await t.nat.close()
  assert.equal(t.table.rules.size, 0)
  assert.equal(v4.mappings().length, 0)
})

test('follow: a NAT whose IPv6 gateway opens a non-global address (::1) or with followAddress false reads no addresses', async (ctx) => {
  const clock = new FakeClock()
  const table = new PinholeTable(clock)
  let reads = 0
  const addresses = (): HostIpv6Address[] => { reads++; return [host(B)] }
  const loop = new NAT(table.gateway('::1'), { clock, family: 6, followAddress: { addresses } })
  const off = new NAT(table.gateway(A), { clock, family: 6, followAddress: false })
  ctx.after(async () => { await loop.close(); await off.close() })
  await loop.addMapping('tcp', 4001)
  await off.addMapping('tcp', 4002)
  await clock.advance(120_000)
  assert.equal(reads, 0)
  assert.deepEqual(table.log, ['map [::1]:tcp/4001', `map [${A}]:tcp/4002`])
})
