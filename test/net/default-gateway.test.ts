import { test } from 'node:test'
import assert from 'node:assert/strict'
import { parseBsdRouteGet, parseProcNetRoute, parseWindowsRoutePrint } from '../../src/net/default-gateway.js'

// /proc/net/route from a Debian host with a Wi-Fi and a wired default route (metrics 600, 100).
const procNetRoute = `Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT
wlan0\t00000000\t0101A8C0\t0003\t0\t0\t600\t00000000\t0\t0\t0
eth0\t00000000\t0100000A\t0003\t0\t0\t100\t00000000\t0\t0\t0
eth0\t0000000A\t00000000\t0001\t0\t0\t100\t00FFFFFF\t0\t0\t0
`

test('Linux: the default route with the lowest metric wins, address in host byte order', () => {
  assert.deepEqual(parseProcNetRoute(procNetRoute), { gateway: '10.0.0.1', interface: 'eth0' })
})

test('Linux: routes without the gateway flag or not default are ignored', () => {
  const text = `Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask
eth0\t0000000A\t00000000\t0001\t0\t0\t100\t00FFFFFF
tun0\t00000000\t00000000\t0001\t0\t0\t50\t00000000
`
  assert.equal(parseProcNetRoute(text), undefined)
  assert.equal(parseProcNetRoute(''), undefined)
})

test('macOS: route -n get default', () => {
  const text = `   route to: default
destination: default
       mask: default
    gateway: 192.168.1.254
  interface: en0
      flags: <UP,GATEWAY,DONE,STATIC,PRCLONING>
`
  assert.deepEqual(parseBsdRouteGet(text), { gateway: '192.168.1.254', interface: 'en0' })
  assert.equal(parseBsdRouteGet('route: writing to routing socket: not in table'), undefined)
})

test('Windows: route print picks the lowest metric', () => {
  const text = `===========================================================================
IPv4 Route Table
===========================================================================
Active Routes:
Network Destination        Netmask          Gateway       Interface  Metric
          0.0.0.0          0.0.0.0      192.168.0.1    192.168.0.23     35
          0.0.0.0          0.0.0.0      192.168.8.1    192.168.8.100    25
===========================================================================
`
  assert.deepEqual(parseWindowsRoutePrint(text), { gateway: '192.168.8.1', interface: '192.168.8.100' })
  assert.equal(parseWindowsRoutePrint('Active Routes:\nNone\n'), undefined)
})

test('Linux: fields split on spaces and tabs alike; a gateway that is not 8 hex digits is skipped', () => {
  const text = 'Iface Destination Gateway Flags RefCnt Use Metric Mask\n' +
    '  eth1   00000000 \t0101A8C0  0003 0 0 5 00000000  \r\n' +
    'eth2\t00000000\t0101A8G0\t0003\t0\t0\t1\t00000000\n' +
    'eth3\t00000000\t\x11\x11\x11\x11\x11\x11\x11\x11\t0003\t0\t0\t1\t00000000\n'
  assert.deepEqual(parseProcNetRoute(text), { gateway: '192.168.1.1', interface: 'eth1' })
})
