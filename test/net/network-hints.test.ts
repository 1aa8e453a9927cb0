import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { parseProcNetRoutes } from '../../src/net/routes.js'
import { noRouterHint, isVpnInterface } from '../../src/net/network-hints.js'
import { findGatewayFor, type HostNetwork } from '../../src/net/host-network.js'
import { NoDefaultGatewayError } from '../../src/errors.js'
import type { InterfaceList } from '../../src/net/local-interface.js'
import { ipv4 } from '../helpers/net.js'

const fixtures = new URL('../../../test/fixtures/routes/', import.meta.url)
const routes = (name: string): ReturnType<typeof parseProcNetRoutes> => parseProcNetRoutes(readFileSync(new URL(`${name}.proc-net-route`, fixtures), 'latin1'))

const lo = { lo: [ipv4('127.0.0.1', 8, true)] }
const laptop: InterfaceList = { ...lo, eth0: [ipv4('192.168.1.20', 24)], docker0: [ipv4('172.18.0.1', 16)] }

test('fixtures parse: the Docker bridge, the WireGuard full tunnel and the OpenVPN def1 split', () => {
  assert.deepEqual(routes('docker-bridge'), [
    { destination: '0.0.0.0', prefixLength: 0, gateway: '172.17.0.1', interface: 'eth0', metric: 0 },
    { destination: '172.17.0.0', prefixLength: 16, gateway: undefined, interface: 'eth0', metric: 0 }
  ])
  const wg = routes('wireguard-full-tunnel')
  assert.deepEqual(wg[0], { destination: '0.0.0.0', prefixLength: 0, gateway: undefined, interface: 'wg0', metric: 0 })
  assert.deepEqual(wg[1], { destination: '203.0.113.5', prefixLength: 32, gateway: '192.168.1.1', interface: 'eth0', metric: 100 })
  const def1 = routes('openvpn-def1')
  assert.deepEqual(def1.slice(1, 3).map((r) => `${r.destination}/${r.prefixLength} via ${r.gateway ?? '-'} dev ${r.interface ?? '-'}`),
    ['0.0.0.0/1 via 10.8.0.1 dev tun0', '128.0.0.0/1 via 10.8.0.1 dev tun0'])
})

test('Docker: a container on a bridge (the gateway 172.17.0.1 on 172.17/16, or /.dockerenv and a gateway in 172.16/12) is told to use host networking', () => {
  const container = { ...lo, eth0: [ipv4('172.17.0.2', 16)] }
  const byNetwork = noRouterHint({ routes: routes('docker-bridge'), interfaces: container, inDocker: false }, { gateway: '172.17.0.1', interface: 'eth0' })
  assert.match(byNetwork ?? '', /Docker container \(this host is on 172\.17\.0\.0\/16\): the gateway 172\.17\.0\.1 is the Docker host, not your router/)
  assert.match(byNetwork ?? '', /--network host/)
  // A user-defined bridge (172.18/16 here) is recognised by /.dockerenv alone.
  const byFile = noRouterHint({ routes: [], interfaces: { ...lo, eth0: [ipv4('172.18.0.5', 16)] }, inDocker: true }, { gateway: '172.18.0.1' })
  assert.match(byFile ?? '', /Docker container \(\/\.dockerenv exists\)/)
  // /.dockerenv with host networking (the real router's gateway), or with no default route: nothing said of Docker.
  assert.equal(noRouterHint({ routes: [], interfaces: laptop, inDocker: true }, { gateway: '192.168.1.1', interface: 'eth0' }), undefined)
  assert.equal(noRouterHint({ routes: [], interfaces: laptop, inDocker: true }), undefined)
  // The host itself, with docker0 at 172.18.0.1 and a real router: nothing to say.
  assert.equal(noRouterHint({ routes: routes('openvpn-def1').slice(0, 1), interfaces: laptop, inDocker: false }, { gateway: '192.168.1.1', interface: 'eth0' }), undefined)
})

test('WireGuard full tunnel: no default route with a gateway; the hint names wg0 and the LAN interface to choose', async () => {
  const interfaces = { ...laptop, wg0: [ipv4('10.8.0.2', 24)] }
  const network: HostNetwork = { interfaces: () => interfaces, routes: async () => routes('wireguard-full-tunnel'), exists: () => false, platform: 'linux' }
  const err = await findGatewayFor(network, undefined).then(() => undefined, (e: unknown) => e)
  assert.ok(err instanceof NoDefaultGatewayError)
  assert.match(err.hint ?? '', /^The default route goes straight into wg0, a VPN tunnel with no router on it; choose your LAN interface with --interface eth0/)
  assert.ok(err.message.endsWith(err.hint!), 'the hint is in the message')
})

test('OpenVPN def1: the 0.0.0.0/1 + 128.0.0.0/1 split is named; a replaced default route names tun0 as the VPN\'s end', () => {
  const interfaces = { ...laptop, tun0: [ipv4('10.8.0.2', 24)] }
  const split = noRouterHint({ routes: routes('openvpn-def1'), interfaces, inDocker: false }, { gateway: '192.168.1.1', interface: 'eth0' })
  assert.match(split ?? '', /A VPN on tun0 takes all traffic \(routes 0\.0\.0\.0\/1 and 128\.0\.0\.0\/1/)
  assert.match(split ?? '', /--interface eth0/)
  const replaced = noRouterHint({ routes: routes('openvpn-default'), interfaces, inDocker: false }, { gateway: '10.8.0.1', interface: 'tun0' })
  assert.match(replaced ?? '', /^The default route goes through tun0, a VPN tunnel: 10\.8\.0\.1 is the VPN's end of it/)
  // docker0 is never suggested as the LAN, nor the tunnel itself.
  assert.doesNotMatch(replaced ?? '', /--interface (docker0|tun0)/)
})

test('VPN interface names: tun, tap, wg, tailscale, utun, ppp; not eth, en, wlan', () => {
  for (const name of ['tun0', 'tap1', 'wg0', 'tailscale0', 'utun3', 'ppp0']) assert.equal(isVpnInterface(name), true, name)
  for (const name of ['eth0', 'en0', 'wlan0', 'enp3s0', undefined]) assert.equal(isVpnInterface(name), false, String(name))
})
