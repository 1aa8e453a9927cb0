import { test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { RemoteProtocolError } from '../../src/errors.js'
import { NAT } from '../../src/nat/nat.js'
import { FakeClock } from '../../src/testing/fake-clock.js'
import type { SimulatedIgd, SimulatedIgdOptions } from '../../src/testing/igd.js'
import { UpnpClient } from '../../src/upnp/client.js'
import { DEFAULT_SEARCH_SCHEDULE, IGD_SEARCH_TARGETS } from '../../src/upnp/ssdp.js'
import { discoverOptions, startIgd } from '../upnp/setup.js'
import { waitFor } from '../helpers/wait.js'
import { mapChecked } from '../../src/gateway.js'

/**
 * Router quirks of shared/reference/router-quirks-and-anchors.md §3 that concern UPnP IGD and
 * were not covered where the client is tested (test/upnp/client.test.ts): each test is named
 * after its quirk number and the router it was seen on. docs/quirks.md lists them all.
 */

async function setup (ctx: TestContext, options: SimulatedIgdOptions = {}, configure?: (igd: SimulatedIgd) => void): Promise<{ igd: SimulatedIgd, client: UpnpClient, clock: FakeClock }> {
  const clock = new FakeClock()
  const igd = await startIgd(ctx, { clock, ...options })
  configure?.(igd)
  const client = await UpnpClient.discover({ ...discoverOptions(igd), clock })
  ctx.after(() => { client.close() })
  return { igd, client, clock }
}

/** SOAP actions the IGD received, in order. */
const actions = (igd: SimulatedIgd): string[] => igd.requests.filter((r) => r.kind === 'http').map((r) => r.what)
const leases = (igd: SimulatedIgd, action: string): string[] =>
  igd.requests.filter((r) => r.what === action).map((r) => Object.fromEntries(r.args ?? []).NewLeaseDuration ?? '?')
const table = (igd: SimulatedIgd): string[] =>
  igd.mappings().map((m) => `${m.protocol} ${m.externalPort}->${m.internalClient}:${m.internalPort} lease ${m.leaseSeconds}`).sort()

test('quirk 10: leased entries dropped at once (old DD-WRT: tailscale#18196): the read-back finds none, the mapping is made again with a permanent lease, and that is remembered', async (ctx) => {
  const { igd, client } = await setup(ctx, { igdVersion: 1 }, (i) => { i.quirks.dropLeasedEntries = true })
  const mapping = await mapChecked(client, { protocol: 'tcp', internalPort: 7001, lifetimeSeconds: 7200 })
  assert.deepEqual(actions(igd), ['GET', 'GetExternalIPAddress', 'GetSpecificPortMappingEntry', 'AddPortMapping', 'GetSpecificPortMappingEntry', 'AddPortMapping', 'GetSpecificPortMappingEntry'])
  assert.deepEqual(leases(igd, 'AddPortMapping'), ['7200', '0'])
  assert.deepEqual(table(igd), ['TCP 7001->127.0.0.1:7001 lease 0'])
  // Refreshed at the pace asked for, so it comes back after a reboot; permanent on the router.
  assert.equal(mapping.lifetimeSeconds, 7200)
  await mapChecked(client, { protocol: 'udp', internalPort: 7002, lifetimeSeconds: 7200 })
  assert.deepEqual(leases(igd, 'AddPortMapping').slice(2), ['0'], 'the next mapping asks for a permanent lease straight away')
  assert.equal(igd.count('http', 'GetSpecificPortMappingEntry'), 4, 'and, with equal ports, is not read back (two look-ups before the adds, two read-backs)')
  assert.equal(igd.mappings().length, 2)
})

test('quirk 10: a router that keeps no entry at all, even permanent, is a RemoteProtocolError, not a mapping', async (ctx) => {
  const { igd, client } = await setup(ctx, { igdVersion: 1 }, (i) => {
    i.quirks.dropLeasedEntries = true
    // The look-up before the add, then the two read-backs.
    i.quirks.faultNext = [{ action: 'GetSpecificPortMappingEntry', code: 714 }, { action: 'GetSpecificPortMappingEntry', code: 714 }, { action: 'GetSpecificPortMappingEntry', code: 714 }]
  })
  await assert.rejects(mapChecked(client, { protocol: 'tcp', internalPort: 7001, lifetimeSeconds: 7200 }),
    (err: unknown) => err instanceof RemoteProtocolError && /even as a permanent lease, but does not keep it/.test(err.message))
  // It said it had none, but a permanent entry may be hidden behind that answer: deleted all the same.
  assert.equal(actions(igd).at(-1), 'DeletePortMapping')
  assert.deepEqual(igd.mappings(), [])
})

test('map() resolves once the add is answered; the read-back it returns is still running and finds the mapping as made', async (ctx) => {
  const { igd, client } = await setup(ctx)
  const { mapping, check } = await client.map({ protocol: 'tcp', internalPort: 7001, lifetimeSeconds: 7200 })
  assert.ok(check !== undefined, 'the first add of a client is read back')
  let settled = false
  void check.then(() => { settled = true }, () => { settled = true })
  await Promise.resolve()
  assert.equal(settled, false, 'the read-back needs a round trip the caller did not wait for')
  assert.equal(await check, mapping, 'found as made: the same mapping')
  assert.deepEqual(actions(igd).slice(-2), ['AddAnyPortMapping', 'GetSpecificPortMappingEntry'])
  const second = await client.map({ protocol: 'udp', internalPort: 7002, lifetimeSeconds: 7200 })
  assert.equal(second.check, undefined, 'once one checked out, equal-port adds are trusted')
})

test('quirk 10: under the manager, addMapping returns at the add, the read-back then finds no entry, and the permanent re-add is announced as mapped and removed by close()', async (ctx) => {
  const { igd, client, clock } = await setup(ctx, { igdVersion: 1 }, (i) => { i.quirks.dropLeasedEntries = true })
  const nat = new NAT(client, { clock, verifyIntervalMs: 0 })
  const mapped: Array<{ externalPort: number }> = []
  nat.on('mapped', (m) => mapped.push(m))
  await nat.addMapping('tcp', 7001)
  await waitFor(() => mapped.length === 2, 'the mapping announced again after the read-back')
  assert.deepEqual(table(igd), ['TCP 7001->127.0.0.1:7001 lease 0'])
  assert.deepEqual(nat.getMapping('tcp', 7001), { address: '11.0.0.1', port: 7001 })
  await nat.close()
  assert.deepEqual(igd.mappings(), [])
})

test('quirk 28: under the manager, the equal-port mapping made after the read-back replaces the first, in getMapping and on the router', async (ctx) => {
  const { igd, client, clock } = await setup(ctx, {}, (i) => { i.quirks.listExternalAsInternalPort = true })
  const nat = new NAT(client, { clock, verifyIntervalMs: 0 })
  const mapped: number[] = []
  nat.on('mapped', (m) => mapped.push(m.externalPort))
  await nat.addMapping('tcp', 7001, { externalPort: 40000 })
  await waitFor(() => mapped.length === 2, 'the replacement announced')
  assert.deepEqual(mapped, [40000, 7001])
  assert.equal(nat.getMapping('tcp', 7001)?.port, 7001)
  assert.deepEqual(table(igd), ['TCP 7001->127.0.0.1:7001 lease 7200'])
  await nat.close()
  assert.deepEqual(igd.mappings(), [])
})

test('close() while a read-back is still running waits for it: the permanent re-add it makes is deleted too', async (ctx) => {
  const { igd, client, clock } = await setup(ctx, { igdVersion: 1 }, (i) => { i.quirks.dropLeasedEntries = true })
  const nat = new NAT(client, { clock, verifyIntervalMs: 0 })
  await nat.addMapping('tcp', 7001)
  await nat.close()
  assert.deepEqual(igd.mappings(), [])
  assert.ok(leases(igd, 'AddPortMapping').includes('0'), 'the re-add happened during close()')
})

test('a router that keeps nothing, found by the background read-back: the mapping is lost, retried later, and nothing is left', async (ctx) => {
  const { igd, client, clock } = await setup(ctx, { igdVersion: 1 }, (i) => {
    i.quirks.dropLeasedEntries = true
    // The look-up before the add, then the two read-backs.
    i.quirks.faultNext = [{ action: 'GetSpecificPortMappingEntry', code: 714 }, { action: 'GetSpecificPortMappingEntry', code: 714 }, { action: 'GetSpecificPortMappingEntry', code: 714 }]
  })
  const nat = new NAT(client, { clock, verifyIntervalMs: 0 })
  const lost: Error[] = []
  nat.on('lost', (e) => lost.push(e.reason))
  nat.on('error', () => {})
  await nat.addMapping('tcp', 7001)
  await waitFor(() => lost.length === 1, 'lost')
  assert.match(lost[0]!.message, /even as a permanent lease, but does not keep it/)
  assert.equal(nat.getMapping('tcp', 7001), undefined)
  assert.equal(clock.pendingTimers > 0, true, 'a retry is scheduled')
  await nat.close()
  assert.deepEqual(igd.mappings(), [])
})

test('quirk 11: permanent-lease leak on a failed follow-up (MikroTik: tailscale#10602): a lost reply is retried on the same port and, when given up on, deleted; never a second rule', async (ctx) => {
  const { igd, client, clock } = await setup(ctx, { igdVersion: 1 }, (i) => { i.quirks.onlyPermanentLeases = true })
  const nat = new NAT(client, { clock, verifyIntervalMs: 0 })
  const errors: Error[] = []
  nat.on('error', (err) => errors.push(err))
  ctx.after(async () => { await nat.close() })
  await nat.addMapping('tcp', 4001)
  assert.deepEqual(table(igd), ['TCP 4001->127.0.0.1:4001 lease 0'])

  // The router makes the rule but the reply is lost: the client cannot know the rule exists.
  igd.quirks.applyThenResetNext = ['AddPortMapping']
  await nat.addMapping('udp', 4002)
  assert.equal(errors.length, 1)
  assert.equal(nat.getMapping('udp', 4002), undefined)
  assert.equal(igd.mappings().length, 2, 'the router made it anyway')
  await clock.advance(5_000) // the retry: the same external port, so it overwrites
  await waitFor(() => nat.getMapping('udp', 4002) !== undefined, 'the retry')
  assert.deepEqual(table(igd), ['TCP 4001->127.0.0.1:4001 lease 0', 'UDP 4002->127.0.0.1:4002 lease 0'])

  // Lost again, and this time the program stops before any retry: the rule is deleted all the same.
  igd.quirks.applyThenResetNext = ['AddPortMapping']
  await nat.addMapping('tcp', 4003)
  assert.equal(igd.mappings().length, 3)
  await nat.close()
  assert.deepEqual(table(igd), [], 'every rule deleted, the uncertain one too')
})

test('quirk 11: closing while an add is in flight gives it up and deletes whatever it may have made', async (ctx) => {
  const igd = await startIgd(ctx, { igdVersion: 1 })
  igd.quirks.onlyPermanentLeases = true
  const client = await UpnpClient.discover(discoverOptions(igd))
  const nat = new NAT(client, { verifyIntervalMs: 0 })
  nat.on('error', () => {})
  await nat.addMapping('tcp', 4001)
  igd.quirks.httpDelayMs = 100
  const adding = nat.addMapping('udp', 4002)
  // The look-up of the port first (ownership.ts), then the add: closed while the add is in flight.
  const looksUp4002 = (r: { what: string, args?: Array<[string, string]> }): boolean => r.what === 'GetSpecificPortMappingEntry' && Object.fromEntries(r.args ?? []).NewExternalPort === '4002'
  await waitFor(() => igd.requests.some(looksUp4002), 'the look-up of 4002 answered', 2000)
  await waitFor(() => igd.httpInFlight === 1, 'the add in flight', 2000)
  await nat.close()
  await adding
  const lookups = igd.requests.filter(looksUp4002).length
  assert.equal(lookups, 2, 'what the add given up on may have made is looked up, to be deleted if there')
  assert.deepEqual(table(igd), [], 'and nothing is left when close() returns')
})

test('quirk 11: GetExternalIPAddress failing means no add at all, so nothing can be left behind', async (ctx) => {
  const { igd, client } = await setup(ctx, { igdVersion: 1 }, (i) => { i.quirks.onlyPermanentLeases = true })
  const fresh = new UpnpClient({ gateway: client.address, service: client.service })
  igd.quirks.faultNext = [{ action: 'GetExternalIPAddress', code: 501 }]
  await assert.rejects(mapChecked(fresh, { protocol: 'tcp', internalPort: 7001, lifetimeSeconds: 0 }))
  assert.equal(igd.count('http', 'AddPortMapping'), 0)
  assert.deepEqual(igd.mappings(), [])
})

test('quirk 26: table purge (ASUS: tailscale#10597): the 30-minute verification finds the mapping gone and makes it again; with the renewal, 2 router exchanges per mapping-hour', async (ctx) => {
  const { igd, client, clock } = await setup(ctx)
  const nat = new NAT(client, { clock, random: () => 0 })
  ctx.after(async () => { await nat.close() })
  await nat.addMapping('tcp', 4001)
  await nat.addMapping('udp', 4002)
  igd.dropMappings()
  await clock.advance(30 * 60_000 - 1)
  assert.equal(igd.mappings().length, 0, 'not checked before 30 min')
  await clock.advance(1)
  await waitFor(() => igd.mappings().length === 2, 'both mappings made again')
  assert.deepEqual(igd.mappings().map((m) => m.externalPort).sort(), [4001, 4002], 'on their ports')
  // Made again at 30 min: a check at 60 min, the renewal (half the 7200 s lease) at 90 min.
  const from = igd.requests.length
  const since = (what: string): number => igd.requests.slice(from).filter((r) => r.kind === 'http' && r.what === what).length
  await clock.advance(30 * 60_000)
  await waitFor(() => since('GetSpecificPortMappingEntry') === 2, 'one check per mapping')
  await clock.advance(30 * 60_000)
  await waitFor(() => since('AddPortMapping') === 2, 'one renewal per mapping')
  const hour = igd.requests.slice(from).filter((r) => r.kind === 'http').map((r) => r.what)
  assert.equal(hour.filter((w) => w !== 'GetExternalIPAddress').length, 2 * 2, `per mapping-hour: one check and one renewal (${hour.join(', ')})`)
})

test('quirk 26: a verification that gets no answer changes nothing and is tried again', async (ctx) => {
  const { igd, client, clock } = await setup(ctx)
  const nat = new NAT(client, { clock, verifyIntervalMs: 60_000 })
  ctx.after(async () => { await nat.close() })
  await nat.addMapping('tcp', 4001)
  igd.quirks.faultNext = [{ action: 'GetSpecificPortMappingEntry', code: 501 }]
  await clock.advance(60_000)
  // 2 so far: the look-up before the add and the read-back.
  await waitFor(() => igd.count('http', 'GetSpecificPortMappingEntry') === 3, 'first check')
  await clock.advance(60_000)
  await waitFor(() => igd.count('http', 'GetSpecificPortMappingEntry') === 4, 'second check')
  assert.equal(igd.count('http', 'AddAnyPortMapping'), 1, 'nothing re-made on a failed check')
})

test('quirk 28: the table shows internal port = external port (Orange FunBox6, SoftAtHome: tailscale#14344): deleted and made again with equal ports', async (ctx) => {
  const { igd, client } = await setup(ctx, {}, (i) => { i.quirks.listExternalAsInternalPort = true })
  const mapping = await mapChecked(client, { protocol: 'tcp', internalPort: 7001, suggestedExternalPort: 40000, lifetimeSeconds: 7200 })
  assert.equal(mapping.externalPort, 7001)
  assert.equal(mapping.internalPort, 7001)
  // Looked at before each add, the equal-port one too (another program may hold 7001).
  assert.deepEqual(actions(igd).slice(2), ['GetSpecificPortMappingEntry', 'AddAnyPortMapping', 'GetSpecificPortMappingEntry', 'DeletePortMapping', 'GetSpecificPortMappingEntry', 'AddPortMapping', 'GetSpecificPortMappingEntry'])
  assert.deepEqual(table(igd), ['TCP 7001->127.0.0.1:7001 lease 7200'], 'the lying entry is gone')
})

test('quirk 28: where equal ports are impossible (a low internal port) the mapping is refused and nothing is left', async (ctx) => {
  const { igd, client } = await setup(ctx, {}, (i) => {
    i.quirks.listExternalAsInternalPort = true
    i.quirks.lowPortsRefused = false
  })
  await assert.rejects(mapChecked(client, { protocol: 'tcp', internalPort: 80, lifetimeSeconds: 7200 }),
    (err: unknown) => err instanceof RemoteProtocolError && /another internal port than 80/.test(err.message))
  assert.deepEqual(igd.mappings(), [])
})

test('quirks 29 and 40: renewals never replace the internal port or client (tailscale#18348) nor add a second rule (miniupnpd pf backend: miniupnp#719): five renewals, one entry, the same ports', async (ctx) => {
  const { igd, client } = await setup(ctx, { igdVersion: 1 })
  let mapping = await mapChecked(client, { protocol: 'udp', internalPort: 7002, suggestedExternalPort: 41000, lifetimeSeconds: 600 })
  for (let i = 0; i < 5; i++) mapping = await client.renew(mapping)
  assert.equal(mapping.internalPort, 7002)
  assert.equal(mapping.externalPort, 41000)
  const adds = igd.requests.filter((r) => r.what === 'AddPortMapping').map((r) => Object.fromEntries(r.args!))
  assert.equal(adds.length, 6)
  for (const args of adds) {
    assert.equal(args.NewInternalPort, '7002')
    assert.equal(args.NewExternalPort, '41000')
    assert.equal(args.NewInternalClient, '127.0.0.1')
  }
  assert.deepEqual(table(igd), ['UDP 41000->127.0.0.1:7002 lease 600'], 'quirk 40 too: one entry, no duplicates')
})

test('quirk 19: "Disconnected" although mappings work (i2pd PR #2092): the only IGD is used all the same', async (ctx) => {
  const igd = await startIgd(ctx, { igdVersion: 1, externalAddress: '11.22.33.44' })
  igd.quirks.firstWanDisconnected = true
  igd.quirks.statusDisconnected = true
  // Real clock: with no first-rate answer, discovery waits out its settle time.
  const client = await UpnpClient.discover(discoverOptions(igd))
  ctx.after(() => { client.close() })
  assert.equal(client.selection?.status?.connectionStatus, 'Disconnected')
  assert.equal(client.selection?.rank, 3, 'an address but not connected: second-rate, still chosen')
  const mapping = await mapChecked(client, { protocol: 'tcp', internalPort: 7001, lifetimeSeconds: 7200 })
  assert.equal(mapping.externalAddress, '11.22.33.44')
  assert.equal(igd.mappings().length, 1)
})

test('quirk 38: listing unsupported (Sagemcom F@st 5684: miniupnp#665): mapping, verification, renewal and release never list', async (ctx) => {
  const { igd, client, clock } = await setup(ctx, {}, (i) => { i.quirks.noListing = true })
  const nat = new NAT(client, { clock, lifetimeSeconds: 1800, verifyIntervalMs: 300_000, random: () => 0 })
  await nat.addMapping('tcp', 4001)
  await clock.advance(300_000)
  await waitFor(() => igd.count('http', 'GetSpecificPortMappingEntry') === 3, 'a verification (after the look-up and the read-back)')
  await clock.advance(600_000)
  await waitFor(() => igd.count('http', 'AddPortMapping') === 1, 'a renewal')
  await nat.close()
  assert.deepEqual(igd.mappings(), [])
  const used = new Set(actions(igd))
  for (const action of used) {
    assert.ok(['GET', 'GetExternalIPAddress', 'AddAnyPortMapping', 'AddPortMapping', 'GetSpecificPortMappingEntry', 'DeletePortMapping'].includes(action), action)
  }
})

test('quirk 36: one router with two root descriptions (IGD:1 and IGD:2 at one address: nextcloudpi#261): one device chosen, one mapping made', async (ctx) => {
  const v2 = await startIgd(ctx, { igdVersion: 2 })
  const v1 = await startIgd(ctx, { igdVersion: 1 })
  // The unicast search reaches one description, the "multicast" one the other: both answer.
  const client = await UpnpClient.discover({ ...discoverOptions(v2), ssdpTarget: v1.ssdpMulticastTarget, settleMs: 50 })
  ctx.after(() => { client.close() })
  await mapChecked(client, { protocol: 'tcp', internalPort: 7001, lifetimeSeconds: 7200 })
  assert.equal(v1.mappings().length + v2.mappings().length, 1, 'never mapped twice')
  assert.ok(v1.count('ssdp') > 0 && v2.count('ssdp') > 0)
})

test('quirk 2: ssdp:all answered with the first descriptor only (Sagemcom FAST3890V3: tailscale#3557): natmapper never relies on ssdp:all; it asks for IGD:1 first, every IGD type later', async (ctx) => {
  const { igd } = await setup(ctx)
  const searched = igd.requests.filter((r) => r.kind === 'ssdp').map((r) => r.what)
  assert.ok(!searched.includes('ssdp:all'))
  assert.equal(searched[0], 'urn:schemas-upnp-org:device:InternetGatewayDevice:1')
  const scheduled = new Set(DEFAULT_SEARCH_SCHEDULE.flatMap((burst) => burst.searchTargets))
  for (const st of IGD_SEARCH_TARGETS) assert.ok(scheduled.has(st), st)
  assert.ok(!scheduled.has('ssdp:all'))
})

test('quirk 27: renewed entries listed but no longer forwarded (Technicolor CGA4131COM, RDK-B: tailscale#21208): with refreshByDeleteAdd each renewal deletes and adds, and the entry forwards again', async (ctx) => {
  const igd = await startIgd(ctx, { igdVersion: 1 })
  igd.quirks.staleOnOverwrite = true
  const plain = await UpnpClient.discover(discoverOptions(igd))
  ctx.after(() => { plain.close() })
  const first = await mapChecked(plain, { protocol: 'tcp', internalPort: 7001, lifetimeSeconds: 7200 })
  await plain.renew(first)
  assert.equal(igd.mappings()[0]?.stale, true, 'an add over the entry leaves it dead on such a router')

  const careful = await UpnpClient.discover({ ...discoverOptions(igd), refreshByDeleteAdd: true })
  ctx.after(() => { careful.close() })
  const before = igd.requests.length
  await careful.renew(first)
  // The delete looks first, as every delete does (ownership.ts): one request more per renewal in this opt-in mode.
  assert.deepEqual(igd.requests.slice(before).filter((r) => r.kind === 'http').map((r) => r.what), ['GetExternalIPAddress', 'GetSpecificPortMappingEntry', 'DeletePortMapping', 'AddPortMapping'])
  assert.equal(igd.mappings().length, 1)
  assert.equal(igd.mappings()[0]?.stale, undefined, 'deleted and added: forwarding again')
})
