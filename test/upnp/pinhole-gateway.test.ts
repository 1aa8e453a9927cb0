import { test } from 'node:test'
import assert from 'node:assert/strict'
import { FirewallDisabledError, GatewayRefusedError, InboundPinholeNotAllowedError, TimeoutError } from '../../src/errors.js'
import type { Gateway, PortMapping } from '../../src/gateway.js'
import { PinholeClient, type Pinhole } from '../../src/upnp/pinhole.js'
import { PinholeGateway, withPinholeDelete } from '../../src/upnp/pinhole-gateway.js'
import { pinholeServer } from './pinhole-server.js'
import { PcpClient } from '../../src/port-control/pcp-client.js'
import { SimulatedPmpGateway } from '../../src/testing/pmp-gateway.js'
import { SimulatedIgd } from '../../src/testing/igd.js'

test('PinholeGateway: map = AddPinhole from the address opened, renew = UpdatePinhole, unmap = DeletePinhole; the UniqueID kept in the mapping', async (t) => {
  const router = await pinholeServer()
  t.after(() => router.server.close())
  const gateway = new PinholeGateway({ client: new PinholeClient({ controlURL: router.url }), localAddress: '0::1' })
  assert.equal(gateway.method, 'upnp-pinhole')
  assert.equal(gateway.address, '::1')
  assert.equal(await gateway.externalAddress(), '::1')
  const { mapping } = await gateway.map({ protocol: 'tcp', internalPort: 4001, lifetimeSeconds: 7200 })
  assert.equal(mapping.method, 'upnp-pinhole')
  assert.equal(mapping.externalAddress, '::1')
  assert.equal(mapping.externalPort, 4001)
  assert.equal(mapping.lifetimeSeconds, 7200)
  assert.equal((mapping.session as Pinhole).uniqueId, 1)
  assert.deepEqual(router.seen[1], { action: 'AddPinhole', from: '::1', args: { RemoteHost: '', RemotePort: '0', InternalClient: '::1', InternalPort: '4001', Protocol: '6', LeaseTime: '7200' } })
  const renewed = await gateway.renew(mapping)
  assert.deepEqual(router.seen.at(-1), { action: 'UpdatePinhole', from: '::1', args: { UniqueID: '1', NewLeaseTime: '7200' } })
  await gateway.unmap(renewed)
  assert.equal(router.pinholes.size, 0)
  assert.deepEqual(router.seen.map((s) => s.action), ['GetFirewallStatus', 'AddPinhole', 'UpdatePinhole', 'DeletePinhole'])
})

test('PinholeGateway: a lease of 0 (permanent) or above 86400 s is asked as 1..86400; a renewal of a pinhole the router lost adds it again', async (t) => {
  const router = await pinholeServer()
  t.after(() => router.server.close())
  const gateway = new PinholeGateway({ client: new PinholeClient({ controlURL: router.url }), localAddress: '::1' })
  assert.equal((await gateway.map({ protocol: 'udp', internalPort: 4002, lifetimeSeconds: 0 })).mapping.lifetimeSeconds, 1)
  const { mapping } = await gateway.map({ protocol: 'udp', internalPort: 4003, lifetimeSeconds: 100_000 })
  assert.equal(mapping.lifetimeSeconds, 86_400)
  router.pinholes.clear() // the router restarted
  const again = await gateway.renew(mapping)
  assert.deepEqual(router.seen.slice(-2).map((s) => s.action), ['UpdatePinhole', 'AddPinhole'])
  assert.equal((again.session as Pinhole).uniqueId, 3)
  await assert.rejects(gateway.unmap({ ...mapping, method: 'pcp' }), /not a UPnP pinhole/)
})

test('PinholeGateway: 702 or 703 answered to AddPinhole are FirewallDisabledError and InboundPinholeNotAllowedError', async (t) => {
  for (const [code, type] of [[702, FirewallDisabledError], [703, InboundPinholeNotAllowedError]] as const) {
    const router = await pinholeServer({ addFault: code })
    t.after(() => router.server.close())
    const gateway = new PinholeGateway({ client: new PinholeClient({ controlURL: router.url }), localAddress: '::1' })
    await assert.rejects(gateway.map({ protocol: 'tcp', internalPort: 4001, lifetimeSeconds: 60 }), (err: unknown) => err instanceof type && err.resultCode === code)
  }
})

/** A PCP gateway whose delete answers as miniupnpd 2.3.1 does after a renewal of an IPv6 pinhole. */
function pcpRefusingDelete (error: Error): Gateway & { unmaps: number } {
  const gateway = {
    method: 'pcp' as const,
    address: '::1',
    unmaps: 0,
    externalAddress: async () => '::1',
    map: async () => { throw new Error('not used') },
    renew: async () => { throw new Error('not used') },
    unmap: async () => { gateway.unmaps++; throw error },
    onReset: () => () => {},
    describe: () => ({}),
    close: () => {}
  }
  return gateway
}

const pcpMapping: PortMapping = { method: 'pcp', protocol: 'tcp', internalPort: 4001, externalPort: 4001, externalAddress: '::1', lifetimeSeconds: 120, grantedAtMs: 0, expiresAtMs: 120_000, session: {} }

test('withPinholeDelete: PCP delete NOT_AUTHORIZED after a renewal -> AddPinhole of the same tuple gives the UniqueID -> DeletePinhole', async (t) => {
  const router = await pinholeServer()
  t.after(() => router.server.close())
  // The rule PCP made, as the router's UPnP service sees it.
  router.pinholes.set(1, { RemoteHost: '', RemotePort: '0', InternalClient: '::1', InternalPort: '4001', Protocol: '6', LeaseTime: '120' })
  const pcp = pcpRefusingDelete(new GatewayRefusedError('pcp', 2, 'NOT_AUTHORIZED'))
  const gateway = withPinholeDelete(pcp, new PinholeClient({ controlURL: router.url }), '::1')
  assert.equal(gateway.method, 'pcp')
  await gateway.unmap(pcpMapping)
  assert.equal(pcp.unmaps, 1)
  assert.equal(router.pinholes.size, 0, 'the pinhole is gone')
  assert.deepEqual(router.seen.map((s) => s.action), ['GetFirewallStatus', 'AddPinhole', 'DeletePinhole'])
  assert.equal(router.seen[2]?.args.UniqueID, '1')
})

test('withPinholeDelete: any other PCP failure is the caller\'s, and nothing is asked over UPnP', async (t) => {
  const router = await pinholeServer()
  t.after(() => router.server.close())
  for (const error of [new TimeoutError('no answer'), new GatewayRefusedError('pcp', 8, 'NO_RESOURCES')]) {
    const gateway = withPinholeDelete(pcpRefusingDelete(error), new PinholeClient({ controlURL: router.url }), '::1')
    await assert.rejects(gateway.unmap(pcpMapping), (err: unknown) => err === error)
  }
  assert.deepEqual(router.seen, [])
})

test('withPinholeDelete around a real PcpClient: map, renew, externalAddress and close reach the client itself (its private fields), unmap still deletes', async (t) => {
  const pmp = await SimulatedPmpGateway.start({ address: '::1' })
  const router = await pinholeServer()
  t.after(async () => { router.server.close(); await pmp.close() })
  const pcp = new PcpClient({ gateway: '::1', port: pmp.port, localAddress: '::1' })
  const gateway = withPinholeDelete(pcp, new PinholeClient({ controlURL: router.url }), '::1')
  const { mapping } = await gateway.map({ protocol: 'tcp', internalPort: 4001, lifetimeSeconds: 120 })
  assert.equal(mapping.method, 'pcp')
  assert.deepEqual(pmp.mappings().map((m) => [m.clientAddress, m.internalPort]), [['::1', 4001]])
  const renewed = await gateway.renew(mapping)
  assert.equal(renewed.internalPort, 4001)
  await gateway.unmap(renewed)
  assert.deepEqual(pmp.mappings(), [])
  assert.deepEqual(router.seen, [], 'nothing asked over UPnP while PCP deletes')
  gateway.close()
})

test('PinholeGateway.renew after a restart of a router that answers UpdatePinhole 402 for the lost UniqueID (miniupnpd 2.3.1): AddPinhole again', async (t) => {
  const igd = await SimulatedIgd.start({ ipv6Address: '::1' })
  t.after(async () => { await igd.close() })
  igd.quirks.unknownPinholeInvalidArgs = true
  const gateway = new PinholeGateway({ client: new PinholeClient({ controlURL: igd.pinholeControlUrl! }), localAddress: '::1' })
  const { mapping } = await gateway.map({ protocol: 'tcp', internalPort: 4011, lifetimeSeconds: 60 })
  await igd.restart({ sameHttpPort: true })
  assert.equal(igd.pinholes().length, 0)
  const again = await gateway.renew(mapping)
  const actions = igd.requests.filter((r) => r.kind === 'http').map((r) => r.what)
  assert.deepEqual(actions.slice(-2), ['UpdatePinhole', 'AddPinhole'])
  assert.equal(igd.pinholes().length, 1)
  assert.equal(igd.pinholes()[0]!.internalPort, 4011)
  assert.equal((again.session as Pinhole).uniqueId, igd.pinholes()[0]!.uniqueId)
})
