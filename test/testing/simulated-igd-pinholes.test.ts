// SimulatedIgd's WANIPv6FirewallControl:1 over IPv6 on ::1: found from its own description, the
// checks in miniupnpd 2.3.1's order and codes, UniqueIDs, the quirks, copies and the request log.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { sendHttpRequest } from '../../src/upnp/http.js'
import { findFirewallServices, parseDescription } from '../../src/upnp/description.js'
import { encodeSoapRequest, parseSoapFault } from '../../src/upnp/soap.js'
import { PinholeClient } from '../../src/upnp/pinhole.js'
import { FirewallDisabledError, GatewayRefusedError, InboundPinholeNotAllowedError } from '../../src/errors.js'
import { FakeClock, SimulatedIgd } from '../../src/testing/index.js'

const FC = 'urn:schemas-upnp-org:service:WANIPv6FirewallControl:1'

async function post (url: string, action: string, args: Array<[string, string]> = [], localAddress?: string): Promise<{ status: number, body: string, fault: number | undefined }> {
  const request = encodeSoapRequest(FC, action, args)
  const r = await sendHttpRequest({ method: 'POST', url, headers: request.headers, body: request.body, maxBytes: 65536, timeoutMs: 2000, ...(localAddress === undefined ? {} : { localAddress }) })
  return { status: r.status, body: r.body, fault: r.status === 500 ? parseSoapFault(r.body)?.errorCode : undefined }
}

const add = (client: string, port: number, lease = 600, protocol = '6'): Array<[string, string]> =>
  [['RemoteHost', ''], ['RemotePort', '0'], ['InternalClient', client], ['InternalPort', String(port)], ['Protocol', protocol], ['LeaseTime', String(lease)]]

async function start (ctx: { after: (fn: () => Promise<void>) => void }, options: Parameters<typeof SimulatedIgd.start>[0] = {}): Promise<SimulatedIgd> {
  const igd = await SimulatedIgd.start({ ipv6Address: '::1', ...options })
  ctx.after(async () => { await igd.close() })
  return igd
}

test('SimulatedIgd over IPv6: the description at [::1] names WANIPv6FirewallControl:1, its SCPD lists the 7 actions, its control URL is pinholeControlUrl', async (ctx) => {
  const igd = await start(ctx)
  assert.equal(igd.ipv6DescriptionUrl, `http://[::1]:${igd.ipv6HttpPort}/rootDesc.xml`)
  const xml = (await sendHttpRequest({ method: 'GET', url: igd.ipv6DescriptionUrl!, maxBytes: 65536, timeoutMs: 2000 })).body
  const found = findFirewallServices(parseDescription(xml, igd.ipv6DescriptionUrl!))
  assert.equal(found.length, 1)
  assert.equal(found[0]!.serviceType, FC)
  assert.equal(found[0]!.controlURL, igd.pinholeControlUrl)
  const scpd = await sendHttpRequest({ method: 'GET', url: `http://[::1]:${igd.ipv6HttpPort}/WANIP6FC.xml`, maxBytes: 65536, timeoutMs: 2000 })
  assert.equal(scpd.status, 200)
  assert.deepEqual([...scpd.body.matchAll(/<action><name>(\w+)<\/name>/g)].map((m) => m[1]).sort(),
    ['AddPinhole', 'CheckPinholeWorking', 'DeletePinhole', 'GetFirewallStatus', 'GetOutboundPinholeTimeout', 'GetPinholePackets', 'UpdatePinhole'])
  // Over IPv4 the same description has it too (a client then needs the IPv6 URL to be the InternalClient).
  const v4 = (await sendHttpRequest({ method: 'GET', url: igd.descriptionUrl, maxBytes: 65536, timeoutMs: 2000 })).body
  assert.equal(findFirewallServices(parseDescription(v4, igd.descriptionUrl)).length, 1)
})

test('SimulatedIgd: IGD v1, or ipv6Firewall: false, has no firewall service: not in the description, its URLs 404', async (ctx) => {
  for (const options of [{ igdVersion: 1 as const }, { ipv6Firewall: false }]) {
    const igd = await start(ctx, options)
    assert.equal(igd.pinholeControlUrl, undefined)
    const xml = (await sendHttpRequest({ method: 'GET', url: igd.ipv6DescriptionUrl!, maxBytes: 65536, timeoutMs: 2000 })).body
    assert.equal(findFirewallServices(parseDescription(xml, igd.ipv6DescriptionUrl!)).length, 0)
    assert.equal((await sendHttpRequest({ method: 'GET', url: `http://[::1]:${igd.ipv6HttpPort}/WANIP6FC.xml`, maxBytes: 65536, timeoutMs: 2000 })).status, 404)
    assert.equal((await post(`http://[::1]:${igd.ipv6HttpPort}/ctl/IP6FCtl`, 'GetFirewallStatus')).status, 404)
  }
})

test('AddPinhole: UniqueIDs from 1; the same tuple again returns the same UniqueID with the new lease; pinholes() are copies; requests recorded from ::1', async (ctx) => {
  const clock = new FakeClock()
  const igd = await start(ctx, { clock })
  const url = igd.pinholeControlUrl!
  const first = await post(url, 'AddPinhole', add('::1', 4001))
  assert.match(first.body, /<UniqueID>1<\/UniqueID>/)
  assert.match((await post(url, 'AddPinhole', add('::1', 4002))).body, /<UniqueID>2<\/UniqueID>/)
  await clock.advance(100_000)
  assert.match((await post(url, 'AddPinhole', add('::1', 4001, 900))).body, /<UniqueID>1<\/UniqueID>/)
  assert.match((await post(url, 'AddPinhole', add('::1', 4001, 900, '17'))).body, /<UniqueID>3<\/UniqueID>/, 'UDP is another tuple')
  const pinholes = igd.pinholes()
  assert.deepEqual(pinholes.map((p) => [p.uniqueId, p.internalPort, p.protocol, p.leaseSeconds]), [[1, 4001, 6, 900], [2, 4002, 6, 600], [3, 4001, 17, 900]])
  assert.equal(pinholes[0]!.expiresAtMs, clock.now() + 900_000)
  pinholes[0]!.internalPort = 1
  assert.equal(igd.pinholes()[0]!.internalPort, 4001)
  const last = igd.requests.at(-1)!
  assert.deepEqual({ what: last.what, from: last.from, path: last.path, service: last.service }, { what: 'AddPinhole', from: '::1', path: '/ctl/IP6FCtl', service: FC })
  assert.equal(igd.count('http', 'AddPinhole'), 4)
})

test('miniupnpd\'s checks: 606 for another sender (also 0:0:0:0:0:0:0:1 as text, and over IPv4), 606 below port 1024, 705, 706, 707, 708, 402 for a lease out of 1..86400', async (ctx) => {
  const igd = await start(ctx)
  const url = igd.pinholeControlUrl!
  const cases: Array<[Array<[string, string]>, number]> = [
    [add('2001:db8::5', 4001), 606],
    [add('0:0:0:0:0:0:0:1', 4001), 606],
    [add('::1', 1023), 606],
    [add('::1', 4001, 600, '132'), 705],
    [add('::1', 0), 706],
    [add('::1', 4001, 600, '65535'), 707],
    [add('', 4001), 708],
    [add('::1', 4001, 0), 402],
    [add('::1', 4001, 86401), 402],
    [add('not-an-address', 4001), 402]
  ]
  for (const [args, code] of cases) assert.equal((await post(url, 'AddPinhole', args)).fault, code, JSON.stringify(args))
  // The IPv4 server is the same router: its sender is 127.0.0.1, never the InternalClient.
  assert.equal((await post(`http://127.0.0.1:${igd.httpPort}/ctl/IP6FCtl`, 'AddPinhole', add('::1', 4001))).fault, 606)
  assert.deepEqual(igd.pinholes(), [])
  assert.deepEqual(igd.requests.filter((r) => r.what === 'AddPinhole').map((r) => r.fault), [...cases.map(([, c]) => c), 606])
})

test('UpdatePinhole, DeletePinhole, CheckPinholeWorking, GetPinholePackets: 704 for an unknown UniqueID (0 packets for GetPinholePackets, as 2.3.1), 402 for a bad one, 709 until traffic passed', async (ctx) => {
  const clock = new FakeClock()
  const igd = await start(ctx, { clock })
  const url = igd.pinholeControlUrl!
  await post(url, 'AddPinhole', add('::1', 4001, 60))
  assert.equal((await post(url, 'UpdatePinhole', [['UniqueID', '9'], ['NewLeaseTime', '60']])).fault, 704)
  assert.equal((await post(url, 'UpdatePinhole', [['UniqueID', '1'], ['NewLeaseTime', '0']])).fault, 402)
  assert.equal((await post(url, 'DeletePinhole', [['UniqueID', '70000']])).fault, 402)
  assert.equal((await post(url, 'DeletePinhole', [['UniqueID', '9']])).fault, 704)
  assert.equal((await post(url, 'CheckPinholeWorking', [['UniqueID', '9']])).fault, 704)
  assert.match((await post(url, 'GetPinholePackets', [['UniqueID', '9']])).body, /<PinholePackets>0<\/PinholePackets>/)
  assert.equal((await post(url, 'CheckPinholeWorking', [['UniqueID', '1']])).fault, 709)
  assert.equal(igd.pinholeTraffic(1, 3), true)
  assert.equal(igd.pinholeTraffic(9), false)
  assert.match((await post(url, 'CheckPinholeWorking', [['UniqueID', '1']])).body, /<IsWorking>1<\/IsWorking>/)
  assert.match((await post(url, 'GetPinholePackets', [['UniqueID', '1']])).body, /<PinholePackets>3<\/PinholePackets>/)
  await clock.advance(50_000)
  assert.equal((await post(url, 'UpdatePinhole', [['UniqueID', '1'], ['NewLeaseTime', '60']])).status, 200)
  await clock.advance(59_999)
  assert.equal(igd.pinholes().length, 1, 'the update moved the expiry to 60 s from then')
  await clock.advance(1)
  assert.deepEqual(igd.pinholes(), [])
  assert.equal((await post(url, 'DeletePinhole', [['UniqueID', '1']])).fault, 704, 'expired is gone')
  // Another sender may not touch it (606), even over IPv4.
  await post(url, 'AddPinhole', add('::1', 4001, 60))
  assert.equal((await post(`http://127.0.0.1:${igd.httpPort}/ctl/IP6FCtl`, 'DeletePinhole', [['UniqueID', '2']])).fault, 606)
  assert.equal((await post(url, 'DeletePinhole', [['UniqueID', '2']])).status, 200)
  assert.deepEqual(igd.pinholes(), [])
})

test('quirks: firewallDisabled (FirewallEnabled 0, 702), inboundPinholesDisallowed (703), outboundPinholeTimeoutSeconds (else 501 as 2.3.1), maxPinholes (701)', async (ctx) => {
  const igd = await start(ctx)
  const url = igd.pinholeControlUrl!
  const timeoutArgs: Array<[string, string]> = [['RemoteHost', ''], ['RemotePort', '0'], ['InternalClient', '::1'], ['InternalPort', '4001'], ['Protocol', '17']]
  assert.equal((await post(url, 'GetOutboundPinholeTimeout', timeoutArgs)).fault, 501)
  igd.quirks.outboundPinholeTimeoutSeconds = 30
  assert.match((await post(url, 'GetOutboundPinholeTimeout', timeoutArgs)).body, /<OutboundPinholeTimeout>30<\/OutboundPinholeTimeout>/)
  igd.quirks.firewallDisabled = true
  assert.match((await post(url, 'GetFirewallStatus')).body, /<FirewallEnabled>0<\/FirewallEnabled><InboundPinholeAllowed>1</)
  for (const action of ['AddPinhole', 'UpdatePinhole', 'DeletePinhole', 'CheckPinholeWorking', 'GetPinholePackets', 'GetOutboundPinholeTimeout']) {
    assert.equal((await post(url, action, action === 'AddPinhole' ? add('::1', 4001) : action === 'GetOutboundPinholeTimeout' ? timeoutArgs : [['UniqueID', '1']])).fault, 702, action)
  }
  igd.quirks.firewallDisabled = false
  igd.quirks.inboundPinholesDisallowed = true
  assert.match((await post(url, 'GetFirewallStatus')).body, /<FirewallEnabled>1<\/FirewallEnabled><InboundPinholeAllowed>0</)
  assert.equal((await post(url, 'AddPinhole', add('::1', 4001))).fault, 703)
  assert.match((await post(url, 'GetOutboundPinholeTimeout', timeoutArgs)).body, /<OutboundPinholeTimeout>30</, 'only 702 stops this one')
  igd.quirks.inboundPinholesDisallowed = false
  igd.quirks.maxPinholes = 1
  assert.match((await post(url, 'AddPinhole', add('::1', 4001))).body, /<UniqueID>1</)
  assert.equal((await post(url, 'AddPinhole', add('::1', 4002))).fault, 701)
  assert.match((await post(url, 'AddPinhole', add('::1', 4001))).body, /<UniqueID>1</, 'the same tuple needs no room')
})

test('restart(): pinholes lost, UniqueIDs from 1 again, the IPv6 server back (on its port with sameHttpPort)', async (ctx) => {
  const igd = await start(ctx)
  await post(igd.pinholeControlUrl!, 'AddPinhole', add('::1', 4001))
  await post(igd.pinholeControlUrl!, 'AddPinhole', add('::1', 4002))
  const port6 = igd.ipv6HttpPort
  await igd.restart({ sameHttpPort: true })
  assert.equal(igd.ipv6HttpPort, port6)
  assert.deepEqual(igd.pinholes(), [])
  assert.equal((await post(igd.pinholeControlUrl!, 'UpdatePinhole', [['UniqueID', '2'], ['NewLeaseTime', '60']])).fault, 704)
  assert.match((await post(igd.pinholeControlUrl!, 'AddPinhole', add('::1', 4003))).body, /<UniqueID>1</)
})

test('PinholeClient against SimulatedIgd on ::1: open (the same tuple again: the same UniqueID), check, packets, delete (704 counts as gone); the quirks are its clear errors; 606 below port 1024', async (ctx) => {
  const clock = new FakeClock()
  const igd = await start(ctx, { clock })
  const client = new PinholeClient({ controlURL: igd.pinholeControlUrl!, clock })
  const pinhole = await client.open({ internalClient: '::1', internalPort: 4001, protocol: 'udp', leaseTimeSeconds: 120 })
  assert.equal(pinhole.uniqueId, 1)
  assert.deepEqual(igd.pinholes().map((p) => [p.internalClient, p.internalPort, p.protocol]), [['::1', 4001, 17]])
  assert.equal(await client.checkWorking(pinhole), false)
  igd.pinholeTraffic(1)
  assert.equal(await client.checkWorking(pinhole), true)
  assert.equal(await client.packets(pinhole), 1)
  const again = await client.open({ internalClient: '::1', internalPort: 4001, protocol: 'udp', leaseTimeSeconds: 120 })
  assert.equal(again.uniqueId, 1, 'the same tuple: the same UniqueID, as miniupnpd answers')
  await client.delete(pinhole)
  assert.deepEqual(igd.pinholes(), [])
  await client.delete(pinhole) // 704 counts as deleted
  igd.quirks.firewallDisabled = true
  await assert.rejects(new PinholeClient({ controlURL: igd.pinholeControlUrl! }).open({ internalClient: '::1', internalPort: 4001, protocol: 'tcp', leaseTimeSeconds: 60 }), FirewallDisabledError)
  igd.quirks.firewallDisabled = false
  igd.quirks.inboundPinholesDisallowed = true
  await assert.rejects(new PinholeClient({ controlURL: igd.pinholeControlUrl! }).open({ internalClient: '::1', internalPort: 4001, protocol: 'tcp', leaseTimeSeconds: 60 }), InboundPinholeNotAllowedError)
  igd.quirks.inboundPinholesDisallowed = false
  await assert.rejects(client.open({ internalClient: '::1', internalPort: 80, protocol: 'tcp', leaseTimeSeconds: 60 }), (err: unknown) => err instanceof GatewayRefusedError && err.resultCode === 606)
})
