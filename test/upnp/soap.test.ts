import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import fc from 'fast-check'
import { GatewayRefusedError, RemoteProtocolError, UsageError } from '../../src/errors.js'
import {
  encodeSoapFault, encodeSoapRequest, encodeSoapResponse, escapeXml, parseSoapActionHeader, parseSoapFault,
  parseSoapRequest, parseSoapResponse, MAX_SOAP_CHARS
} from '../../src/upnp/soap.js'
import { ServiceType } from '../../src/upnp/codes.js'

const fixtures = new URL('../../../test/fixtures/routers/', import.meta.url)
const fixture = (name: string): string => readFileSync(new URL(name, fixtures), 'utf8')
/** A .txt fixture without its leading "# " provenance lines. */
const textFixture = (name: string): string => fixture(name).split('\n').filter((line) => !line.startsWith('# ')).join('\n')

const IP1 = ServiceType.WANIPConnection1
const IP2 = ServiceType.WANIPConnection2

test('request: the exact envelope and headers for an action without arguments', () => {
  const request = encodeSoapRequest(IP1, 'GetExternalIPAddress', [])
  assert.deepEqual(request.headers, {
    'Content-Type': 'text/xml; charset="utf-8"',
    SOAPAction: '"urn:schemas-upnp-org:service:WANIPConnection:1#GetExternalIPAddress"'
  })
  assert.equal(request.body,
    '<?xml version="1.0"?>\r\n' +
    '<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/" s:encodingStyle="http://schemas.xmlsoap.org/soap/encoding/">' +
    '<s:Body><u:GetExternalIPAddress xmlns:u="urn:schemas-upnp-org:service:WANIPConnection:1"></u:GetExternalIPAddress>' +
    '</s:Body></s:Envelope>\r\n')
  assert.equal(request.serviceType, IP1)
  assert.equal(request.action, 'GetExternalIPAddress')
})

test('request: arguments keep their order and their values are escaped', () => {
  const request = encodeSoapRequest(IP2, 'AddPortMapping', [
    ['NewRemoteHost', ''],
    ['NewExternalPort', '7001'],
    ['NewPortMappingDescription', `a<b>&"c"'d'\r\ne\tf`]
  ])
  assert.ok(request.body.includes('<NewRemoteHost></NewRemoteHost><NewExternalPort>7001</NewExternalPort>' +
    '<NewPortMappingDescription>a&lt;b&gt;&amp;&quot;c&quot;&apos;d&apos;&#13;\ne\tf</NewPortMappingDescription>'))
  const parsed = parseSoapRequest(request.body)
  assert.equal(parsed.serviceType, IP2)
  assert.equal(parsed.action, 'AddPortMapping')
  assert.deepEqual(parsed.args, [['NewRemoteHost', ''], ['NewExternalPort', '7001'], ['NewPortMappingDescription', `a<b>&"c"'d'\r\ne\tf`]])
})

test('request: what XML or the header cannot carry is a UsageError', () => {
  assert.throws(() => encodeSoapRequest('', 'A', []), UsageError)
  assert.throws(() => encodeSoapRequest('urn:x"y', 'A', []), UsageError)
  assert.throws(() => encodeSoapRequest('urn:x y', 'A', []), UsageError)
  assert.throws(() => encodeSoapRequest('urn:x#y', 'A', []), UsageError)
  assert.throws(() => encodeSoapRequest(IP1, '', []), UsageError)
  assert.throws(() => encodeSoapRequest(IP1, 'Get IP', []), UsageError)
  assert.throws(() => encodeSoapRequest(IP1, 'u:Get', []), UsageError)
  assert.throws(() => encodeSoapRequest(IP1, '1Get', []), UsageError)
  assert.throws(() => encodeSoapRequest(IP1, 'Get', [['New Arg', 'x']]), UsageError)
  assert.throws(() => encodeSoapRequest(IP1, 'Get', [['NewArg', 'a\u0000b']]), UsageError)
  assert.throws(() => encodeSoapRequest(IP1, 'Get', [['NewArg', 'a\u001bb']]), UsageError)
  assert.throws(() => encodeSoapRequest(IP1, 'Get', [['NewArg', 'a\ud800b']]), UsageError)
  assert.throws(() => encodeSoapRequest(IP1, 'Get', [['NewArg', '\uffff']]), UsageError)
  assert.equal(escapeXml('emoji \ud83d\ude00 ok'), 'emoji \ud83d\ude00 ok')
})

test('request: any XML-safe argument value survives the round trip', () => {
  const safe = fc.string({ unit: 'grapheme', maxLength: 80 }).filter((s) => {
    try { escapeXml(s); return true } catch { return false }
  })
  fc.assert(fc.property(fc.array(fc.tuple(fc.constantFrom('NewA', 'NewB', 'New_C', 'x-y.z'), safe), { maxLength: 8 }), (args) => {
    const parsed = parseSoapRequest(encodeSoapRequest(IP1, 'DoIt', args).body)
    assert.deepEqual(parsed.args, args)
  }), { numRuns: 500 })
})

test('response: GetExternalIPAddress from miniupnpd', () => {
  assert.deepEqual({ ...parseSoapResponse(fixture('miniupnpd-external-ip.xml'), IP2, 'GetExternalIPAddress') },
    { NewExternalIPAddress: '203.0.113.45' })
})

test('response: any prefix, the namespace declared higher up, values untrimmed', () => {
  assert.deepEqual({ ...parseSoapResponse(fixture('odd-prefix-response.xml'), IP1, 'GetExternalIPAddress') },
    { NewExternalIPAddress: '\n        198.51.100.7\n      ' })
})

test('response: empty and self-closed elements give \'\'; no arguments gives {}', () => {
  assert.deepEqual({ ...parseSoapResponse(fixture('miniupnpd-external-ip-empty.xml'), IP2, 'GetExternalIPAddress') }, { NewExternalIPAddress: '' })
  assert.deepEqual({ ...parseSoapResponse(fixture('status-up-garbage-uptime.xml'), IP1, 'GetStatusInfo') },
    { NewConnectionStatus: 'Up', NewLastConnectionError: '', NewUptime: 'n/a' })
  assert.deepEqual({ ...parseSoapResponse(fixture('miniupnpd-add-port-mapping.xml'), IP1, 'AddPortMapping') }, {})
})

test('response: the record has no prototype, so an argument named __proto__ is just a key', () => {
  const xml = encodeSoapResponse(IP1, 'X', [['__proto__', 'a'], ['constructor', 'b']])
  const args = parseSoapResponse(xml, IP1, 'X')
  assert.equal(args.__proto__, 'a')
  assert.equal(args.constructor, 'b')
  assert.equal(Object.getPrototypeOf(args), null)
})

test('response: encodeSoapResponse then parseSoapResponse gives the arguments back', () => {
  const args: Array<[string, string]> = [['NewInternalPort', '7001'], ['NewPortMappingDescription', 'a & <b>'], ['NewEnabled', '1']]
  assert.deepEqual({ ...parseSoapResponse(encodeSoapResponse(IP1, 'GetSpecificPortMappingEntry', args), IP1, 'GetSpecificPortMappingEntry') },
    Object.fromEntries(args))
})

test('response: a fault becomes GatewayRefusedError with the UPnP code and name, whatever the HTTP status was', () => {
  const cases: Array<[string, number, string]> = [
    ['fault-725.xml', 725, 'OnlyPermanentLeasesSupported'],
    ['fault-718.xml', 718, 'ConflictInMappingEntry'],
    ['fault-606-igd2.xml', 606, 'ActionNotAuthorized'],
    ['fault-714.xml', 714, 'NoSuchEntryInArray'],
    ['fault-402-padded.xml', 402, 'InvalidArgs'],
    ['fault-negative-code.xml', -5, 'UNKNOWN_-5']
  ]
  for (const [name, code, codeName] of cases) {
    assert.throws(() => parseSoapResponse(fixture(name), IP1, 'AddPortMapping'), (err: unknown) => {
      assert.ok(err instanceof GatewayRefusedError, `${name}: ${String(err)}`)
      assert.equal(err.protocol, 'upnp')
      assert.equal(err.resultCode, code)
      assert.equal(err.resultName, codeName)
      assert.ok(err.message.includes('AddPortMapping'))
      return true
    })
  }
})

test('response: other bodies are RemoteProtocolErrors', () => {
  const cases: Array<[string, string]> = [
    [fixture('miniupnpd-external-ip.xml'), 'not <AddPortMappingResponse>'],
    ['<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body/></s:Envelope>', 'empty Body'],
    ['<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"/>', 'has no Body'],
    ['<Body><AddPortMappingResponse/></Body>', 'not a SOAP envelope'],
    [textFixture('html-login-page.txt'), 'not a SOAP envelope: root element is <html>'],
    [fixture('fault-without-upnperror.xml'), 'without a UPnP errorCode: Method not found'],
    ['<Envelope><Body><Fault><detail><UPnPError><errorCode>7x</errorCode></UPnPError></detail></Fault></Body></Envelope>', 'not an integer'],
    ['<Envelope><Body><Fault><detail><UPnPError><errorCode>99999999999999999999</errorCode></UPnPError></detail></Fault></Body></Envelope>', 'not an integer'],
    ['x'.repeat(MAX_SOAP_CHARS + 1), 'more than the 65536 allowed']
  ]
  for (const [xml, message] of cases) {
    assert.throws(() => parseSoapResponse(xml, IP1, 'AddPortMapping'), (err: unknown) => {
      assert.ok(err instanceof RemoteProtocolError, String(err))
      assert.ok(err.message.includes(message), `${err.message} should include ${message}`)
      return true
    })
  }
})

test('response: stray markup inside an argument is dropped, its text kept', () => {
  const xml = '<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body><u:GetSpecificPortMappingEntryResponse xmlns:u="x">' +
    '<NewInternalPort>7001</NewInternalPort><NewPortMappingDescription>getfirm <info></NewPortMappingDescription>' +
    '</u:GetSpecificPortMappingEntryResponse></s:Body></s:Envelope>'
  assert.deepEqual({ ...parseSoapResponse(xml, IP1, 'GetSpecificPortMappingEntry') }, { NewInternalPort: '7001', NewPortMappingDescription: 'getfirm ' })
  assert.throws(() => parseSoapRequest(xml), /has child elements/)
})

test('response: the action name is matched without regard to case, but must match', () => {
  const xml = '<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body><u:getexternalipaddressresponse xmlns:u="x">' +
    '<NewExternalIPAddress>192.0.2.1</NewExternalIPAddress></u:getexternalipaddressresponse></s:Body></s:Envelope>'
  assert.equal(parseSoapResponse(xml, IP1, 'GetExternalIPAddress').NewExternalIPAddress, '192.0.2.1')
})

test('fault: parseSoapFault reads each fault fixture, and undefined when there is none', () => {
  assert.deepEqual(parseSoapFault(fixture('fault-725.xml')), { errorCode: 725, errorDescription: 'OnlyPermanentLeasesSupported' })
  assert.deepEqual(parseSoapFault(fixture('fault-718.xml')), { errorCode: 718, errorDescription: 'ConflictInMappingEntry' })
  assert.deepEqual(parseSoapFault(fixture('fault-606-igd2.xml')), { errorCode: 606, errorDescription: 'Action not authorized' })
  assert.deepEqual(parseSoapFault(fixture('fault-402-padded.xml')), { errorCode: 402, errorDescription: 'Invalid Args' })
  assert.deepEqual(parseSoapFault(fixture('fault-negative-code.xml')), { errorCode: -5, errorDescription: 'Internal error' })
  assert.deepEqual(parseSoapFault(fixture('tplink-archer-garbled-fault.xml')),
    { errorCode: 401, errorDescription: 'Invalid Actio\ufffd\ufffd\ufffd*\ufffdrrorDescription>' })
  assert.equal(parseSoapFault(fixture('miniupnpd-external-ip.xml')), undefined)
  assert.throws(() => parseSoapFault(fixture('fault-without-upnperror.xml')), RemoteProtocolError)
  assert.throws(() => parseSoapFault(textFixture('html-login-page.txt')), RemoteProtocolError)
})

test('fault: encodeSoapFault then parseSoapFault', () => {
  assert.deepEqual(parseSoapFault(encodeSoapFault(718)), { errorCode: 718, errorDescription: 'ConflictInMappingEntry' })
  assert.deepEqual(parseSoapFault(encodeSoapFault(799, 'Vendor <thing>')), { errorCode: 799, errorDescription: 'Vendor <thing>' })
  assert.throws(() => encodeSoapFault(1.5), UsageError)
})

test('server side: parseSoapRequest needs a namespace on the action element', () => {
  assert.throws(() => parseSoapRequest('<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body><GetStatusInfo/></s:Body></s:Envelope>'), RemoteProtocolError)
  assert.throws(() => parseSoapRequest('<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body></s:Body></s:Envelope>'), RemoteProtocolError)
  const parsed = parseSoapRequest('<Envelope><Body><GetStatusInfo xmlns="urn:schemas-upnp-org:service:WANPPPConnection:1"/></Body></Envelope>')
  assert.deepEqual(parsed, { serviceType: 'urn:schemas-upnp-org:service:WANPPPConnection:1', action: 'GetStatusInfo', args: [] })
})

test('server side: parseSoapActionHeader', () => {
  assert.deepEqual(parseSoapActionHeader('"urn:schemas-upnp-org:service:WANIPConnection:1#AddPortMapping"'),
    { serviceType: IP1, action: 'AddPortMapping', quoted: true })
  assert.deepEqual(parseSoapActionHeader(` ${IP1}#GetStatusInfo `), { serviceType: IP1, action: 'GetStatusInfo', quoted: false })
  for (const bad of ['', '""', '"#A"', `"${IP1}#"`, 'no-hash']) assert.throws(() => parseSoapActionHeader(bad), RemoteProtocolError, bad)
})
