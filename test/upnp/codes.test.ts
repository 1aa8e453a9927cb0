import { test } from 'node:test'
import assert from 'node:assert/strict'
import { DeviceType, SSDP_HOST, ServiceType, TypePrefix, UpnpErrorCode, upnpErrorName } from '../../src/upnp/codes.js'

test('error names: every code in the table names itself back, lossless', () => {
  for (const [name, code] of Object.entries(UpnpErrorCode)) assert.equal(upnpErrorName(code), name)
  assert.equal(new Set(Object.values(UpnpErrorCode)).size, Object.keys(UpnpErrorCode).length, 'no code listed twice')
})

test('error names: the codes the IGD specs and the brief list', () => {
  const expected: Record<number, string> = {
    401: 'InvalidAction',
    402: 'InvalidArgs',
    501: 'ActionFailed',
    606: 'ActionNotAuthorized',
    713: 'SpecifiedArrayIndexInvalid',
    714: 'NoSuchEntryInArray',
    715: 'WildCardNotPermittedInSrcIP',
    716: 'WildCardNotPermittedInExtPort',
    718: 'ConflictInMappingEntry',
    724: 'SamePortValuesRequired',
    725: 'OnlyPermanentLeasesSupported',
    726: 'RemoteHostOnlySupportsWildcard',
    727: 'ExternalPortOnlySupportsWildcard',
    728: 'NoPortMapsAvailable',
    729: 'ConflictWithOtherMechanisms',
    732: 'WildCardNotPermittedInIntPort'
  }
  for (const [code, name] of Object.entries(expected)) assert.equal(upnpErrorName(Number(code)), name)
})

test('error names: unknown codes keep their number', () => {
  assert.equal(upnpErrorName(799), 'UNKNOWN_799')
  assert.equal(upnpErrorName(0), 'UNKNOWN_0')
  assert.equal(upnpErrorName(-5), 'UNKNOWN_-5')
})

test('types and addresses', () => {
  assert.equal(SSDP_HOST, '239.255.255.250:1900')
  assert.ok(DeviceType.InternetGatewayDevice2.startsWith(TypePrefix.InternetGatewayDevice))
  assert.ok(ServiceType.WANIPConnection2.startsWith(TypePrefix.WANIPConnection))
  assert.ok(ServiceType.WANPPPConnection1.startsWith(TypePrefix.WANPPPConnection))
  assert.ok(ServiceType.DslForumWANIPConnection1.startsWith(TypePrefix.DslForumWANIPConnection))
})
