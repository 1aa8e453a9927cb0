import { test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { PcpClient } from '../../src/port-control/pcp-client.js'
import { AnnouncementListener } from '../../src/port-control/announcements.js'
import { SimulatedPmpGateway } from '../../src/testing/pmp-gateway.js'
import { FakeClock } from '../../src/testing/fake-clock.js'
import { NoResponseError } from '../../src/errors.js'
import { mapChecked } from '../../src/gateway.js'
import { waitFor } from '../helpers/wait.js'

/**
 * PCP with an IPv6 internal address (RFC 6887 §11: a firewall pinhole on an IPv6 router),
 * against the simulated gateway on ::1, from a socket bound to the address being opened.
 */

async function setup (ctx: TestContext) {
  const clock = new FakeClock()
  const gateway = await SimulatedPmpGateway.start({ clock, address: '::1' })
  const client = new PcpClient({ gateway: '::1', port: gateway.port, clock, localAddress: '::1' })
  ctx.after(async () => {
    client.close()
    await gateway.close()
  })
  return { clock, gateway, client }
}

test('PCP over IPv6: a MAP from the bound address carries it as the client address; the pinhole is that address and port; renew and delete', async (ctx) => {
  const t = await setup(ctx)
  const mapping = await mapChecked(t.client, { protocol: 'tcp', internalPort: 4001, lifetimeSeconds: 600 })
  assert.equal(mapping.externalAddress, '::1', 'a pinhole opens the internal address itself')
  assert.equal(mapping.externalPort, 4001)
  assert.deepEqual(t.gateway.received.map((r) => r.from), ['::1'])
  assert.deepEqual(t.gateway.mappings().map((m) => [m.clientAddress, m.internalPort]), [['::1', 4001]])
  const renewed = await t.client.renew(mapping)
  assert.equal(renewed.externalAddress, '::1')
  assert.equal(t.gateway.requestCount, 2)
  await t.client.unmap(renewed)
  assert.deepEqual(t.gateway.mappings(), [])
})

test('PCP over IPv6: an address the host does not have cannot be sent from: NoResponseError, nothing sent', async (ctx) => {
  const clock = new FakeClock()
  const gateway = await SimulatedPmpGateway.start({ clock, address: '::1' })
  const client = new PcpClient({ gateway: '::1', port: gateway.port, clock, localAddress: '2001:db8::dead' })
  ctx.after(async () => { client.close(); await gateway.close() })
  await assert.rejects(mapChecked(client, { protocol: 'tcp', internalPort: 4001, lifetimeSeconds: 600 }), NoResponseError)
  assert.equal(gateway.requestCount, 0)
})

test('ANNOUNCE over IPv6: a listener for an IPv6 gateway takes a udp6 socket and hears the gateway\'s ANNOUNCE', async (ctx) => {
  const t = await setup(ctx)
  const listener = await AnnouncementListener.start({ gateway: '::1', port: 0, bindAddress: '::1' })
  assert.ok(listener !== undefined)
  ctx.after(() => { listener.close() })
  assert.equal(listener.localAddress.address, '::1')
  const heard: string[] = []
  listener.on('announcement', (a) => heard.push(a.kind))
  t.gateway.announce({ address: '::1', port: listener.port })
  await waitFor(() => heard.includes('pcp'), 'the PCP ANNOUNCE')
})
