import { test } from 'node:test'
import assert from 'node:assert/strict'
import { chooseLocalInterface, externalIpv4Interfaces } from '../../src/net/local-interface.js'
import { InterfaceError, UsageError } from '../../src/errors.js'
import { ipv4 } from '../helpers/net.js'

const interfaces = {
  lo: [ipv4('127.0.0.1', 8, true)],
  eth0: [{ ...ipv4('fe80::1', 64), family: 'IPv6' as const, address: 'fe80::1', cidr: 'fe80::1/64', scopeid: 2 }, ipv4('192.168.1.20', 24), ipv4('192.168.1.21', 24)],
  eth1: [ipv4('10.0.0.5', 8)],
  wlan0: [{ ...ipv4('fe80::2', 64), family: 'IPv6' as const, address: 'fe80::2', cidr: 'fe80::2/64', scopeid: 3 }]
}

const reasonOf = (choice: Parameters<typeof chooseLocalInterface>[0]): string => {
  try {
    chooseLocalInterface(choice, interfaces)
    return 'accepted'
  } catch (err) {
    assert.ok(err instanceof InterfaceError && err instanceof UsageError)
    assert.equal(err.code, 'NATMAPPER_BAD_INTERFACE')
    return `${err.reason}: ${err.message}`
  }
}

test('an interface gives its first IPv4 address; an address gives its interface; both must agree', () => {
  assert.deepEqual(chooseLocalInterface({ interface: 'eth0' }, interfaces), { name: 'eth0', address: '192.168.1.20', prefixLength: 24, internal: false })
  assert.deepEqual(chooseLocalInterface({ localAddress: '192.168.1.21' }, interfaces), { name: 'eth0', address: '192.168.1.21', prefixLength: 24, internal: false })
  assert.equal(chooseLocalInterface({ interface: 'eth0', localAddress: '192.168.1.21' }, interfaces)?.address, '192.168.1.21')
  assert.equal(chooseLocalInterface({}, interfaces), undefined)
})

test('InterfaceError: unknown interface, no IPv4, not IPv4, an address not on this host, a disagreement', () => {
  assert.match(reasonOf({ interface: 'eth9' }), /^unknown-interface: no network interface named "eth9" \(here: lo 127\.0\.0\.1, eth0 192\.168\.1\.20 192\.168\.1\.21, eth1 10\.0\.0\.5, wlan0 \(no IPv4\)\)$/)
  assert.match(reasonOf({ interface: 'wlan0' }), /^no-ipv4: the interface wlan0 has no IPv4 address/)
  assert.match(reasonOf({ localAddress: 'fe80::1' }), /^not-ipv4: /)
  assert.match(reasonOf({ localAddress: 'eth0' }), /^not-ipv4: /)
  assert.match(reasonOf({ localAddress: '192.168.1.99' }), /^address-not-local: no interface of this host has the address 192\.168\.1\.99/)
  assert.match(reasonOf({ interface: 'eth1', localAddress: '192.168.1.20' }), /^mismatch: 192\.168\.1\.20 is an address of eth0, not of eth1$/)
})

test('externalIpv4Interfaces: loopback and IPv6-only interfaces are left out', () => {
  assert.deepEqual(externalIpv4Interfaces(interfaces).map((i) => `${i.name} ${i.address}`), ['eth0 192.168.1.20', 'eth1 10.0.0.5'])
})
