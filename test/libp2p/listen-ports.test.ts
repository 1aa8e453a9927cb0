import { test } from 'node:test'
import assert from 'node:assert/strict'
import { parseListenAddress, portsToMap } from '../../src/libp2p/listen-ports.js'

test('parseListenAddress: the directly dialable IPv4 TCP and UDP transports, nothing else', () => {
  const table: Array<[string, ReturnType<typeof parseListenAddress>]> = [
    ['/ip4/192.168.1.5/tcp/4001', { host: '192.168.1.5', protocol: 'tcp', port: 4001 }],
    ['/ip4/192.168.1.5/tcp/4002/ws', { host: '192.168.1.5', protocol: 'tcp', port: 4002 }],
    ['/ip4/192.168.1.5/tcp/4003/tls/ws/p2p/12D3KooW', { host: '192.168.1.5', protocol: 'tcp', port: 4003 }],
    ['/ip4/192.168.1.5/udp/4004/quic-v1', { host: '192.168.1.5', protocol: 'udp', port: 4004 }],
    ['/ip4/192.168.1.5/udp/4005/quic-v1/webtransport/certhash/uEi', { host: '192.168.1.5', protocol: 'udp', port: 4005 }],
    ['/ip4/192.168.1.5/udp/4006/webrtc-direct/certhash/uEi', { host: '192.168.1.5', protocol: 'udp', port: 4006 }],
    ['/ip4/192.168.1.5/udp/4007', undefined], // no libp2p transport is plain UDP
    ['/ip4/192.168.1.5/tcp/0', undefined],
    ['/ip4/192.168.1.5/tcp/65536', undefined],
    ['/ip4/1.2.3.4/tcp/4001/p2p/QmRelay/p2p-circuit', undefined],
    ['/ip6/fd00::5/tcp/4001', undefined], // IPv6 is not mapped yet
    ['/dns4/example.com/tcp/443/wss', undefined],
    ['/unix/tmp%2Fsock', undefined],
    ['', undefined]
  ]
  for (const [address, expected] of table) assert.deepEqual(parseListenAddress(address), expected, address)
})

test('portsToMap: only the addresses on the host\'s address towards the gateway, once per protocol and port', () => {
  const addresses = [
    '/ip4/127.0.0.1/tcp/4001', '/ip4/192.168.1.5/tcp/4001', '/ip4/10.8.0.2/tcp/4001', // a wildcard listener
    '/ip4/192.168.1.5/tcp/4001/ws', // the same port again
    '/ip4/10.8.0.2/tcp/5000', // bound to another interface: the router would forward where nothing listens
    '/ip4/192.168.1.5/udp/4001/quic-v1'
  ]
  assert.deepEqual(portsToMap(addresses, '192.168.1.5'), [
    { host: '192.168.1.5', protocol: 'tcp', port: 4001 },
    { host: '192.168.1.5', protocol: 'udp', port: 4001 }
  ])
  assert.deepEqual(portsToMap(addresses, '127.0.0.1'), [{ host: '127.0.0.1', protocol: 'tcp', port: 4001 }], 'loopback only for a gateway on loopback')
})
