import { test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { discoverGateway } from '../../src/discover/discover.js'
import { NAT } from '../../src/nat/nat.js'
import { decodeNatPmpRequest } from '../../src/natpmp/codec.js'
import { NatPmpClient } from '../../src/port-control/natpmp-client.js'
import { FakeClock } from '../../src/testing/fake-clock.js'
import { SimulatedPmpGateway } from '../../src/testing/pmp-gateway.js'
import { waitFor } from '../helpers/wait.js'
import { mapChecked } from '../../src/gateway.js'

/** NAT-PMP and PCP router quirks of shared/reference/router-quirks-and-anchors.md §3. */

async function start (ctx: TestContext, clock?: FakeClock): Promise<SimulatedPmpGateway> {
  const gateway = await SimulatedPmpGateway.start(clock === undefined ? {} : { clock })
  ctx.after(async () => { await gateway.close() })
  return gateway
}

test('quirk 21: NAT-PMP suggested port 0 fails to allocate on RouterOS (tailscale#13785): natmapper suggests the internal port, then the port it was granted, never 0 except to delete', async (ctx) => {
  const clock = new FakeClock()
  const gateway = await start(ctx, clock)
  const suggested: number[] = []
  gateway.faults.mangle = (answer, request) => {
    const decoded = decodeNatPmpRequest(request)
    if (decoded.opcode === 'map') suggested.push(decoded.suggestedExternalPort)
    return answer
  }
  const nat = new NAT(new NatPmpClient({ gateway: gateway.address, port: gateway.port, clock }), { clock, random: () => 0 })
  await nat.addMapping('udp', 7002)
  gateway.dropMappings()
  await clock.advance(3600_000)
  await nat.close()
  assert.deepEqual(suggested, [7002, 7002, 0], 'map, renew (the granted port), delete (RFC 6886 §3.4: 0)')
})

test('quirk 24: PCP ADDRESS_MISMATCH (an unexpected NAT between client and server: tailscale PR #3397): PCP is passed over and NAT-PMP used', async (ctx) => {
  const gateway = await start(ctx)
  gateway.faults.addressMismatch = true
  const found = await discoverGateway({ gateway: gateway.address, port: gateway.port, methods: ['pcp', 'natpmp'], timeout: 2000, waitForAll: true })
  ctx.after(() => { found.gateway.close() })
  assert.equal(found.gateway.method, 'natpmp')
  const pcp = found.probes.find((p) => p.method === 'pcp')
  assert.equal(pcp?.ok, false)
  assert.match(pcp?.error?.message ?? '', /ADDRESS_MISMATCH/)
  const mapping = await mapChecked(found.gateway, { protocol: 'tcp', internalPort: 7001, lifetimeSeconds: 60 })
  assert.equal(mapping.method, 'natpmp')
  await found.gateway.unmap(mapping)
})

test('quirk 42: a NAT-PMP address change announced once (miniupnpd sends one packet, to 5350 and 5351, not RFC 6886\'s ten): that one packet brings every mapping back', async (ctx) => {
  const clock = new FakeClock()
  const gateway = await SimulatedPmpGateway.start({ clock, pcp: false })
  ctx.after(async () => { await gateway.close() })
  const client = new NatPmpClient({ gateway: gateway.address, port: gateway.port, clock })
  const announcements = await client.describe().listen?.({ portControl: { port: 0, bindAddress: '127.0.0.1', multicastGroup: undefined } })
  assert.ok(announcements !== undefined)
  const nat = new NAT(client, { clock, random: () => 0 })
  ctx.after(async () => { await nat.close() })
  await nat.addMapping('tcp', 4001)
  await nat.addMapping('udp', 4002)
  gateway.restart()
  gateway.externalAddress = '11.0.0.77'
  assert.equal(gateway.mappings().length, 0)
  gateway.announce({ address: '127.0.0.1', port: announcements.port })
  await waitFor(() => nat.externalAddress === '11.0.0.77', 'the announcement')
  await clock.advance(0)
  await waitFor(() => gateway.mappings().length === 2, 'both mappings back')
})
