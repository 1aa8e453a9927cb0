// nat.stats() and the diagnostics channels (issue 16, counters): what a NAT counted after faults.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { subscribe, unsubscribe } from 'node:diagnostics_channel'
import type { RequestMessage } from '../../src/counters.js'
import { NAT } from '../../src/nat/nat.js'
import { PcpClient } from '../../src/port-control/pcp-client.js'
import { PcpResultCode } from '../../src/pcp/codes.js'
import { FakeClock } from '../../src/testing/fake-clock.js'
import { SimulatedPmpGateway } from '../../src/testing/pmp-gateway.js'
import { UpnpClient } from '../../src/upnp/client.js'
import { discoverOptions, startIgd } from '../upnp/setup.js'
import { waitFor } from '../helpers/wait.js'

test('PCP: requests, answers, retransmissions, timeouts and refusals by result are counted, with renewals and recoveries', async (ctx) => {
  const clock = new FakeClock()
  const gateway = await SimulatedPmpGateway.start({ clock })
  const client = new PcpClient({ gateway: gateway.address, port: gateway.port, clock })
  const nat = new NAT(client, { clock, random: () => 0, requestTimeoutMs: 1000 })
  ctx.after(async () => { await nat.close(); await gateway.close() })
  nat.on('error', () => {})

  gateway.faults.dropNext = 1
  const first = nat.addMapping('tcp', 4001)
  await waitFor(() => gateway.received.length === 1, 'the first MAP (dropped)')
  await clock.advance(250)
  await first
  gateway.faults.refuseWith = { pcp: PcpResultCode.NO_RESOURCES, lifetimeSeconds: 30 }
  await nat.addMapping('udp', 4002)
  gateway.faults.refuseWith = undefined
  gateway.faults.silent = true
  const third = nat.addMapping('udp', 4003)
  await waitFor(() => gateway.received.length === 3, 'the MAP the silent gateway drops', 2000)
  await clock.advance(1000)
  await third
  gateway.faults.silent = false
  await clock.advance(3600_000) // 4001's renewal; 4002 and 4003 retried and mapped meanwhile

  const stats = nat.stats()
  assert.equal(stats.method, 'pcp')
  const pcp = stats.protocols.pcp!
  assert.ok(pcp.requests >= 5, JSON.stringify(pcp))
  assert.ok(pcp.retransmissions >= 1, 'the dropped MAP was sent again')
  assert.equal(pcp.timeouts, 1, 'the MAP the silent gateway never answered')
  assert.deepEqual(pcp.refusals, { 'NO_RESOURCES (8)': 1 })
  assert.ok(pcp.answers >= pcp.requests - pcp.timeouts - 1, JSON.stringify(pcp))
  assert.equal(stats.mappingsHeld, 3)
  assert.equal(stats.mapped, 3)
  assert.ok(stats.renewals >= 1)
  assert.equal(stats.errors, 2, 'the refusal and the timeout')

  // A reboot, announced: one recovery round.
  const where = await client.describe().listen?.({ portControl: { port: 0, bindAddress: '127.0.0.1', multicastGroup: undefined } })
  gateway.restart()
  gateway.announce({ address: '127.0.0.1', port: where!.port })
  await waitFor(() => nat.stats().lost === 3, 'the three mappings lost')
  await clock.advance(0)
  await waitFor(() => nat.stats().recoveries === 1 && gateway.mappings().length === 3, 'the recovery')
  assert.equal(nat.stats().mapped, 6, 'each mapped again')
})

test('UPnP: each SOAP exchange and the description are counted, faults by name and code', async (ctx) => {
  const igd = await startIgd(ctx, { igdVersion: 1 })
  const client = await UpnpClient.discover(discoverOptions(igd))
  const nat = new NAT(client, { verifyIntervalMs: 0 })
  // Discovery's own exchanges (the description, GetExternalIPAddress) are before the client's.
  const before = igd.requests.filter((r) => r.kind === 'http').length
  igd.quirks.conflictNext = 1
  await nat.addMapping('tcp', 7001)
  // close() waits for the background read-back and makes the delete: all of it is counted.
  await nat.close()
  const upnp = nat.stats().protocols.upnp!
  assert.equal(upnp.requests, igd.requests.filter((r) => r.kind === 'http').length - before, 'every request the router saw from the client, no more')
  assert.equal(upnp.answers, upnp.requests)
  assert.deepEqual(upnp.refusals, { 'ConflictInMappingEntry (718)': 1 })
})

test('diagnostics channels: natmapper:request carries each request\'s fate, natmapper:nat each event', async (ctx) => {
  const requests: RequestMessage[] = []
  const events: string[] = []
  const onRequest = (m: unknown): void => { requests.push(m as RequestMessage) }
  const onNat = (m: unknown): void => { events.push((m as { event: string }).event) }
  subscribe('natmapper:request', onRequest)
  subscribe('natmapper:nat', onNat)
  ctx.after(() => { unsubscribe('natmapper:request', onRequest); unsubscribe('natmapper:nat', onNat) })
  const clock = new FakeClock()
  const gateway = await SimulatedPmpGateway.start({ clock })
  const nat = new NAT(new PcpClient({ gateway: gateway.address, port: gateway.port, clock }), { clock })
  await nat.addMapping('tcp', 4001)
  await nat.close()
  await gateway.close()
  assert.deepEqual(requests.map((m) => `${m.protocol} ${m.event}`), ['pcp sent', 'pcp answered', 'pcp sent', 'pcp answered'])
  assert.equal(requests[0]!.gateway, '127.0.0.1')
  assert.deepEqual(events, ['external-address', 'mapped', 'unmapped'])
})
