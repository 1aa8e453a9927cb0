import { test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { AbortError, ClosedError, EntryNotOursError, GatewayRefusedError, NoExternalAddressError, UsageError } from '../../src/errors.js'
import type { PortMapping } from '../../src/gateway.js'
import type { SimulatedIgd, SimulatedIgdOptions } from '../../src/testing/igd.js'
import { candidatePort } from '../../src/upnp/add.js'
import { UpnpClient, type UpnpClientTuning } from '../../src/upnp/client.js'
import { upnpErrorName } from '../../src/upnp/codes.js'
import { discoverOptions, startIgd } from './setup.js'
import { mapChecked } from '../../src/gateway.js'

async function setup (ctx: TestContext, options: SimulatedIgdOptions = {}, configure?: (igd: SimulatedIgd) => void, tuning: UpnpClientTuning = {}): Promise<{ igd: SimulatedIgd, client: UpnpClient }> {
  const igd = await startIgd(ctx, options)
  configure?.(igd)
  const client = await UpnpClient.discover({ ...discoverOptions(igd), ...tuning })
  ctx.after(() => { client.close() })
  return { igd, client }
}

/** SOAP actions the IGD received, in order. */
const actions = (igd: SimulatedIgd): string[] => igd.requests.filter((r) => r.kind === 'http').map((r) => r.what)
const argsOf = (igd: SimulatedIgd, action: string, nth = 0): Record<string, string> =>
  Object.fromEntries(igd.requests.filter((r) => r.what === action)[nth]?.args ?? [])
const refusedWith = (code: number) => (err: unknown): boolean =>
  err instanceof GatewayRefusedError && err.protocol === 'upnp' && err.resultCode === code && err.resultName === upnpErrorName(code)

test('IGD v2: discovery and a first mapping cost one description, one GetExternalIPAddress, one look-up, one AddAnyPortMapping, one read-back', async (ctx) => {
  const { igd, client } = await setup(ctx, { externalAddress: '198.51.100.20' })
  assert.equal(client.method, 'upnp')
  assert.equal(client.address, '127.0.0.1')
  assert.equal(client.service.igdVersion, 2)
  assert.equal(client.service.controlURL, `http://127.0.0.1:${igd.httpPort}/ctl/IPConn`)
  const mapping = await mapChecked(client, { protocol: 'tcp', internalPort: 7001, lifetimeSeconds: 7200 })
  assert.deepEqual({ ...mapping, grantedAtMs: 0, expiresAtMs: 0, session: undefined }, {
    method: 'upnp', protocol: 'tcp', internalPort: 7001, externalPort: 7001, externalAddress: '198.51.100.20',
    lifetimeSeconds: 7200, grantedAtMs: 0, expiresAtMs: 0, session: undefined
  })
  assert.equal(mapping.expiresAtMs - mapping.grantedAtMs, 7200_000)
  // Each add is preceded by a look-up (another program's entry is not overwritten: ownership.ts); the
  // client's first add is read back once (quirks 10 and 28); later equal-port adds are trusted.
  assert.deepEqual(actions(igd), ['GET', 'GetExternalIPAddress', 'GetSpecificPortMappingEntry', 'AddAnyPortMapping', 'GetSpecificPortMappingEntry'])
  await mapChecked(client, { protocol: 'tcp', internalPort: 7002, lifetimeSeconds: 7200 })
  assert.deepEqual(actions(igd).slice(5), ['GetSpecificPortMappingEntry', 'AddAnyPortMapping'])
  assert.deepEqual(argsOf(igd, 'AddAnyPortMapping'), {
    NewRemoteHost: '', NewExternalPort: '7001', NewProtocol: 'TCP', NewInternalPort: '7001',
    // From the TCP connection's local address, as miniupnpc does: never 0.0.0.0 or a docker bridge's.
    NewInternalClient: '127.0.0.1', NewEnabled: '1', NewPortMappingDescription: 'natmapper', NewLeaseDuration: '7200'
  })
  assert.deepEqual(igd.mappings().map((m) => `${m.protocol} ${m.externalPort}->${m.internalClient}:${m.internalPort} ${m.leaseSeconds}`), ['TCP 7001->127.0.0.1:7001 7200', 'TCP 7002->127.0.0.1:7002 7200'])
  assert.equal(igd.count('ssdp') > 0, true)
})

test('IGD v1: AddPortMapping, upper-case UDP, the description given', async (ctx) => {
  const { igd, client } = await setup(ctx, { igdVersion: 1 })
  assert.equal(client.service.igdVersion, 1)
  const mapping = await mapChecked(client, { protocol: 'udp', internalPort: 7002, lifetimeSeconds: 3600, description: 'my app' })
  assert.equal(mapping.externalPort, 7002)
  assert.deepEqual(actions(igd), ['GET', 'GetExternalIPAddress', 'GetSpecificPortMappingEntry', 'AddPortMapping', 'GetSpecificPortMappingEntry'])
  assert.equal(argsOf(igd, 'AddPortMapping').NewProtocol, 'UDP')
  assert.equal(argsOf(igd, 'AddPortMapping').NewPortMappingDescription, 'my app')
  assert.equal(argsOf(igd, 'AddPortMapping').NewLeaseDuration, '3600')
})

test('renew re-adds the same external port (refreshing the external address), without a look-up; unmap looks, then deletes that port and protocol', async (ctx) => {
  const { igd, client } = await setup(ctx)
  igd.occupy(7001, 'TCP')
  const first = await mapChecked(client, { protocol: 'tcp', internalPort: 7001, lifetimeSeconds: 7200 })
  const derived = candidatePort({ protocol: 'tcp', internalPort: 7001 }, '127.0.0.1', 1)
  assert.equal(first.externalPort, derived, 'the look-up saw the other host\'s entry: the next candidate port, looked at too')
  igd.externalAddress = '198.51.100.99'
  const renewed = await client.renew(first)
  assert.equal(renewed.externalPort, derived)
  assert.equal(renewed.externalAddress, '198.51.100.99')
  assert.deepEqual(actions(igd).slice(-2), ['GetExternalIPAddress', 'AddPortMapping'])
  assert.equal(argsOf(igd, 'AddPortMapping').NewExternalPort, String(derived))
  await client.unmap(renewed)
  assert.deepEqual(actions(igd).slice(-2), ['GetSpecificPortMappingEntry', 'DeletePortMapping'])
  assert.deepEqual(argsOf(igd, 'DeletePortMapping'), { NewRemoteHost: '', NewExternalPort: String(derived), NewProtocol: 'TCP' })
  assert.deepEqual(igd.mappings().map((m) => m.externalPort), [7001], 'only the other host\'s entry is left')
  await client.unmap(renewed)
  assert.deepEqual(actions(igd).slice(-1), ['GetSpecificPortMappingEntry'], 'deleting twice: the look-up finds nothing, nothing more is sent')
  igd.quirks.faultNext = [{ action: 'DeletePortMapping', code: 714 }]
  await client.unmap(await mapChecked(client, { protocol: 'udp', internalPort: 7003, lifetimeSeconds: 60 }))
  assert.equal(igd.requests.filter((r) => r.what === 'DeletePortMapping').at(-1)!.fault, 714, 'a 714 to the delete itself is taken as done')
})

test('renew of a port another host took meanwhile maps another port', async (ctx) => {
  const { igd, client } = await setup(ctx, { igdVersion: 1 })
  const first = await mapChecked(client, { protocol: 'udp', internalPort: 7001, lifetimeSeconds: 7200 })
  await igd.restart({ sameHttpPort: true })
  igd.occupy(7001, 'UDP')
  const renewed = await client.renew(first)
  assert.notEqual(renewed.externalPort, 7001)
  assert.ok(renewed.externalPort >= 1024)
})

for (const [quirk, flag, code] of [
  ['725-only (MikroTik: tailscale#9343)', 'onlyPermanentLeases', 725],
  ['402 on a non-zero lease (ARRIS NVG578LX: tailscale#15223)', 'invalidArgsOnLease', 402]
] as const) {
  for (const version of [1, 2] as const) {
    test(`quirk ${quirk}, IGD v${version}: retried with lease 0, and remembered`, async (ctx) => {
      const { igd, client } = await setup(ctx, { igdVersion: version }, (i) => { i.quirks[flag] = true })
      const add = version === 2 ? 'AddAnyPortMapping' : 'AddPortMapping'
      const first = await mapChecked(client, { protocol: 'tcp', internalPort: 7001, lifetimeSeconds: 7200 })
      assert.deepEqual(igd.requests.filter((r) => r.what === add).map((r) => [Object.fromEntries(r.args!).NewLeaseDuration, r.fault]), [['7200', code], ['0', undefined]])
      // Refreshed at the pace asked for, so that it comes back after a reboot (tailscale does the same).
      assert.equal(first.lifetimeSeconds, 7200)
      assert.equal(first.expiresAtMs, version === 2 ? first.grantedAtMs + 604800_000 : Infinity)
      await mapChecked(client, { protocol: 'udp', internalPort: 7002, lifetimeSeconds: 7200 })
      assert.deepEqual(igd.requests.filter((r) => r.what === add).slice(2).map((r) => [Object.fromEntries(r.args!).NewLeaseDuration, r.fault]), [['0', undefined]],
        'the second mapping asks for a permanent lease straight away')
      const renewed = await client.renew(first)
      assert.equal(argsOf(igd, 'AddPortMapping', version === 2 ? 0 : 3).NewLeaseDuration, '0')
      assert.equal(renewed.externalPort, first.externalPort)
    })
  }
}

test('402 on a permanent lease (a full table: miniupnp#92) is not retried, nor remembered as a lease quirk', async (ctx) => {
  const { igd, client } = await setup(ctx, { igdVersion: 1 }, (i) => { i.quirks.faultNext = [{ action: 'AddPortMapping', code: 402 }, { action: 'AddPortMapping', code: 402 }] })
  await assert.rejects(mapChecked(client, { protocol: 'tcp', internalPort: 7001, lifetimeSeconds: 7200 }), refusedWith(402))
  assert.equal(igd.count('http', 'AddPortMapping'), 2)
  await mapChecked(client, { protocol: 'tcp', internalPort: 7001, lifetimeSeconds: 7200 })
  assert.equal(argsOf(igd, 'AddPortMapping', 2).NewLeaseDuration, '7200')
})

test('quirk 31: 718 conflicts (IGD v1): other ports, derived from our address, a bounded number of tries', async (ctx) => {
  const { igd, client } = await setup(ctx, { igdVersion: 1 }, undefined, { maxPortAttempts: 5 })
  igd.occupy(7001, 'TCP')
  const mapping = await mapChecked(client, { protocol: 'tcp', internalPort: 7001, lifetimeSeconds: 7200 })
  const expected = candidatePort({ protocol: 'tcp', internalPort: 7001 }, '127.0.0.1', 1)
  assert.equal(mapping.externalPort, expected)
  assert.ok(expected >= 1024 && expected !== 7001)
  assert.deepEqual(igd.requests.filter((r) => r.what === 'AddPortMapping').map((r) => r.fault), [undefined], 'the look-up saw 7001 taken: no add there')
  // A 718 the look-up could not foresee (a race, a rule): the next port all the same.
  igd.quirks.conflictNext = 100
  await assert.rejects(mapChecked(client, { protocol: 'udp', internalPort: 9000, lifetimeSeconds: 7200 }), refusedWith(718))
  assert.equal(igd.count('http', 'AddPortMapping'), 1 + 5)
})

test('729 ConflictWithOtherMechanisms is a conflict too', async (ctx) => {
  const { igd, client } = await setup(ctx, { igdVersion: 1 }, (i) => { i.quirks.faultNext = [{ action: 'AddPortMapping', code: 729 }] })
  const mapping = await mapChecked(client, { protocol: 'tcp', internalPort: 7001, lifetimeSeconds: 7200 })
  assert.notEqual(mapping.externalPort, 7001)
  assert.equal(igd.count('http', 'AddPortMapping'), 2)
})

test('candidatePort: never 0, never below 1024 unless asked, stable per host, different per host', () => {
  assert.equal(candidatePort({ protocol: 'tcp', internalPort: 7001 }, '10.0.0.2', 0), 7001)
  assert.equal(candidatePort({ protocol: 'tcp', internalPort: 7001, suggestedExternalPort: 0 }, '10.0.0.2', 0), 7001, '0 means "no preference", never sent')
  assert.equal(candidatePort({ protocol: 'tcp', internalPort: 7001, suggestedExternalPort: 443 }, '10.0.0.2', 0), 443, 'asked for')
  const low = candidatePort({ protocol: 'tcp', internalPort: 80 }, '10.0.0.2', 0)
  assert.ok(low >= 1024 && low <= 65535)
  assert.equal(candidatePort({ protocol: 'tcp', internalPort: 80 }, '10.0.0.2', 0), low, 'the same again')
  assert.notEqual(candidatePort({ protocol: 'tcp', internalPort: 80 }, '10.0.0.3', 0), low, 'another host, another port')
  const seen = new Set<number>()
  for (let attempt = 1; attempt < 200; attempt++) {
    const port = candidatePort({ protocol: 'udp', internalPort: 5000 }, '10.0.0.2', attempt)
    assert.ok(port >= 1024 && port <= 65535)
    seen.add(port)
  }
  assert.ok(seen.size > 190)
})

test('low internal ports map to a high external port; a low external port is sent only when asked, and the router may refuse it', async (ctx) => {
  const { igd, client } = await setup(ctx, {}, (i) => { i.quirks.lowPortsRefused = false })
  const mapping = await mapChecked(client, { protocol: 'tcp', internalPort: 80, lifetimeSeconds: 7200 })
  assert.ok(mapping.externalPort >= 1024)
  assert.equal(mapping.internalPort, 80)
  const asked = await mapChecked(client, { protocol: 'udp', internalPort: 53, suggestedExternalPort: 53, lifetimeSeconds: 7200 })
  assert.equal(asked.externalPort, 53)
  igd.quirks.lowPortsRefused = true
  // miniupnpd's default rules: AddAnyPortMapping walks from the refused 80 to the first permitted port
  // (in the lab too: ext 80 -> :8080 got 1024); AddPortMapping refuses it, 606 on v2.
  assert.equal((await mapChecked(client, { protocol: 'tcp', internalPort: 8080, suggestedExternalPort: 80, lifetimeSeconds: 7200 })).externalPort, 1024)
  igd.quirks.faultNext = [{ action: 'AddAnyPortMapping', code: 401 }]
  await assert.rejects(mapChecked(client, { protocol: 'tcp', internalPort: 8081, suggestedExternalPort: 81, lifetimeSeconds: 7200 }), refusedWith(606))
  for (const r of igd.requests) if (r.args !== undefined) assert.notEqual(Object.fromEntries(r.args).NewExternalPort, '0')
})

// Issue 18 point 11: `map 80` on a router whose rules allow 1024-65535 only.
for (const [version, code, what] of [[2, 728, 'AddAnyPortMapping: no permitted external port for internal port 80 (miniupnpd in the lab)'], [1, 718, 'AddPortMapping: 718 from a miniupnpd built without IGD_V2, the port seen free just before']] as const) {
  test(`issue 18 point 11, IGD v${version}: a low internal port refused (${what}) is said plainly, at once, with no other port tried`, async (ctx) => {
    const { igd, client } = await setup(ctx, { igdVersion: version })
    await assert.rejects(mapChecked(client, { protocol: 'tcp', internalPort: 80, lifetimeSeconds: 7200 }), (err: unknown) => {
      assert.ok(refusedWith(code)(err), String(err))
      assert.match((err as Error).message, /internal port 80 is outside what the router permits: many routers allow only ports 1024-65535 \(miniupnpd's default rules\); use an internal port from 1024 up/)
      return true
    })
    assert.deepEqual(actions(igd).slice(2), ['GetSpecificPortMappingEntry', version === 2 ? 'AddAnyPortMapping' : 'AddPortMapping'], 'one look-up, one add: the other candidate ports would be refused the same way')
    assert.deepEqual(igd.mappings(), [])
  })
}

test('issue 18 point 11: a 718 on a low internal port whose external port was not seen free is a conflict as before; a high internal port refused is not explained as a low one', async (ctx) => {
  const { igd, client } = await setup(ctx, { igdVersion: 1 }, (i) => { i.quirks.lowPortsRefused = false }, { maxPortAttempts: 3 })
  // The look-up cannot answer (501): the 718 may be another host's entry, so other ports are tried.
  igd.quirks.faultNext = [{ action: 'GetSpecificPortMappingEntry', code: 501 }, { action: 'AddPortMapping', code: 718 }]
  const mapping = await mapChecked(client, { protocol: 'tcp', internalPort: 80, lifetimeSeconds: 7200 })
  assert.equal(mapping.externalPort, candidatePort({ protocol: 'tcp', internalPort: 80 }, '127.0.0.1', 1))
  igd.quirks.faultNext = [{ action: 'AddPortMapping', code: 606 }]
  await assert.rejects(mapChecked(client, { protocol: 'tcp', internalPort: 8080, lifetimeSeconds: 7200 }), (err: unknown) => refusedWith(606)(err) && !/outside what the router permits/.test((err as Error).message))
})

test('quirk 5: lower-case protocol rejected (TP-Link ER605: tailscale#7377): we send upper case, so it works', async (ctx) => {
  const { igd, client } = await setup(ctx, { igdVersion: 1 }, (i) => { i.quirks.rejectLowerCaseProtocol = true })
  await mapChecked(client, { protocol: 'udp', internalPort: 7002, lifetimeSeconds: 7200 })
  assert.equal(argsOf(igd, 'AddPortMapping').NewProtocol, 'UDP')
  assert.equal(igd.mappings().length, 1)
})

test('quirk 13: a disconnected first WAN service (MikroTik CHR 7.10: tailscale#8364): the connected one is chosen', async (ctx) => {
  const { igd, client } = await setup(ctx, { igdVersion: 1, externalAddress: '11.22.33.44' }, (i) => { i.quirks.firstWanDisconnected = true })
  assert.equal(client.service.controlURL, `http://127.0.0.1:${igd.httpPort}/ctl/IPConn`)
  assert.equal(client.selection?.status?.connectionStatus, 'Connected')
  assert.equal(client.selection?.rank, 0)
  assert.equal(igd.count('http', 'GetStatusInfo'), 2)
  const mapping = await mapChecked(client, { protocol: 'tcp', internalPort: 7001, lifetimeSeconds: 7200 })
  assert.equal(mapping.externalAddress, '11.22.33.44')
})

for (const [text, reason] of [['', 'empty'], ['0.0.0.0', 'unspecified'], ['127.0.0.1', 'loopback'], ['Not connected', 'not-ipv4']] as const) {
  test(`quirk external address ${JSON.stringify(text)}: NoExternalAddressError (${reason}), and no mapping is made`, async (ctx) => {
    const { igd, client } = await setup(ctx, { externalAddress: text })
    assert.equal(client.selection?.rank, 4)
    await assert.rejects(client.externalAddress(), (err: unknown) => {
      assert.ok(err instanceof NoExternalAddressError, String(err))
      assert.equal(err.code, 'NATMAPPER_NO_EXTERNAL_ADDRESS')
      assert.equal(err.reason, reason)
      assert.equal(err.text, text)
      assert.match(err.message, /no public external address/)
      return true
    })
    await assert.rejects(mapChecked(client, { protocol: 'tcp', internalPort: 7001, lifetimeSeconds: 0 }), NoExternalAddressError)
    assert.equal(igd.count('http', 'AddAnyPortMapping') + igd.count('http', 'AddPortMapping'), 0, 'no permanent mapping left behind (tailscale#10602)')
  })
}

test('a private external address (double NAT) is returned: mappings still work one NAT up', async (ctx) => {
  const { client } = await setup(ctx, { externalAddress: '192.168.0.5' })
  assert.equal(client.selection?.rank, 1)
  assert.equal(await client.externalAddress(), '192.168.0.5')
})

test('quirk 30: AddAnyPortMapping answered with a connection reset (Ubee EVW32C-0S: miniupnp#528): AddPortMapping instead, from then on', async (ctx) => {
  const { igd, client } = await setup(ctx, {}, (i) => { i.quirks.resetAddAnyPortMapping = true })
  await mapChecked(client, { protocol: 'tcp', internalPort: 7001, lifetimeSeconds: 7200 })
  await mapChecked(client, { protocol: 'tcp', internalPort: 7002, lifetimeSeconds: 7200 })
  assert.deepEqual(actions(igd).slice(2), ['GetSpecificPortMappingEntry', 'AddAnyPortMapping', 'AddPortMapping', 'GetSpecificPortMappingEntry', 'GetSpecificPortMappingEntry', 'AddPortMapping'])
  assert.equal(igd.mappings().length, 2)
})

for (const code of [401, 602]) {
  test(`AddAnyPortMapping refused with ${code}: AddPortMapping instead`, async (ctx) => {
    const { igd, client } = await setup(ctx, {}, (i) => { i.quirks.faultNext = [{ action: 'AddAnyPortMapping', code }] })
    const mapping = await mapChecked(client, { protocol: 'udp', internalPort: 7001, lifetimeSeconds: 7200 })
    assert.equal(mapping.externalPort, 7001)
    assert.deepEqual(actions(igd).slice(2), ['GetSpecificPortMappingEntry', 'AddAnyPortMapping', 'AddPortMapping', 'GetSpecificPortMappingEntry'])
  })
}

test('quirk 32: SOAPAction must be exactly quoted (goupnp PR #5, jupnp#120): ours is', async (ctx) => {
  const { igd, client } = await setup(ctx, {}, (i) => { i.quirks.strictSoapAction = true })
  await mapChecked(client, { protocol: 'tcp', internalPort: 7001, lifetimeSeconds: 7200 })
  assert.equal(igd.mappings().length, 1)
})

test('quirk 33: chunked replies (BiPAC 7404VNOX): read whole', async (ctx) => {
  const { igd, client } = await setup(ctx, { igdVersion: 1 }, (i) => { i.quirks.chunkedResponses = true })
  await mapChecked(client, { protocol: 'tcp', internalPort: 7001, lifetimeSeconds: 7200 })
  assert.equal(igd.mappings().length, 1)
})

test('a router restart on a new HTTP port, with a new BOOTID: the refused control URL sends the client back to SSDP, once', async (ctx) => {
  const { igd, client } = await setup(ctx)
  const first = await mapChecked(client, { protocol: 'tcp', internalPort: 7001, lifetimeSeconds: 7200 })
  const oldUrl = client.service.controlURL
  await igd.restart()
  assert.equal(igd.mappings().length, 0)
  const [a, b] = await Promise.all([client.renew(first), client.renew({ ...first, protocol: 'udp' })])
  assert.notEqual(client.service.controlURL, oldUrl)
  assert.equal(client.service.controlURL, `http://127.0.0.1:${igd.httpPort}/ctl/IPConn`)
  assert.equal(igd.count('http', 'GET'), 2, 'one rediscovery for both renewals')
  assert.deepEqual([a.externalPort, b.externalPort], [7001, 7001])
  assert.equal(igd.mappings().length, 2)
  await client.unmap(a)
  assert.equal(igd.mappings().length, 1)
})

test('every UPnP fault code the IGD specs list surfaces typed, with its name', async (ctx) => {
  const thrown = [501, 606, 713, 715, 716, 724, 726, 727, 728, 732, 733, -5, 799]
  const { igd, client } = await setup(ctx, { igdVersion: 1 })
  for (const code of thrown) {
    igd.quirks.faultNext = [{ action: 'AddPortMapping', code }]
    await assert.rejects(mapChecked(client, { protocol: 'tcp', internalPort: 7001, lifetimeSeconds: 7200 }), refusedWith(code), String(code))
  }
  assert.equal(igd.count('http', 'AddPortMapping'), thrown.length, 'none of them retried')
  // 714 and 730 on a delete: the entry is already gone.
  const mapping = await mapChecked(client, { protocol: 'tcp', internalPort: 7001, lifetimeSeconds: 7200 })
  for (const code of [714, 730]) {
    igd.quirks.faultNext = [{ action: 'DeletePortMapping', code }]
    await client.unmap(mapping)
  }
  igd.quirks.faultNext = [{ action: 'DeletePortMapping', code: 606 }]
  await assert.rejects(client.unmap(mapping), refusedWith(606))
  assert.notEqual(await client.getPortMappingEntry(7001, 'tcp'), undefined, 'the faults deleted nothing')
  await client.unmap(mapping)
  // 714 on GetSpecificPortMappingEntry: no such entry.
  assert.equal(await client.getPortMappingEntry(7001, 'tcp'), undefined)
  igd.quirks.faultNext = [{ action: 'GetExternalIPAddress', code: 501 }]
  await assert.rejects(client.externalAddress(), refusedWith(501))
})

test('getPortMappingEntry reads the router\'s entry back', async (ctx) => {
  const { client } = await setup(ctx)
  const mapping = await mapChecked(client, { protocol: 'udp', internalPort: 7002, lifetimeSeconds: 600, description: 'x' })
  assert.deepEqual(await client.getPortMappingEntry(mapping.externalPort, 'udp'), {
    internalPort: 7002, internalClient: '127.0.0.1', enabled: true, description: 'x', leaseDurationSeconds: 600
  })
})

test('a client built by hand learns the address once for concurrent maps', async (ctx) => {
  const igd = await startIgd(ctx)
  const client = new UpnpClient({ gateway: '127.0.0.1', service: { serviceType: igd.serviceType, controlURL: `http://127.0.0.1:${igd.httpPort}/ctl/IPConn`, igdVersion: 2 } })
  const mappings = await Promise.all([7001, 7002, 7003].map(async (port) => await mapChecked(client, { protocol: 'tcp', internalPort: port, lifetimeSeconds: 60 })))
  assert.deepEqual(mappings.map((m) => m.externalPort), [7001, 7002, 7003])
  assert.equal(igd.count('http', 'GetExternalIPAddress'), 1)
})

test('a permanent lease asked for: 0 on v1 (never renewed), the 604800 s maximum on v2', async (ctx) => {
  for (const version of [1, 2] as const) {
    const { igd, client } = await setup(ctx, { igdVersion: version })
    const mapping: PortMapping = await mapChecked(client, { protocol: 'tcp', internalPort: 7001, lifetimeSeconds: 0 })
    assert.equal(mapping.lifetimeSeconds, version === 1 ? 0 : 604800)
    assert.equal(igd.mappings()[0]!.leaseSeconds, version === 1 ? 0 : 604800)
  }
})

test('bad requests are UsageErrors; an aborted signal is an AbortError; a closed client refuses', async (ctx) => {
  const { igd, client } = await setup(ctx)
  await assert.rejects(mapChecked(client, { protocol: 'sctp' as 'tcp', internalPort: 1, lifetimeSeconds: 1 }), UsageError)
  await assert.rejects(mapChecked(client, { protocol: 'tcp', internalPort: 0, lifetimeSeconds: 1 }), UsageError)
  await assert.rejects(mapChecked(client, { protocol: 'tcp', internalPort: 70000, lifetimeSeconds: 1 }), UsageError)
  await assert.rejects(mapChecked(client, { protocol: 'tcp', internalPort: 1, lifetimeSeconds: -1 }), UsageError)
  await assert.rejects(client.renew({ method: 'pcp', protocol: 'tcp', internalPort: 1, externalPort: 1, externalAddress: undefined, lifetimeSeconds: 1, grantedAtMs: 0, expiresAtMs: 1, session: undefined }), UsageError)
  await assert.rejects(mapChecked(client, { protocol: 'tcp', internalPort: 7001, lifetimeSeconds: 60 }, { signal: AbortSignal.abort() }), AbortError)
  assert.equal(igd.mappings().length, 0)
  client.close()
  client.close()
  await assert.rejects(mapChecked(client, { protocol: 'tcp', internalPort: 7001, lifetimeSeconds: 60 }), ClosedError)
})

// Issue 18 point 7: the router overwrites an entry of the same internal client whatever its internal
// port (miniupnpd upnp_redirect; SimulatedIgd does the same), so the client looks before each add.
const entryAt = (igd: SimulatedIgd, port: number): string | undefined => {
  const m = igd.mappings().find((e) => e.externalPort === port)
  return m === undefined ? undefined : `${m.protocol} ${m.externalPort}->${m.internalClient}:${m.internalPort} ${JSON.stringify(m.description)}`
}
const notOurs = (err: unknown): boolean => err instanceof EntryNotOursError && err.code === 'NATMAPPER_UPNP_NOT_OURS'

for (const version of [1, 2] as const) {
  test(`issue 18 point 7, IGD v${version}: another program of our host holds the port (ext 7170 -> :7171, as upnpc -a makes it): map 7170 takes another port and leaves that entry alone`, async (ctx) => {
    const { igd, client } = await setup(ctx, { igdVersion: version })
    igd.occupy(7170, 'TCP', '127.0.0.1', { internalPort: 7171, description: 'libminiupnpc' })
    const mapping = await mapChecked(client, { protocol: 'tcp', internalPort: 7170, lifetimeSeconds: 7200 })
    assert.equal(mapping.externalPort, candidatePort({ protocol: 'tcp', internalPort: 7170 }, '127.0.0.1', 1))
    assert.equal(entryAt(igd, 7170), 'TCP 7170->127.0.0.1:7171 "libminiupnpc"', 'the other program\'s entry is untouched')
    assert.equal(entryAt(igd, mapping.externalPort), `TCP ${mapping.externalPort}->127.0.0.1:7170 "natmapper"`)
    assert.equal(igd.requests.filter((r) => r.args !== undefined && Object.fromEntries(r.args).NewExternalPort === '7170' && r.what.startsWith('Add')).length, 0, 'no add was sent for 7170')
  })
}

test('issue 18 point 7: --external-port 7170 for another internal port while natmapper holds 7170 -> :7170: another port, natmapper\'s own entry untouched', async (ctx) => {
  const { igd, client } = await setup(ctx)
  const first = await mapChecked(client, { protocol: 'tcp', internalPort: 7170, lifetimeSeconds: 7200 })
  assert.equal(first.externalPort, 7170)
  const other = await UpnpClient.discover(discoverOptions(igd))
  ctx.after(() => { other.close() })
  const second = await mapChecked(other, { protocol: 'tcp', internalPort: 7172, suggestedExternalPort: 7170, lifetimeSeconds: 7200 })
  assert.notEqual(second.externalPort, 7170)
  assert.equal(entryAt(igd, 7170), 'TCP 7170->127.0.0.1:7170 "natmapper"')
  assert.equal(entryAt(igd, second.externalPort), `TCP ${second.externalPort}->127.0.0.1:7172 "natmapper"`)
})

test('issue 18 point 7: the same internal port but another program\'s description is not ours either; our own entry (same client, port and description) is taken back by a restarted client', async (ctx) => {
  const { igd, client } = await setup(ctx)
  igd.occupy(7180, 'UDP', '127.0.0.1', { internalPort: 7180, description: 'game server' })
  const beside = await mapChecked(client, { protocol: 'udp', internalPort: 7180, lifetimeSeconds: 600 })
  assert.notEqual(beside.externalPort, 7180)
  assert.equal(entryAt(igd, 7180), 'UDP 7180->127.0.0.1:7180 "game server"')
  // A natmapper that made 7190 and was restarted: the entry is its own, refreshed in place.
  igd.occupy(7190, 'UDP', '127.0.0.1', { internalPort: 7190, description: 'natmapper' })
  const restarted = await mapChecked(client, { protocol: 'udp', internalPort: 7190, lifetimeSeconds: 600 })
  assert.equal(restarted.externalPort, 7190)
  assert.equal(igd.mappings().find((m) => m.externalPort === 7190)?.leaseSeconds, 600, 'refreshed: the add went over it')
  // Some routers list the client as a name or nothing (see #entryState): that counts as ours.
  igd.occupy(7200, 'UDP', '', { internalPort: 7200, description: 'natmapper' })
  await mapChecked(client, { protocol: 'udp', internalPort: 7200, lifetimeSeconds: 600 })
  assert.equal(igd.requests.filter((r) => r.what === 'AddAnyPortMapping').map((r) => Object.fromEntries(r.args!).NewExternalPort).at(-1), '7200', 'asked for 7200 itself, not a derived port')
})

test('issue 18 point 7: unmap deletes only our entry; one another program put at that port meanwhile is left, with EntryNotOursError', async (ctx) => {
  const { igd, client } = await setup(ctx)
  const mapping = await mapChecked(client, { protocol: 'tcp', internalPort: 7170, lifetimeSeconds: 7200 })
  // Another program adds over it (the router lets it: same internal client).
  igd.occupy(7170, 'TCP', '127.0.0.1', { internalPort: 7172, description: 'natmapper' })
  await assert.rejects(client.unmap(mapping), (err: unknown) => {
    assert.ok(notOurs(err), String(err))
    assert.match((err as Error).message, /not deleting UPnP TCP external port 7170: the router's entry there is not natmapper's: it forwards to 127\.0\.0\.1:7172, not to internal port 7170/)
    return true
  })
  assert.equal(entryAt(igd, 7170), 'TCP 7170->127.0.0.1:7172 "natmapper"')
  assert.equal(igd.count('http', 'DeletePortMapping'), 0)
  // Another host's entry, likewise.
  igd.occupy(7170, 'TCP', '192.0.2.7', { internalPort: 7170 })
  await assert.rejects(client.unmap(mapping), (err: unknown) => notOurs(err) && /another host, 192\.0\.2\.7:7170/.test((err as Error).message))
  assert.equal(igd.count('http', 'DeletePortMapping'), 0)
})

test('issue 18 point 7: verify sees another program took our port; the renewal then maps another port instead of taking it back', async (ctx) => {
  const { igd, client } = await setup(ctx)
  const mapping = await mapChecked(client, { protocol: 'tcp', internalPort: 7170, lifetimeSeconds: 7200 })
  igd.occupy(7170, 'TCP', '127.0.0.1', { internalPort: 7171, description: 'libminiupnpc' })
  assert.equal(await client.verify(mapping), false)
  const renewed = await client.renew(mapping)
  assert.notEqual(renewed.externalPort, 7170)
  assert.equal(entryAt(igd, 7170), 'TCP 7170->127.0.0.1:7171 "libminiupnpc"', 'not taken back')
  assert.equal(entryAt(igd, renewed.externalPort), `TCP ${renewed.externalPort}->127.0.0.1:7170 "natmapper"`)
})

test('issue 18 point 7: an entry whose answer cannot be read (a long description on miniupnpd <= 2.3.10) is nobody\'s we know: not mapped over, not deleted', async (ctx) => {
  const { igd, client } = await setup(ctx)
  igd.quirks.descriptionBytesKept = 64
  igd.occupy(7170, 'TCP', '127.0.0.1', { internalPort: 7170, description: `${'x'.repeat(60)} & co` })
  const mapping = await mapChecked(client, { protocol: 'tcp', internalPort: 7170, lifetimeSeconds: 7200 })
  assert.notEqual(mapping.externalPort, 7170)
  await assert.rejects(client.unmap({ ...mapping, externalPort: 7170 }), (err: unknown) => notOurs(err) && /could not be read/.test((err as Error).message))
  assert.equal(igd.mappings().length, 2)
})

test('issue 18 point 7: a router without GetSpecificPortMappingEntry (401) gets adds and deletes unchecked, as before, and is not asked again', async (ctx) => {
  const { igd, client } = await setup(ctx, {}, (i) => { i.quirks.faultNext = [{ action: 'GetSpecificPortMappingEntry', code: 401 }] })
  const mapping = await mapChecked(client, { protocol: 'tcp', internalPort: 7170, lifetimeSeconds: 7200 })
  assert.equal(mapping.externalPort, 7170)
  await client.unmap(mapping)
  assert.deepEqual(igd.mappings(), [])
  assert.equal(igd.count('http', 'GetSpecificPortMappingEntry'), 2, 'the look-up that got 401 and the read-back; none before the delete')
})
