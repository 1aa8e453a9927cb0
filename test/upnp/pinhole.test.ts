import { test } from 'node:test'
import assert from 'node:assert/strict'
import { FirewallDisabledError, GatewayRefusedError, InboundPinholeNotAllowedError, NoResponseError } from '../../src/errors.js'
import { PinholeClient } from '../../src/upnp/pinhole.js'
import { FakeClock } from '../../src/testing/fake-clock.js'
import { waitFor } from '../helpers/wait.js'
import { pinholeServer } from './pinhole-server.js'

test('open: GetFirewallStatus once, then AddPinhole sent from the address opened; the UniqueID is kept; delete', async (t) => {
  const router = await pinholeServer()
  t.after(() => router.server.close())
  const client = new PinholeClient({ controlURL: router.url })
  const pinhole = await client.open({ internalClient: '0:0:0:0:0:0:0:1', internalPort: 4001, protocol: 'tcp', leaseTimeSeconds: 600 })
  assert.equal(pinhole.uniqueId, 1)
  assert.equal(pinhole.internalClient, '::1')
  assert.equal(pinhole.renewAtMs - pinhole.grantedAtMs, 300_000)
  await client.open({ internalClient: '::1', internalPort: 4002, protocol: 'udp', leaseTimeSeconds: 600 })
  assert.deepEqual(router.seen.map((s) => s.action), ['GetFirewallStatus', 'AddPinhole', 'AddPinhole'])
  assert.deepEqual(router.seen[1], { action: 'AddPinhole', from: '::1', args: { RemoteHost: '', RemotePort: '0', InternalClient: '::1', InternalPort: '4001', Protocol: '6', LeaseTime: '600' } })
  assert.equal(await client.checkWorking(pinhole), false)
  await client.delete(pinhole)
  assert.equal(router.pinholes.has(1), false)
  await client.delete(pinhole) // 704: already gone counts as deleted
})

test('a firewall that is off, or pinholes not allowed: a clear error, and no AddPinhole', async (t) => {
  for (const [options, type] of [[{ firewallEnabled: false }, FirewallDisabledError], [{ inboundAllowed: false }, InboundPinholeNotAllowedError]] as const) {
    const router = await pinholeServer(options)
    t.after(() => router.server.close())
    const client = new PinholeClient({ controlURL: router.url })
    await assert.rejects(client.open({ internalClient: '::1', internalPort: 4001, protocol: 'tcp', leaseTimeSeconds: 60 }), type)
    assert.deepEqual(router.seen.map((s) => s.action), ['GetFirewallStatus'])
  }
})

test('an address the host does not have cannot be sent from: refused locally, nothing reaches the router', async (t) => {
  const router = await pinholeServer()
  t.after(() => router.server.close())
  const client = new PinholeClient({ controlURL: router.url })
  await client.firewallStatus()
  await assert.rejects(client.open({ internalClient: '2001:db8::dead', internalPort: 4001, protocol: 'tcp', leaseTimeSeconds: 60 }), NoResponseError)
  assert.deepEqual(router.seen.map((s) => s.action), ['GetFirewallStatus', 'GetFirewallStatus'])
})

test('keep: UpdatePinhole at half the lease; a pinhole the router lost (704) is added again', async (t) => {
  const router = await pinholeServer()
  t.after(() => router.server.close())
  const clock = new FakeClock()
  const client = new PinholeClient({ controlURL: router.url, clock })
  const pinhole = await client.open({ internalClient: '::1', internalPort: 4001, protocol: 'tcp', leaseTimeSeconds: 120 })
  const changes: number[] = []
  const errors: unknown[] = []
  const kept = client.keep(pinhole, { onChange: (p) => changes.push(p.uniqueId), onError: (e) => errors.push(e) })
  t.after(() => { kept.stop() })
  await clock.advance(59_999)
  assert.equal(router.seen.filter((s) => s.action === 'UpdatePinhole').length, 0, 'not before half the lease')
  await clock.advance(1)
  await waitFor(() => changes.length === 1, 'the first UpdatePinhole')
  assert.deepEqual(router.seen.at(-1), { action: 'UpdatePinhole', from: '::1', args: { UniqueID: '1', NewLeaseTime: '120' } })
  router.pinholes.clear() // the router restarted
  await clock.advance(60_000)
  await waitFor(() => changes.length === 2, 'the pinhole added again')
  assert.deepEqual(router.seen.slice(-2).map((s) => s.action), ['UpdatePinhole', 'AddPinhole'])
  assert.equal(kept.current.uniqueId, 2)
  assert.deepEqual(changes, [1, 2])
  assert.deepEqual(errors, [])
})

test('606 from the router (sender is not the InternalClient) is a plain refusal', async (t) => {
  const router = await pinholeServer()
  t.after(() => router.server.close())
  const client = new PinholeClient({ controlURL: router.url })
  const pinhole = await client.open({ internalClient: '::1', internalPort: 4001, protocol: 'tcp', leaseTimeSeconds: 60 })
  router.pinholes.get(1)!.InternalClient = '2001:db8::5' // as if another host had opened it
  await assert.rejects(client.update(pinhole), (err: unknown) => err instanceof GatewayRefusedError && err.resultCode === 606)
})

test('keep: a router that stops answering is retried at half the lease left, then 5 s doubling, never in a tight loop', async (t) => {
  const router = await pinholeServer()
  const clock = new FakeClock()
  const client = new PinholeClient({ controlURL: router.url, clock, requestTimeoutMs: 1000 })
  const pinhole = await client.open({ internalClient: '::1', internalPort: 4001, protocol: 'tcp', leaseTimeSeconds: 10 })
  await new Promise<void>((resolve) => router.server.close(() => { resolve() }))
  const errors: unknown[] = []
  const kept = client.keep(pinhole, { onError: (e) => errors.push(e) })
  t.after(() => { kept.stop() })
  await clock.advance(5000)
  await waitFor(() => errors.length === 1, 'the first failed UpdatePinhole')
  assert.ok(errors[0] instanceof NoResponseError, String(errors[0]))
  await clock.advance(4999)
  assert.equal(errors.length, 1, 'not before 5 s (half of the 5 s left is less)')
  await clock.advance(1)
  await waitFor(() => errors.length === 2, 'the second attempt')
  // The lease ran out at 10 s: now 10 s, then 20 s.
  await clock.advance(9999)
  assert.equal(errors.length, 2)
  await clock.advance(1)
  await waitFor(() => errors.length === 3, 'the third attempt')
  assert.equal(clock.pendingTimers, 1)
})
