import { test } from 'node:test'
import assert from 'node:assert/strict'
import { classifyAddress, notPublicReason } from '../../src/net/address-class.js'

test('IPv4 and IPv6 address classes', () => {
  const cases: Array<[string, string]> = [
    ['11.0.0.1', 'public'], ['8.8.8.8', 'public'], ['100.63.255.255', 'public'], ['100.128.0.0', 'public'],
    ['10.1.2.3', 'private'], ['172.16.0.1', 'private'], ['172.31.255.255', 'private'], ['172.32.0.1', 'public'],
    ['192.168.1.3', 'private'], ['100.64.0.1', 'cgnat'], ['100.127.255.254', 'cgnat'],
    ['127.0.0.1', 'loopback'], ['169.254.10.1', 'link-local'], ['0.0.0.0', 'unspecified'],
    ['203.0.113.7', 'reserved'], ['198.51.100.1', 'reserved'], ['192.0.2.1', 'reserved'], ['198.18.0.1', 'reserved'],
    ['224.0.0.1', 'reserved'], ['255.255.255.255', 'reserved'],
    ['2a00:1450::1', 'public'], ['fd00::1', 'private'], ['fe80::1', 'link-local'], ['::1', 'loopback'], ['::', 'unspecified'],
    ['2001:db8::1', 'reserved'], ['ff02::1', 'reserved']
  ]
  for (const [address, kind] of cases) assert.equal(classifyAddress(address), kind, address)
})

test('the reason names double NAT and CGNAT in plain words, and is undefined for public addresses', () => {
  assert.equal(notPublicReason('11.0.0.1'), undefined)
  assert.match(notPublicReason('192.168.1.3') ?? '', /^double NAT: .*192\.168\.1\.3/)
  assert.match(notPublicReason('100.64.0.1') ?? '', /^carrier-grade NAT: .*100\.64\.0\.1/)
})
