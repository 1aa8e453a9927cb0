import { test } from 'node:test'
import assert from 'node:assert/strict'
import { bestDefaultRoute, parseBsdRouteGetRoutes, parseProcNetRoutes, parseWindowsRoutes } from '../../src/net/routes.js'

const twoDefaults = `Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT
wlan0\t00000000\t0101A8C0\t0003\t0\t0\t600\t00000000\t0\t0\t0
eth0\t00000000\t0100000A\t0003\t0\t0\t100\t00000000\t0\t0\t0
eth0\t0000000A\t00000000\t0001\t0\t0\t100\t00FFFFFF\t0\t0\t0
eth1\t00000000\t0200000A\t0002\t0\t0\t1\t00000000\t0\t0\t0
`

test('Linux: every route that is up, with its prefix; the best default route overall and per interface', () => {
  const routes = parseProcNetRoutes(twoDefaults)
  assert.equal(routes.length, 3, 'the route that is not up (flags 0002) is left out')
  assert.deepEqual(routes[2], { destination: '10.0.0.0', prefixLength: 24, gateway: undefined, interface: 'eth0', metric: 100 })
  assert.equal(bestDefaultRoute(routes)?.gateway, '10.0.0.1')
  assert.equal(bestDefaultRoute(routes, ['wlan0'])?.gateway, '192.168.1.1')
  assert.equal(bestDefaultRoute(routes, ['eth1']), undefined)
  // A mask with holes is no prefix: the line is not a route.
  assert.deepEqual(parseProcNetRoutes('h\neth0\t00000000\t0101A8C0\t0003\t0\t0\t0\t00FF00FF\n'), [])
})

test('Windows: route print rows, On-link ones without a next hop; interfaces are addresses', () => {
  const text = `IPv4 Route Table
Active Routes:
Network Destination        Netmask          Gateway       Interface  Metric
          0.0.0.0          0.0.0.0      192.168.0.1    192.168.0.23     35
          0.0.0.0          0.0.0.0      192.168.8.1    192.168.8.100    25
      192.168.0.0    255.255.255.0         On-link     192.168.0.23    291
`
  const routes = parseWindowsRoutes(text)
  assert.equal(routes.length, 3)
  assert.equal(routes[2]?.gateway, undefined)
  assert.equal(bestDefaultRoute(routes, ['Ethernet', '192.168.0.23'])?.gateway, '192.168.0.1')
})

test('macOS/BSD: route -n get default is one default route', () => {
  assert.deepEqual(parseBsdRouteGetRoutes('    gateway: 192.168.1.254\n  interface: en0\n'), [{ destination: '0.0.0.0', prefixLength: 0, gateway: '192.168.1.254', interface: 'en0', metric: 0 }])
  assert.deepEqual(parseBsdRouteGetRoutes('route: writing to routing socket: not in table'), [])
})
