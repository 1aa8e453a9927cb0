import { test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import type { SimulatedIgd } from '../../src/testing/igd.js'
import { encodeAddAnyPortMapping, encodeAddPortMapping, type PortMappingArgs } from '../../src/upnp/actions.js'
import { parseSoapFault, encodeSoapRequest } from '../../src/upnp/soap.js'
import { parseDescription, findWanServices } from '../../src/upnp/description.js'
import { sendHttpRequest, type HttpResponse } from '../../src/upnp/http.js'
import { startIgd } from './setup.js'

/** The simulated IGD itself: the behaviours its switches promise, checked with hand-made requests. */

async function post (igd: SimulatedIgd, body: string, headers: Record<string, string>, path = '/ctl/IPConn'): Promise<HttpResponse> {
  return await sendHttpRequest({ method: 'POST', url: `http://127.0.0.1:${igd.httpPort}${path}`, headers, body, maxBytes: 65536, timeoutMs: 2000 })
}

async function add (igd: SimulatedIgd, args: Partial<PortMappingArgs>, action: 'AddPortMapping' | 'AddAnyPortMapping' = 'AddPortMapping'): Promise<{ status: number, fault: number | undefined, body: string }> {
  const full: PortMappingArgs = { externalPort: 40000, protocol: 'tcp', internalPort: 40000, internalClient: '127.0.0.1', leaseDurationSeconds: 3600, ...args }
  const request = (action === 'AddPortMapping' ? encodeAddPortMapping : encodeAddAnyPortMapping)(igd.serviceType, full)
  const response = await post(igd, request.body, request.headers)
  return { status: response.status, fault: parseSoapFault(response.body)?.errorCode, body: response.body }
}

async function setup (ctx: TestContext, version: 1 | 2 = 2): Promise<SimulatedIgd> {
  return await startIgd(ctx, { igdVersion: version })
}

test('the description is miniupnpd-shaped and parses to one WANIPConnection of the IGD\'s version', async (ctx) => {
  for (const version of [1, 2] as const) {
    const igd = await setup(ctx, version)
    const response = await sendHttpRequest({ method: 'GET', url: igd.descriptionUrl, maxBytes: 65536, timeoutMs: 2000 })
    assert.equal(response.status, 200)
    const services = findWanServices(parseDescription(response.body, igd.descriptionUrl))
    assert.deepEqual(services.map((s) => [s.serviceType, s.igdVersion, s.controlURL]),
      [[`urn:schemas-upnp-org:service:WANIPConnection:${version}`, version, `http://127.0.0.1:${igd.httpPort}/ctl/IPConn`]])
    igd.quirks.firstWanDisconnected = true
    const two = await sendHttpRequest({ method: 'GET', url: igd.descriptionUrl, maxBytes: 65536, timeoutMs: 2000 })
    assert.deepEqual(findWanServices(parseDescription(two.body, igd.descriptionUrl)).map((s) => s.controlURL.replace(/.*\/ctl/, '/ctl')), ['/ctl/IPConn0', '/ctl/IPConn'])
    const missing = await sendHttpRequest({ method: 'GET', url: `http://127.0.0.1:${igd.httpPort}/nope.xml`, maxBytes: 65536, timeoutMs: 2000 })
    assert.equal(missing.status, 404)
  }
})

test('switch strictSoapAction: anything but a header named SOAPAction with the quoted value gets the login page', async (ctx) => {
  const igd = await setup(ctx)
  igd.quirks.strictSoapAction = true
  const request = encodeSoapRequest(igd.serviceType, 'GetExternalIPAddress', [])
  const exact = await post(igd, request.body, { ...request.headers })
  assert.match(exact.body, /<NewExternalIPAddress>11\.0\.0\.1<\/NewExternalIPAddress>/)
  const value = request.headers.SOAPAction
  const variants: Array<Record<string, string>> = [
    { Soapaction: value },
    { SOAPAction: value.slice(1, -1) },
    { SOAPACTION: value }
  ]
  for (const headers of variants) {
    const response = await post(igd, request.body, { 'Content-Type': request.headers['Content-Type'], ...headers })
    assert.equal(response.status, 200)
    assert.match(response.body, /<title>Login<\/title>/, JSON.stringify(headers))
  }
  igd.quirks.strictSoapAction = false
  const lenient = await post(igd, request.body, { soapaction: value.slice(1, -1) })
  assert.match(lenient.body, /NewExternalIPAddress/)
  const none = await post(igd, request.body, {})
  assert.equal(parseSoapFault(none.body)?.errorCode, 401)
})

test('switch strictServiceType: an action in another service\'s namespace gets 401 (libtorrent#6611); miniupnpd answers it', async (ctx) => {
  const igd = await setup(ctx)
  const lenient = encodeSoapRequest('urn:schemas-upnp-org:service:WANPPPConnection:1', 'GetExternalIPAddress', [])
  assert.match((await post(igd, lenient.body, lenient.headers)).body, /<NewExternalIPAddress>11\.0\.0\.1</)
  igd.quirks.strictServiceType = true
  const request = encodeSoapRequest('urn:schemas-upnp-org:service:WANPPPConnection:1', 'GetExternalIPAddress', [])
  assert.equal(parseSoapFault((await post(igd, request.body, request.headers)).body)?.errorCode, 401)
})

test('switch rejectLowerCaseProtocol: "udp" gets 402, "UDP" passes', async (ctx) => {
  const igd = await setup(ctx, 1)
  const lower = (protocol: string): { body: string, headers: Record<string, string> } => {
    const request = encodeAddPortMapping(igd.serviceType, { externalPort: 40000, protocol: 'udp', internalPort: 40000, internalClient: '127.0.0.1', leaseDurationSeconds: 60 })
    return { body: request.body.replace('<NewProtocol>UDP</NewProtocol>', `<NewProtocol>${protocol}</NewProtocol>`), headers: { ...request.headers } }
  }
  const accepted = lower('udp')
  assert.equal((await post(igd, accepted.body, accepted.headers)).status, 200, 'lower case is fine by default')
  igd.quirks.rejectLowerCaseProtocol = true
  const refused = lower('udp')
  assert.equal(parseSoapFault((await post(igd, refused.body, refused.headers)).body)?.errorCode, 402)
  assert.equal((await add(igd, { protocol: 'udp', externalPort: 40001 })).status, 200)
})

test('miniupnpd\'s rules: port 0 is 716; another client is 718; a low port is 718 on v1 and 606 on v2; the same client overwrites', async (ctx) => {
  for (const version of [1, 2] as const) {
    const igd = await setup(ctx, version)
    const denied = version === 2 ? 606 : 718
    const zero = encodeAddPortMapping(igd.serviceType, { externalPort: 1, protocol: 'tcp', internalPort: 1, internalClient: '127.0.0.1', leaseDurationSeconds: 0 })
    const zeroBody = zero.body.replace('<NewExternalPort>1</NewExternalPort>', '<NewExternalPort>0</NewExternalPort>')
    assert.equal(parseSoapFault((await post(igd, zeroBody, zero.headers)).body)?.errorCode, 716)
    // upnpsoap.c: secure mode refuses another client with 718 on both (the lab's miniupnpd 2.3.1 too).
    assert.equal((await add(igd, { internalClient: '127.0.0.5' })).fault, 718)
    assert.equal((await add(igd, { externalPort: 80 })).fault, denied)
    assert.equal((await add(igd, { internalPort: 22 })).fault, denied)
    assert.equal((await add(igd, {})).status, 200)
    assert.equal((await add(igd, { internalPort: 40001 })).status, 200, 'same client: overwrite')
    assert.deepEqual(igd.mappings().map((m) => m.internalPort), [40001])
    igd.occupy(41000, 'TCP')
    assert.equal((await add(igd, { externalPort: 41000 })).fault, 718)
    assert.equal((await add(igd, {}, 'AddAnyPortMapping')).fault, version === 1 ? 401 : undefined)
    assert.equal(igd.count('http', 'AddPortMapping'), 7)
  }
})

test('IGD v2 leases: 0 and anything over 604800 become 604800; v1 keeps 0 as permanent', async (ctx) => {
  const v2 = await setup(ctx, 2)
  await add(v2, { leaseDurationSeconds: 0, externalPort: 40000 })
  await add(v2, { leaseDurationSeconds: 10_000_000, externalPort: 40001 })
  assert.deepEqual(v2.mappings().map((m) => m.leaseSeconds), [604800, 604800])
  const v1 = await setup(ctx, 1)
  await add(v1, { leaseDurationSeconds: 0 })
  assert.equal(v1.mappings()[0]!.leaseSeconds, 0)
  assert.equal(v1.mappings()[0]!.expiresAtMs, Infinity)
})

test('switches onlyPermanentLeases (725) and invalidArgsOnLease (402) refuse any lease but 0', async (ctx) => {
  const igd = await setup(ctx, 1)
  igd.quirks.onlyPermanentLeases = true
  assert.equal((await add(igd, {})).fault, 725)
  assert.equal((await add(igd, { leaseDurationSeconds: 0 })).status, 200)
  igd.quirks.onlyPermanentLeases = false
  igd.quirks.invalidArgsOnLease = true
  assert.equal((await add(igd, { externalPort: 40001 })).fault, 402)
  assert.equal((await add(igd, { externalPort: 40001, leaseDurationSeconds: 0 })).status, 200)
})

test('switch resetAddAnyPortMapping resets the connection; conflictNext and faultNext answer faults in order', async (ctx) => {
  const igd = await setup(ctx)
  igd.quirks.resetAddAnyPortMapping = true
  await assert.rejects(add(igd, {}, 'AddAnyPortMapping'), /reset|hang up/)
  igd.quirks.conflictNext = 2
  assert.equal((await add(igd, {})).fault, 718)
  assert.equal((await add(igd, {})).fault, 718)
  assert.equal((await add(igd, {})).status, 200)
  igd.quirks.faultNext = [{ action: 'AddPortMapping', code: 501 }, { action: 'GetExternalIPAddress', code: 606 }]
  assert.equal((await add(igd, {})).fault, 501)
  assert.deepEqual(igd.quirks.faultNext, [{ action: 'GetExternalIPAddress', code: 606 }])
})

test('restart: a new BOOTID, the table lost, and by default a new HTTP port (the old one refuses)', async (ctx) => {
  const igd = await setup(ctx)
  await add(igd, {})
  const oldPort = igd.httpPort
  await igd.restart()
  assert.equal(igd.bootId, 2)
  assert.equal(igd.mappings().length, 0)
  assert.notEqual(igd.httpPort, oldPort)
  await assert.rejects(sendHttpRequest({ method: 'GET', url: `http://127.0.0.1:${oldPort}/rootDesc.xml`, maxBytes: 1024, timeoutMs: 2000 }), /refused/)
  await igd.restart({ sameHttpPort: true })
  assert.equal(igd.bootId, 3)
  assert.equal((await add(igd, {})).status, 200)
})
