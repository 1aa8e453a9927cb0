import { test } from 'node:test'
import assert from 'node:assert/strict'
import { FirewallDisabledError, GatewayRefusedError, InboundPinholeNotAllowedError, NoResponseError } from '../../src/errors.js'
import { ServiceType } from '../../src/upnp/codes.js'
import { PinholeClient } from '../../src/upnp/pinhole.js'
import { FakeClock } from '../../src/testing/fake-clock.js'
import { SimulatedIgd } from '../../src/testing/igd.js'
import { waitFor } from '../helpers/wait.js'

const FC = ServiceType.WANIPv6FirewallControl1

/** SimulatedIgd on ::1, answering WANIPv6FirewallControl as miniupnpd 2.3.1 does (606 when the sender is not the InternalClient, 704 for an unknown UniqueID). */
async function router (t: { after: (fn: () => Promise<void>) => void }, clock?: FakeClock): Promise<SimulatedIgd> {
  const igd = await SimulatedIgd.start({ ipv6Address: '::1', ...(clock === undefined ? {} : { clock }) })
  t.after(async () => { await igd.close() })
  return igd
}

const actions = (igd: SimulatedIgd): string[] => igd.requests.filter((r) => r.service === FC).map((r) => r.what)

test('open: GetFirewallStatus once, then AddPinhole sent from the address opened; the UniqueID is kept; delete', async (t) => {
  const igd = await router(t)
  const client = new PinholeClient({ controlURL: igd.pinholeControlUrl! })
  const pinhole = await client.open({ internalClient: '0:0:0:0:0:0:0:1', internalPort: 4001, protocol: 'tcp', leaseTimeSeconds: 600 })
  assert.equal(pinhole.uniqueId, 1)
  assert.equal(pinhole.internalClient, '::1')
  assert.equal(pinhole.renewAtMs - pinhole.grantedAtMs, 300_000)
  await client.open({ internalClient: '::1', internalPort: 4002, protocol: 'udp', leaseTimeSeconds: 600 })
  assert.deepEqual(actions(igd), ['GetFirewallStatus', 'AddPinhole', 'AddPinhole'])
  const sent = igd.requests.find((r) => r.what === 'AddPinhole')!
  assert.deepEqual({ from: sent.from, args: Object.fromEntries(sent.args!) },
    { from: '::1', args: { RemoteHost: '', RemotePort: '0', InternalClient: '::1', InternalPort: '4001', Protocol: '6', LeaseTime: '600' } })
  assert.equal(await client.checkWorking(pinhole), false)
  await client.delete(pinhole)
  assert.deepEqual(igd.pinholes().map((p) => p.uniqueId), [2])
  await client.delete(pinhole) // 704: already gone counts as deleted
  assert.equal(igd.requests.at(-1)!.fault, 704)
})

test('a firewall that is off, or pinholes not allowed: a clear error, and no AddPinhole', async (t) => {
  for (const [quirk, type] of [['firewallDisabled', FirewallDisabledError], ['inboundPinholesDisallowed', InboundPinholeNotAllowedError]] as const) {
    const igd = await router(t)
    igd.quirks[quirk] = true
    const client = new PinholeClient({ controlURL: igd.pinholeControlUrl! })
    await assert.rejects(client.open({ internalClient: '::1', internalPort: 4001, protocol: 'tcp', leaseTimeSeconds: 60 }), type)
    assert.deepEqual(actions(igd), ['GetFirewallStatus'])
  }
})

test('an address the host does not have cannot be sent from: refused locally, nothing reaches the router', async (t) => {
  const igd = await router(t)
  const client = new PinholeClient({ controlURL: igd.pinholeControlUrl! })
  await client.firewallStatus()
  await assert.rejects(client.open({ internalClient: '2001:db8::dead', internalPort: 4001, protocol: 'tcp', leaseTimeSeconds: 60 }), NoResponseError)
  assert.deepEqual(actions(igd), ['GetFirewallStatus', 'GetFirewallStatus'])
})

test('keep: UpdatePinhole at half the lease; a pinhole the router lost (704) is added again', async (t) => {
  const clock = new FakeClock()
  const igd = await router(t, clock)
  const client = new PinholeClient({ controlURL: igd.pinholeControlUrl!, clock })
  const pinhole = await client.open({ internalClient: '::1', internalPort: 4001, protocol: 'tcp', leaseTimeSeconds: 120 })
  const changes: number[] = []
  const errors: unknown[] = []
  const kept = client.keep(pinhole, { onChange: (p) => changes.push(p.uniqueId), onError: (e) => errors.push(e) })
  t.after(() => { kept.stop() })
  await clock.advance(59_999)
  assert.equal(igd.count('http', 'UpdatePinhole'), 0, 'not before half the lease')
  await clock.advance(1)
  await waitFor(() => changes.length === 1, 'the first UpdatePinhole')
  const update = igd.requests.at(-1)!
  assert.deepEqual({ what: update.what, from: update.from, args: update.args, fault: update.fault }, { what: 'UpdatePinhole', from: '::1', args: [['UniqueID', '1'], ['NewLeaseTime', '120']], fault: undefined })
  assert.equal(igd.pinholes()[0]!.expiresAtMs, clock.now() + 120_000)
  igd.dropPinholes() // the router forgot it
  await clock.advance(60_000)
  await waitFor(() => changes.length === 2, 'the pinhole added again')
  assert.deepEqual(igd.requests.slice(-2).map((r) => [r.what, r.fault]), [['UpdatePinhole', 704], ['AddPinhole', undefined]])
  assert.equal(kept.current.uniqueId, 2)
  assert.deepEqual(igd.pinholes().map((p) => p.uniqueId), [2])
  assert.deepEqual(changes, [1, 2])
  assert.deepEqual(errors, [])
})

test('606 from the router (sender is not the InternalClient) is a plain refusal', async (t) => {
  const igd = await router(t)
  const client = new PinholeClient({ controlURL: igd.pinholeControlUrl! })
  const pinhole = await client.open({ internalClient: '::1', internalPort: 4001, protocol: 'tcp', leaseTimeSeconds: 60 })
  const foreign = igd.occupyPinhole('2001:db8::5', 4001) // another host's pinhole, named by our UniqueID by mistake
  await assert.rejects(client.update({ ...pinhole, uniqueId: foreign }), (err: unknown) => err instanceof GatewayRefusedError && err.resultCode === 606)
  await assert.rejects(client.delete({ ...pinhole, uniqueId: foreign }), (err: unknown) => err instanceof GatewayRefusedError && err.resultCode === 606)
  assert.deepEqual(igd.pinholes().map((p) => p.internalClient), ['::1', '2001:db8::5'])
})

test('keep: a router that stops answering is retried at half the lease left, then 5 s doubling, never in a tight loop', async (t) => {
  const clock = new FakeClock()
  const igd = await SimulatedIgd.start({ ipv6Address: '::1', clock })
  const client = new PinholeClient({ controlURL: igd.pinholeControlUrl!, clock, requestTimeoutMs: 1000 })
  const pinhole = await client.open({ internalClient: '::1', internalPort: 4001, protocol: 'tcp', leaseTimeSeconds: 10 })
  await igd.close()
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
