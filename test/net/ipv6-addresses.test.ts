import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import type { NetworkInterfaceInfo } from 'node:os'
import { chooseIpv6Addresses, followIpv6Address, isGlobalUnicast6, parseProcNetIfInet6, type HostIpv6Address } from '../../src/net/ipv6-addresses.js'

const fixtures = new URL('../../../test/fixtures/routes/', import.meta.url)

function v6 (address: string, cidrLength = 64, scopeid = 0): NetworkInterfaceInfo {
  return { address, netmask: 'ffff:ffff:ffff:ffff::', family: 'IPv6', mac: '00:11:22:33:44:55', internal: false, cidr: `${address}/${cidrLength}`, scopeid }
}

test('if_inet6: the container\'s real file, flags read', () => {
  const flags = parseProcNetIfInet6(readFileSync(new URL('linux-container-if_inet6.txt', fixtures), 'utf8'))
  assert.deepEqual([...flags.keys()], ['fe80::fc:ff:fe00:1', '::1', 'fd00::2'])
  assert.deepEqual(flags.get('fd00::2'), { interface: 'eth0', prefixLength: 64, temporary: false, deprecated: false, unusable: false })
})

test('if_inet6: temporary (0x01), deprecated (0x20), tentative (0x40) and DAD-failed (0x08)', () => {
  const text = [
    '20010db8000100000000000000000010 02 40 00 80 wlan0',
    '20010db80001000012345678abcdef01 02 40 00 01 wlan0',
    '20010db80001000011111111aaaaaaaa 02 40 00 21 wlan0',
    '20010db8000100000000000000000020 02 40 00 40 wlan0',
    '20010db8000100000000000000000030 02 40 00 88 wlan0',
    'garbage line'
  ].join('\n')
  const flags = parseProcNetIfInet6(text)
  assert.equal(flags.size, 5)
  assert.equal(flags.get('2001:db8:1:0:1234:5678:abcd:ef01')?.temporary, true)
  assert.equal(flags.get('2001:db8:1:0:1111:1111:aaaa:aaaa')?.deprecated, true)
  assert.equal(flags.get('2001:db8:1::20')?.unusable, true)
  assert.equal(flags.get('2001:db8:1::30')?.unusable, true)
  assert.equal(flags.get('2001:db8:1::10')?.unusable, false)
})

test('global unicast only: no link-local, no ULA, no loopback, no multicast, no IPv4', () => {
  assert.equal(isGlobalUnicast6('2001:db8::1'), true)
  assert.equal(isGlobalUnicast6('2a00:1450::1'), true)
  for (const a of ['fe80::1', 'fd00::2', 'fc00::1', '::1', '::', 'ff02::1', '192.0.2.1', '::ffff:192.0.2.1', 'x']) assert.equal(isGlobalUnicast6(a), false, a)
})

test('choice: the route\'s interface, stable before temporary before deprecated, tentative dropped', () => {
  const interfaces = {
    lo: [{ ...v6('::1', 128), internal: true }],
    eth0: [v6('2001:db8:9::5')],
    wlan0: [
      v6('fe80::1:2', 64, 3), v6('fd12:3456::7'), v6('2001:db8:1:0:1111:1111:aaaa:aaaa'),
      v6('2001:db8:1:0:1234:5678:abcd:ef01'), v6('2001:db8:1::10'), v6('2001:db8:1::20'),
      { address: '192.168.1.5', netmask: '255.255.255.0', family: 'IPv4' as const, mac: '', internal: false, cidr: '192.168.1.5/24' }
    ]
  }
  const flags = parseProcNetIfInet6([
    '20010db8000100000000000000000010 03 40 00 80 wlan0',
    '20010db80001000012345678abcdef01 03 40 00 01 wlan0',
    '20010db80001000011111111aaaaaaaa 03 40 00 21 wlan0',
    '20010db8000100000000000000000020 03 40 00 40 wlan0'
  ].join('\n'))
  const chosen = chooseIpv6Addresses(interfaces, { gateway: 'fe80::1', interface: 'wlan0', scoped: 'fe80::1%wlan0' }, flags)
  assert.deepEqual(chosen.map((a) => [a.address, a.temporary, a.deprecated]), [
    ['2001:db8:1::10', false, false],
    ['2001:db8:1:0:1234:5678:abcd:ef01', true, false],
    ['2001:db8:1:0:1111:1111:aaaa:aaaa', true, true]
  ])
  assert.ok(chosen.every((a) => a.interface === 'wlan0' && a.prefixLength === 64))
})

test('choice: without flags the OS did not tell; a Windows index matches the link-local scope id; no route: every interface', () => {
  const interfaces = { Ethernet: [v6('fe80::5', 64, 7), v6('2001:db8:7::5')], 'Wi-Fi': [v6('fe80::6', 64, 11), v6('2001:db8:11::6')] }
  const windows = chooseIpv6Addresses(interfaces, { gateway: 'fe80::1', interface: '7', scoped: 'fe80::1%7' })
  assert.deepEqual(windows, [{ address: '2001:db8:7::5', interface: 'Ethernet', prefixLength: 64, temporary: undefined, deprecated: undefined }])
  assert.deepEqual(chooseIpv6Addresses(interfaces, undefined).map((a) => a.address), ['2001:db8:7::5', '2001:db8:11::6'])
  assert.deepEqual(chooseIpv6Addresses({ eth0: [v6('fd00::2')] }, { gateway: 'fd00::1', interface: 'eth0', scoped: 'fd00::1' }), [], 'ULA only: nothing to open')
})

const host = (address: string, deprecated?: boolean, temporary?: boolean): HostIpv6Address => ({ address, interface: 'eth0', prefixLength: 64, temporary, deprecated })

test('followIpv6Address: kept while still there and not deprecated; else the preferred one; a lone deprecated one kept; none: undefined', () => {
  const a = '2001:db8::a'
  const b = '2001:db8::b'
  assert.equal(followIpv6Address(a, [host(b), host(a)]), a, 'kept although another is preferred now')
  assert.equal(followIpv6Address('2001:DB8:0::A', [host(a)]), a, 'compared as RFC 5952 text')
  assert.equal(followIpv6Address(a, [host(b), host(a, true)]), b, 'deprecated: moved to the preferred one')
  assert.equal(followIpv6Address(a, [host(b, false, true)]), b, 'removed: moved, to a temporary one if that is all there is')
  assert.equal(followIpv6Address(a, [host(a, true)]), a, 'deprecated but nothing else: stays')
  assert.equal(followIpv6Address(a, [host(b, true)]), b, 'removed, only a deprecated one left: that one')
  assert.equal(followIpv6Address(a, []), undefined)
})
