import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { GatewayRefusedError, RemoteProtocolError, UsageError } from '../../src/errors.js'
import {
  classifyExternalAddress, decodeAddAnyPortMapping, decodeAddPortMapping, decodeDeletePortMapping,
  decodeGetExternalIPAddress, decodeGetSpecificPortMappingEntry, decodeGetStatusInfo, encodeAddAnyPortMapping,
  encodeAddPortMapping, encodeDeletePortMapping, encodeGetExternalIPAddress, encodeGetSpecificPortMappingEntry,
  encodeGetStatusInfo, upnpProtocol, type PortMappingArgs
} from '../../src/upnp/actions.js'
import { ServiceType, UpnpErrorCode } from '../../src/upnp/codes.js'
import { encodeSoapResponse, parseSoapRequest } from '../../src/upnp/soap.js'

const fixtures = new URL('../../../test/fixtures/routers/', import.meta.url)
const fixture = (name: string): string => readFileSync(new URL(name, fixtures), 'utf8')

const IP1 = ServiceType.WANIPConnection1
const IP2 = ServiceType.WANIPConnection2

const mapping: PortMappingArgs = {
  externalPort: 41641,
  protocol: 'udp',
  internalPort: 41641,
  internalClient: '192.168.1.23',
  description: 'natmapper test',
  leaseDurationSeconds: 7200
}

test('AddPortMapping: the spec\'s argument order, upper-case protocol, enabled, empty remote host', () => {
  const request = encodeAddPortMapping(IP1, mapping)
  assert.equal(request.headers.SOAPAction, `"${IP1}#AddPortMapping"`)
  assert.deepEqual(parseSoapRequest(request.body), {
    serviceType: IP1,
    action: 'AddPortMapping',
    args: [
      ['NewRemoteHost', ''],
      ['NewExternalPort', '41641'],
      ['NewProtocol', 'UDP'],
      ['NewInternalPort', '41641'],
      ['NewInternalClient', '192.168.1.23'],
      ['NewEnabled', '1'],
      ['NewPortMappingDescription', 'natmapper test'],
      ['NewLeaseDuration', '7200']
    ]
  })
})

test('AddPortMapping: defaults, disabled, TCP, permanent lease', () => {
  const { args } = parseSoapRequest(encodeAddPortMapping(IP1, {
    externalPort: 80, protocol: 'tcp', internalPort: 8080, internalClient: '10.0.0.2', leaseDurationSeconds: 0, enabled: false
  }).body)
  assert.deepEqual(Object.fromEntries(args), {
    NewRemoteHost: '', NewExternalPort: '80', NewProtocol: 'TCP', NewInternalPort: '8080', NewInternalClient: '10.0.0.2',
    NewEnabled: '0', NewPortMappingDescription: 'natmapper', NewLeaseDuration: '0'
  })
})

test('AddAnyPortMapping: same arguments; the reply\'s NewReservedPort is the granted port', () => {
  const request = encodeAddAnyPortMapping(IP2, mapping)
  assert.equal(request.headers.SOAPAction, `"${IP2}#AddAnyPortMapping"`)
  assert.deepEqual(parseSoapRequest(request.body).args.map(([name]) => name),
    ['NewRemoteHost', 'NewExternalPort', 'NewProtocol', 'NewInternalPort', 'NewInternalClient', 'NewEnabled', 'NewPortMappingDescription', 'NewLeaseDuration'])
  assert.equal(decodeAddAnyPortMapping(fixture('miniupnpd-add-any-port-mapping.xml'), IP2), 40123)
  for (const bad of ['', '0', '65536', 'abc', '-1', '1e3']) {
    const xml = encodeSoapResponse(IP2, 'AddAnyPortMapping', [['NewReservedPort', bad]])
    assert.throws(() => decodeAddAnyPortMapping(xml, IP2), RemoteProtocolError, bad)
  }
  assert.throws(() => decodeAddAnyPortMapping(encodeSoapResponse(IP2, 'AddAnyPortMapping', []), IP2), RemoteProtocolError)
  assert.throws(() => decodeAddAnyPortMapping(fixture('fault-606-igd2.xml'), IP2),
    (err: unknown) => err instanceof GatewayRefusedError && err.resultCode === UpnpErrorCode.ActionNotAuthorized)
})

test('DeletePortMapping and GetSpecificPortMappingEntry take the mapping key', () => {
  for (const [encode, action] of [[encodeDeletePortMapping, 'DeletePortMapping'], [encodeGetSpecificPortMappingEntry, 'GetSpecificPortMappingEntry']] as const) {
    const parsed = parseSoapRequest(encode(IP1, { externalPort: 41641, protocol: 'tcp' }).body)
    assert.equal(parsed.action, action)
    assert.deepEqual(parsed.args, [['NewRemoteHost', ''], ['NewExternalPort', '41641'], ['NewProtocol', 'TCP']])
  }
  const withHost = parseSoapRequest(encodeDeletePortMapping(IP1, { remoteHost: '198.51.100.9', externalPort: 1, protocol: 'udp' }).body)
  assert.deepEqual(withHost.args[0], ['NewRemoteHost', '198.51.100.9'])
})

test('GetExternalIPAddress and GetStatusInfo take no arguments', () => {
  assert.deepEqual(parseSoapRequest(encodeGetExternalIPAddress(IP1).body), { serviceType: IP1, action: 'GetExternalIPAddress', args: [] })
  assert.deepEqual(parseSoapRequest(encodeGetStatusInfo(IP2).body), { serviceType: IP2, action: 'GetStatusInfo', args: [] })
})

test('encode inputs are checked: UsageError', () => {
  const bad: Array<Partial<PortMappingArgs>> = [
    { externalPort: 0 }, { externalPort: 65536 }, { externalPort: 1.5 }, { externalPort: Number.NaN },
    { internalPort: 0 }, { internalPort: -1 },
    { protocol: 'sctp' as 'tcp' }, { protocol: '' as 'tcp' },
    { internalClient: '' }, { internalClient: 'my-laptop' }, { internalClient: '::1' }, { internalClient: '192.168.1.256' },
    { remoteHost: 'example.com' },
    { leaseDurationSeconds: -1 }, { leaseDurationSeconds: 0.5 }, { leaseDurationSeconds: 2 ** 32 },
    { description: 'bell \u0007' }
  ]
  for (const change of bad) {
    assert.throws(() => encodeAddPortMapping(IP1, { ...mapping, ...change }), UsageError, JSON.stringify(change))
    assert.throws(() => encodeAddAnyPortMapping(IP2, { ...mapping, ...change }), UsageError, JSON.stringify(change))
  }
  assert.throws(() => encodeDeletePortMapping(IP1, { externalPort: 0, protocol: 'tcp' }), UsageError)
  assert.throws(() => encodeGetSpecificPortMappingEntry(IP1, { externalPort: 1, protocol: 'icmp' as 'tcp' }), UsageError)
})

test('upnpProtocol: upper case out, tcp/udp in any case', () => {
  assert.equal(upnpProtocol('udp'), 'UDP')
  assert.equal(upnpProtocol('TCP'), 'TCP')
  assert.equal(upnpProtocol('Udp'), 'UDP')
  assert.throws(() => upnpProtocol('sctp'), UsageError)
  assert.throws(() => upnpProtocol(undefined as unknown as string), UsageError)
})

test('GetExternalIPAddress fixtures: an address, or a typed "no external address"', () => {
  const table: Array<[string, unknown]> = [
    ['miniupnpd-external-ip.xml', { ok: true, address: '203.0.113.45' }],
    ['sagemcom-external-ip-cgnat.xml', { ok: true, address: '100.64.12.34' }],
    ['odd-prefix-response.xml', { ok: true, address: '198.51.100.7' }],
    ['miniupnpd-external-ip-empty.xml', { ok: false, reason: 'empty', text: '' }],
    ['external-ip-unspecified.xml', { ok: false, reason: 'unspecified', text: '0.0.0.0' }],
    ['external-ip-loopback.xml', { ok: false, reason: 'loopback', text: '127.0.0.1' }],
    ['asus-merlin-external-ip-garbage.xml', { ok: false, reason: 'not-ipv4', text: 'wan0 down' }]
  ]
  for (const [name, expected] of table) assert.deepEqual(decodeGetExternalIPAddress(fixture(name), IP1), expected, name)
  assert.deepEqual(decodeGetExternalIPAddress(encodeSoapResponse(IP1, 'GetExternalIPAddress', []), IP1), { ok: false, reason: 'missing', text: '' })
  assert.throws(() => decodeGetExternalIPAddress(fixture('fault-718.xml'), IP1), GatewayRefusedError)
  assert.throws(() => decodeGetExternalIPAddress(fixture('mikrotik-status-connected.xml'), IP1), RemoteProtocolError)
})

test('classifyExternalAddress: strict IPv4, unusable ranges named', () => {
  const table: Array<[string, string]> = [
    ['1.1.1.1', 'ok'], ['192.168.1.2', 'ok'], ['10.1.2.3', 'ok'], ['100.64.0.1', 'ok'], ['223.255.255.255', 'ok'],
    ['0.0.0.0', 'unspecified'], ['0.1.2.3', 'unspecified'], ['127.0.0.1', 'loopback'], ['127.255.255.254', 'loopback'],
    ['169.254.1.1', 'link-local'], ['224.0.0.1', 'multicast'], ['239.255.255.250', 'multicast'],
    ['240.0.0.1', 'reserved'], ['255.255.255.255', 'reserved'],
    ['', 'empty'], ['01.2.3.4', 'not-ipv4'], ['1.2.3', 'not-ipv4'], ['1.2.3.4.5', 'not-ipv4'], ['::1', 'not-ipv4'],
    ['2001:db8::1', 'not-ipv4'], ['1.2.3.4 ', 'not-ipv4'], ['(null)', 'not-ipv4']
  ]
  for (const [text, expected] of table) {
    const result = classifyExternalAddress(text)
    assert.equal(result.ok ? 'ok' : result.reason, expected, JSON.stringify(text))
  }
})

test('GetStatusInfo fixtures', () => {
  assert.deepEqual(decodeGetStatusInfo(fixture('mikrotik-status-disconnected.xml'), IP1),
    { connectionStatus: 'Disconnected', connected: false, lastConnectionError: 'ERROR_NONE', uptimeSeconds: 0 })
  assert.deepEqual(decodeGetStatusInfo(fixture('mikrotik-status-connected.xml'), IP1),
    { connectionStatus: 'Connected', connected: true, lastConnectionError: 'ERROR_NONE', uptimeSeconds: 86400 })
  assert.deepEqual(decodeGetStatusInfo(fixture('status-up-garbage-uptime.xml'), IP1),
    { connectionStatus: 'Up', connected: true, lastConnectionError: '', uptimeSeconds: undefined })
  assert.throws(() => decodeGetStatusInfo(encodeSoapResponse(IP1, 'GetStatusInfo', [['NewUptime', '5']]), IP1), RemoteProtocolError)
})

test('GetSpecificPortMappingEntry: the entry, undefined on 714, other faults thrown', () => {
  assert.deepEqual(decodeGetSpecificPortMappingEntry(fixture('miniupnpd-specific-entry.xml'), IP1), {
    internalPort: 7001, internalClient: '192.168.1.23', enabled: true, description: 'natmapper & co', leaseDurationSeconds: 7182
  })
  assert.equal(decodeGetSpecificPortMappingEntry(fixture('fault-714.xml'), IP1), undefined)
  assert.throws(() => decodeGetSpecificPortMappingEntry(fixture('fault-718.xml'), IP1),
    (err: unknown) => err instanceof GatewayRefusedError && err.resultName === 'ConflictInMappingEntry')
  const odd = encodeSoapResponse(IP1, 'GetSpecificPortMappingEntry', [
    ['NewInternalPort', ' 80 '], ['NewInternalClient', ' 10.0.0.2 '], ['NewEnabled', 'maybe'], ['NewLeaseDuration', 'forever']
  ])
  assert.deepEqual(decodeGetSpecificPortMappingEntry(odd, IP1),
    { internalPort: 80, internalClient: '10.0.0.2', enabled: undefined, description: '', leaseDurationSeconds: undefined })
  for (const [text, enabled] of [['true', true], ['yes', true], ['0', false], ['False', false], ['no', false]] as const) {
    const xml = encodeSoapResponse(IP1, 'GetSpecificPortMappingEntry', [['NewInternalPort', '1'], ['NewEnabled', text]])
    assert.equal(decodeGetSpecificPortMappingEntry(xml, IP1)?.enabled, enabled, text)
  }
  assert.throws(() => decodeGetSpecificPortMappingEntry(encodeSoapResponse(IP1, 'GetSpecificPortMappingEntry', [['NewInternalPort', '0']]), IP1), RemoteProtocolError)
})

test('AddPortMapping and DeletePortMapping: success is the empty response; faults carry their codes', () => {
  decodeAddPortMapping(fixture('miniupnpd-add-port-mapping.xml'), IP1)
  decodeDeletePortMapping(encodeSoapResponse(IP1, 'DeletePortMapping', []), IP1)
  const expectations: Array<[string, number, string]> = [
    ['fault-725.xml', 725, 'OnlyPermanentLeasesSupported'],
    ['fault-402-padded.xml', 402, 'InvalidArgs'],
    ['fault-718.xml', 718, 'ConflictInMappingEntry'],
    ['fault-606-igd2.xml', 606, 'ActionNotAuthorized']
  ]
  for (const [name, code, codeName] of expectations) {
    assert.throws(() => decodeAddPortMapping(fixture(name), IP1), (err: unknown) => {
      assert.ok(err instanceof GatewayRefusedError)
      assert.equal(err.resultCode, code)
      assert.equal(err.resultName, codeName)
      return true
    }, name)
  }
  assert.throws(() => decodeDeletePortMapping(fixture('fault-714.xml'), IP1), GatewayRefusedError)
  // The right envelope for the wrong action is not success.
  assert.throws(() => decodeAddPortMapping(encodeSoapResponse(IP1, 'DeletePortMapping', []), IP1), RemoteProtocolError)
})
