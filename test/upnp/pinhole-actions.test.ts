import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { FirewallDisabledError, GatewayRefusedError, InboundPinholeNotAllowedError, RemoteProtocolError, UsageError } from '../../src/errors.js'
import { ServiceType, upnpErrorName } from '../../src/upnp/codes.js'
import { findFirewallServices, parseDescription } from '../../src/upnp/description.js'
import {
  canonicalIpv6, decodeAddPinhole, decodeCheckPinholeWorking, decodeDeletePinhole, decodeGetFirewallStatus, decodeGetOutboundPinholeTimeout,
  decodeGetPinholePackets, decodeUpdatePinhole, encodeAddPinhole, encodeCheckPinholeWorking, encodeDeletePinhole, encodeGetFirewallStatus,
  encodeGetOutboundPinholeTimeout, encodeGetPinholePackets, encodeUpdatePinhole
} from '../../src/upnp/pinhole-actions.js'
import { encodeSoapFault, encodeSoapResponse, parseSoapRequest } from '../../src/upnp/soap.js'

const fixtures = new URL('../../../test/fixtures/routers/', import.meta.url)
const fixture = (name: string): string => readFileSync(new URL(name, fixtures), 'utf8')
const FC = ServiceType.WANIPv6FirewallControl1

test('description: miniupnpd\'s IGD v2 lists WANIPv6FirewallControl:1 in its WANConnectionDevice; v1 has none', () => {
  const v2 = parseDescription(fixture('miniupnpd-igd2-rootDesc.xml'), 'http://192.168.1.1:5000/rootDesc.xml')
  assert.deepEqual(findFirewallServices(v2), [{ serviceType: FC, controlURL: 'http://192.168.1.1:5000/ctl/IP6FCtl', deviceUDN: 'uuid:6f1b0a2c-1111-4e2a-9a3b-0242ac110004' }])
  const v1 = parseDescription(fixture('miniupnpd-igd1-rootDesc.xml'), 'http://192.168.1.1:5000/rootDesc.xml')
  assert.deepEqual(findFirewallServices(v1), [])
})

test('AddPinhole: arguments in the template\'s order, protocol as a number, InternalClient as inet_ntop writes it', () => {
  const request = encodeAddPinhole(FC, { internalClient: '2001:DB8:1:0:0:0:0:2', internalPort: 4001, protocol: 'tcp', leaseTimeSeconds: 3600 })
  const parsed = parseSoapRequest(request.body)
  assert.equal(parsed.action, 'AddPinhole')
  assert.equal(parsed.serviceType, FC)
  assert.deepEqual(parsed.args, [['RemoteHost', ''], ['RemotePort', '0'], ['InternalClient', '2001:db8:1::2'], ['InternalPort', '4001'], ['Protocol', '6'], ['LeaseTime', '3600']])
  assert.equal(request.headers.SOAPAction, `"${FC}#AddPinhole"`)
  const udp = parseSoapRequest(encodeAddPinhole(FC, { internalClient: '2001:db8::5', internalPort: 9, protocol: 'udp', leaseTimeSeconds: 1, remoteHost: '2001:db8:2::2', remotePort: 443 }).body)
  assert.deepEqual(udp.args.map(([, v]) => v), ['2001:db8:2::2', '443', '2001:db8::5', '9', '17', '1'])
  assert.equal(decodeAddPinhole(fixture('miniupnpd-add-pinhole.xml'), FC), 3)
})

test('encoders refuse what the service cannot take', () => {
  const ok = { internalClient: '2001:db8::5', internalPort: 4001, protocol: 'tcp' as const, leaseTimeSeconds: 60 }
  for (const bad of [
    { ...ok, internalClient: '192.0.2.1' }, { ...ok, internalClient: '::ffff:192.0.2.1' }, { ...ok, internalClient: 'host' },
    { ...ok, internalPort: 0 }, { ...ok, internalPort: 65536 }, { ...ok, leaseTimeSeconds: 0 }, { ...ok, leaseTimeSeconds: 86401 },
    { ...ok, protocol: 'sctp' as 'tcp' }, { ...ok, remoteHost: '192.0.2.1' }, { ...ok, remotePort: -1 }
  ]) assert.throws(() => encodeAddPinhole(FC, bad), UsageError, JSON.stringify(bad))
  assert.throws(() => encodeUpdatePinhole(FC, 65536, 60), UsageError)
  assert.throws(() => encodeDeletePinhole(FC, -1), UsageError)
  assert.equal(canonicalIpv6('2001:0db8:0000::0001'), '2001:db8::1')
})

test('UpdatePinhole, DeletePinhole, CheckPinholeWorking, GetPinholePackets, GetOutboundPinholeTimeout: requests and replies', () => {
  assert.deepEqual(parseSoapRequest(encodeUpdatePinhole(FC, 3, 7200).body).args, [['UniqueID', '3'], ['NewLeaseTime', '7200']])
  assert.deepEqual(parseSoapRequest(encodeDeletePinhole(FC, 3).body).args, [['UniqueID', '3']])
  assert.deepEqual(parseSoapRequest(encodeCheckPinholeWorking(FC, 3).body).args, [['UniqueID', '3']])
  assert.deepEqual(parseSoapRequest(encodeGetPinholePackets(FC, 3).body).args, [['UniqueID', '3']])
  assert.deepEqual(parseSoapRequest(encodeGetFirewallStatus(FC).body).args, [])
  assert.deepEqual(parseSoapRequest(encodeGetOutboundPinholeTimeout(FC, { internalClient: '2001:db8::5', internalPort: 4001, protocol: 'udp' }).body).args.map(([n]) => n),
    ['RemoteHost', 'RemotePort', 'InternalClient', 'InternalPort', 'Protocol'])
  assert.equal(decodeUpdatePinhole(fixture('miniupnpd-update-pinhole.xml'), FC), undefined)
  assert.equal(decodeDeletePinhole(encodeSoapResponse(FC, 'DeletePinhole', []), FC), undefined)
  assert.equal(decodeGetPinholePackets(fixture('miniupnpd-get-pinhole-packets.xml'), FC), 12)
  assert.equal(decodeCheckPinholeWorking(encodeSoapResponse(FC, 'CheckPinholeWorking', [['IsWorking', '1']]), FC), true)
  assert.equal(decodeCheckPinholeWorking(fixture('fault-709-no-packet-sent.xml'), FC), false, '709 NoPacketSent is an answer')
  assert.equal(decodeGetOutboundPinholeTimeout(encodeSoapResponse(FC, 'GetOutboundPinholeTimeout', [['OutboundPinholeTimeout', '120']]), FC), 120)
  assert.deepEqual(decodeGetFirewallStatus(fixture('miniupnpd-get-firewall-status.xml'), FC), { firewallEnabled: true, inboundPinholeAllowed: true })
})

test('faults: 702 and 703 are their own classes (still refusals); 606, 704 and the rest GatewayRefusedError with the spec\'s names', () => {
  assert.throws(() => decodeAddPinhole(fixture('fault-702-firewall-disabled.xml'), FC), (err: unknown) =>
    err instanceof FirewallDisabledError && err instanceof GatewayRefusedError && err.code === 'NATMAPPER_FIREWALL_DISABLED' && err.resultCode === 702)
  assert.throws(() => decodeUpdatePinhole(fixture('fault-703-inbound-pinhole-not-allowed.xml'), FC), (err: unknown) =>
    err instanceof InboundPinholeNotAllowedError && err.code === 'NATMAPPER_PINHOLE_NOT_ALLOWED' && err.resultCode === 703)
  assert.throws(() => decodeAddPinhole(fixture('fault-606-igd2.xml'), FC), (err: unknown) =>
    err instanceof GatewayRefusedError && !(err instanceof FirewallDisabledError) && err.resultCode === 606 && err.resultName === 'ActionNotAuthorized')
  for (const [code, name] of [[701, 'PinholeSpaceExhausted'], [704, 'NoSuchEntry'], [705, 'ProtocolNotSupported'], [706, 'InternalPortWildcardingNotAllowed'], [707, 'ProtocolWildcardingNotAllowed'], [708, 'WildCardNotPermittedInSrcIP']] as const) {
    assert.equal(upnpErrorName(code), name)
    assert.throws(() => decodeDeletePinhole(encodeSoapFault(code), FC), (err: unknown) => err instanceof GatewayRefusedError && err.resultCode === code && err.resultName === name)
  }
  assert.equal(upnpErrorName(715), 'WildCardNotPermittedInSrcIP', 'WANIPConnection\'s 715 keeps its name')
})

test('replies without their values are RemoteProtocolError', () => {
  assert.throws(() => decodeAddPinhole(encodeSoapResponse(FC, 'AddPinhole', [['UniqueID', '65536']]), FC), RemoteProtocolError)
  assert.throws(() => decodeAddPinhole(encodeSoapResponse(FC, 'AddPinhole', []), FC), RemoteProtocolError)
  assert.throws(() => decodeGetFirewallStatus(encodeSoapResponse(FC, 'GetFirewallStatus', [['FirewallEnabled', 'maybe'], ['InboundPinholeAllowed', '1']]), FC), RemoteProtocolError)
  assert.throws(() => decodeCheckPinholeWorking(encodeSoapResponse(FC, 'CheckPinholeWorking', []), FC), RemoteProtocolError)
  assert.throws(() => decodeAddPinhole(encodeSoapResponse(FC, 'DeletePinhole', []), FC), RemoteProtocolError)
})
