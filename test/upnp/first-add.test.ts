// The first add of a client whose discovery left the external address unasked
// (deferExternalAddress, as discoverNAT does): GetExternalIPAddress runs alongside a leased add,
// and nothing may be left on the router when the address turns out unusable.
import { test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { NoExternalAddressError, UncertainMappingError } from '../../src/errors.js'
import type { SimulatedIgd, SimulatedIgdOptions } from '../../src/testing/igd.js'
import { UpnpClient } from '../../src/upnp/client.js'
import { discoverOptions, startIgd } from './setup.js'
import { mapChecked } from '../../src/gateway.js'

async function deferred (ctx: TestContext, options: SimulatedIgdOptions = {}, configure?: (igd: SimulatedIgd) => void): Promise<{ igd: SimulatedIgd, client: UpnpClient }> {
  const igd = await startIgd(ctx, options)
  configure?.(igd)
  const client = await UpnpClient.discover(discoverOptions(igd, { deferExternalAddress: true }))
  ctx.after(() => { client.close() })
  return { igd, client }
}

const actions = (igd: SimulatedIgd): string[] => igd.requests.filter((r) => r.kind === 'http').map((r) => r.what)
const leasesAsked = (igd: SimulatedIgd): string[] => igd.requests
  .filter((r) => r.what === 'AddAnyPortMapping' || r.what === 'AddPortMapping')
  .map((r) => Object.fromEntries(r.args ?? []).NewLeaseDuration ?? '?')

test('deferred: discovery asks no address; the first add and GetExternalIPAddress are in flight together; the mapping has the address', async (ctx) => {
  const { igd, client } = await deferred(ctx, { externalAddress: '198.51.100.20' })
  assert.equal(client.selection?.externalAddress, undefined)
  assert.equal(client.selection?.rank, 0)
  assert.deepEqual(actions(igd), ['GET'])
  // Each request is held 20 ms: two in flight at once shows that neither waited for the other.
  igd.quirks.httpDelayMs = 20
  const mapping = await mapChecked(client, { protocol: 'tcp', internalPort: 7001, lifetimeSeconds: 7200 })
  assert.equal(mapping.externalAddress, '198.51.100.20')
  assert.equal(mapping.externalPort, 7001)
  assert.equal(igd.maxConcurrentHttp, 2)
  // The look-up before the add (ownership.ts) goes alongside GetExternalIPAddress; the add follows it.
  assert.deepEqual(actions(igd).slice(1, 3).sort(), ['GetExternalIPAddress', 'GetSpecificPortMappingEntry'])
  assert.equal(actions(igd)[3], 'AddAnyPortMapping')
  assert.equal(igd.count('http', 'GetExternalIPAddress'), 1)
  // Known from now on: the next add goes alone.
  await mapChecked(client, { protocol: 'tcp', internalPort: 7002, lifetimeSeconds: 7200 })
  assert.equal(igd.count('http', 'GetExternalIPAddress'), 1)
})

for (const text of ['', '0.0.0.0', 'Not connected']) {
  test(`deferred, and the address is ${JSON.stringify(text)}: the add made alongside is deleted, the error is NoExternalAddressError`, async (ctx) => {
    const { igd, client } = await deferred(ctx, { externalAddress: text })
    await assert.rejects(mapChecked(client, { protocol: 'tcp', internalPort: 7001, lifetimeSeconds: 7200 }), NoExternalAddressError)
    assert.equal(igd.count('http', 'AddAnyPortMapping'), 1)
    assert.equal(igd.count('http', 'DeletePortMapping'), 1)
    assert.deepEqual(igd.mappings(), [], 'nothing left on the router')
  })
}

test('deferred, no usable address, and the delete fails too: the error carries the mapping for the manager to delete (quirk 11)', async (ctx) => {
  const { igd, client } = await deferred(ctx, { externalAddress: '' }, (i) => { i.quirks.faultNext = [{ action: 'DeletePortMapping', code: 501 }] })
  const err = await mapChecked(client, { protocol: 'udp', internalPort: 7001, lifetimeSeconds: 7200 }).then(() => undefined, (e: unknown) => e)
  assert.ok(err instanceof UncertainMappingError && err.reason instanceof NoExternalAddressError, String(err))
  assert.deepEqual({ ...err.mapping, grantedAtMs: 0, expiresAtMs: 0, session: undefined, lifetimeSeconds: 0 }, {
    method: 'upnp', protocol: 'udp', internalPort: 7001, externalPort: 7001, externalAddress: undefined, lifetimeSeconds: 0, grantedAtMs: 0, expiresAtMs: 0, session: undefined
  })
  assert.equal(igd.mappings().length, 1, 'the router still has it: the manager must delete it')
})

test('deferred on a router that takes only permanent leases (725): no permanent add before the address is known', async (ctx) => {
  const { igd, client } = await deferred(ctx, { externalAddress: '' }, (i) => { i.quirks.onlyPermanentLeases = true })
  await assert.rejects(mapChecked(client, { protocol: 'tcp', internalPort: 7001, lifetimeSeconds: 7200 }), NoExternalAddressError)
  assert.deepEqual(leasesAsked(igd), ['7200'], 'the leased add was refused, and no lease-0 add followed')
  assert.deepEqual(igd.mappings(), [])
})

test('deferred on a permanent-only router with an address: the lease-0 add goes out once the address has come', async (ctx) => {
  const { igd, client } = await deferred(ctx, { externalAddress: '198.51.100.7' }, (i) => { i.quirks.onlyPermanentLeases = true })
  const mapping = await mapChecked(client, { protocol: 'tcp', internalPort: 7001, lifetimeSeconds: 7200 })
  assert.equal(mapping.externalAddress, '198.51.100.7')
  assert.deepEqual(leasesAsked(igd), ['7200', '0'])
  const order = actions(igd)
  assert.ok(order.indexOf('GetExternalIPAddress') < order.lastIndexOf('AddAnyPortMapping'), order.join(', '))
})

test('deferred, but a permanent lease asked for: the address is learnt first, alone', async (ctx) => {
  const { igd, client } = await deferred(ctx, { igdVersion: 1 })
  igd.quirks.httpDelayMs = 20
  await mapChecked(client, { protocol: 'tcp', internalPort: 7001, lifetimeSeconds: 0 })
  assert.equal(igd.maxConcurrentHttp, 1)
  assert.deepEqual(actions(igd).slice(1, 4), ['GetExternalIPAddress', 'GetSpecificPortMappingEntry', 'AddPortMapping'])
})

test('deferred is ignored when the description offers several services: they are compared by their addresses', async (ctx) => {
  const { igd, client } = await deferred(ctx, {}, (i) => { i.quirks.firstWanDisconnected = true })
  assert.notEqual(client.selection?.externalAddress, undefined)
  assert.ok(igd.count('http', 'GetExternalIPAddress') >= 1)
})
