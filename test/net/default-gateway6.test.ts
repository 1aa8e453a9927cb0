import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { parseBsdRouteGet6, parseProcNetIpv6Route, parseWindowsRoutePrint6 } from '../../src/net/default-gateway6.js'

const fixtures = new URL('../../../test/fixtures/routes/', import.meta.url)
const fixture = (name: string): string => readFileSync(new URL(name, fixtures), 'utf8').split(/\r?\n/).filter((l) => !l.startsWith('# ')).join('\n')

test('Linux: a container with a global next hop; the kernel\'s unreachable ::/0 on lo is no route', () => {
  assert.deepEqual(parseProcNetIpv6Route(fixture('linux-container-ipv6_route.txt')), { gateway: 'fd00::1', interface: 'eth0', scoped: 'fd00::1' })
})

test('Linux: a link-local next hop gets its device as zone; the lowest metric wins', () => {
  assert.deepEqual(parseProcNetIpv6Route(fixture('linux-laptop-ipv6_route.txt')),
    { gateway: 'fe80::211:22ff:fe33:4455', interface: 'eth0', scoped: 'fe80::211:22ff:fe33:4455%eth0' })
})

test('Linux: no default route, a route without RTF_GATEWAY, garbage', () => {
  const noGateway = '00000000000000000000000000000000 00 00000000000000000000000000000000 00 00000000000000000000000000000000 00000400 00000001 00000000 00000001 tun0\n'
  assert.equal(parseProcNetIpv6Route(noGateway), undefined)
  const notDefault = '20010db8000000000000000000000000 20 00000000000000000000000000000000 00 fe800000000000000000000000000001 00000400 00000001 00000000 00000003 eth0\n'
  assert.equal(parseProcNetIpv6Route(notDefault), undefined)
  assert.equal(parseProcNetIpv6Route(''), undefined)
  assert.equal(parseProcNetIpv6Route('0000 00 zz\n'), undefined)
  const badHop = '00000000000000000000000000000000 00 00000000000000000000000000000000 00 fe80000000000000000000000000000g 00000400 00000001 00000000 00000003 eth0\n'
  assert.equal(parseProcNetIpv6Route(badHop), undefined)
})

test('macOS: route -n get -inet6 default with a zoned link-local gateway', () => {
  assert.deepEqual(parseBsdRouteGet6(fixture('macos-route-get-inet6.txt')),
    { gateway: 'fe80::1c2b:3dff:fe4e:5f60', interface: 'en0', scoped: 'fe80::1c2b:3dff:fe4e:5f60%en0' })
})

test('FreeBSD: a global gateway needs no zone', () => {
  assert.deepEqual(parseBsdRouteGet6(fixture('freebsd-route-get-inet6.txt')), { gateway: '2001:db8:ffff::1', interface: 'em0', scoped: '2001:db8:ffff::1' })
})

test('BSD: no route, and a link-local gateway without zone takes the interface line', () => {
  assert.equal(parseBsdRouteGet6('route: writing to routing socket: not in table\n'), undefined)
  assert.deepEqual(parseBsdRouteGet6('    gateway: fe80::1\n  interface: en1\n'), { gateway: 'fe80::1', interface: 'en1', scoped: 'fe80::1%en1' })
  assert.equal(parseBsdRouteGet6('    gateway: fe80::1\n'), undefined, 'link-local without an interface is unreachable')
  assert.equal(parseBsdRouteGet6('    gateway: link#4\n  interface: en0\n'), undefined)
})

test('Windows: route print -6 picks the lowest metric, the interface index as zone; persistent routes are not active', () => {
  assert.deepEqual(parseWindowsRoutePrint6(fixture('windows-route-print-6.txt')),
    { gateway: 'fe80::211:22ff:fe33:4455', interface: '7', scoped: 'fe80::211:22ff:fe33:4455%7' })
  assert.equal(parseWindowsRoutePrint6('Active Routes:\r\n  None\r\n'), undefined)
})

test('Windows: a row wrapped onto the next line', () => {
  const text = 'Active Routes:\r\n If Metric Network Destination      Gateway\r\n 12    281 ::/0\r\n                                    fe80::1\r\n'
  assert.deepEqual(parseWindowsRoutePrint6(text), { gateway: 'fe80::1', interface: '12', scoped: 'fe80::1%12' })
})
