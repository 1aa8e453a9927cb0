// SSDP over IPv6 on loopback only (::1 and test ports; never real multicast): the HOST header
// names [FF02::C]:1900, an IPv6 gateway's default multicast target is ff02::c out of its zone's
// interface, and discovery finds SimulatedIgd and its firewall service at [::1].
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createSocket, type Socket, type SocketType } from 'node:dgram'
import { EventEmitter } from 'node:events'
import { parseSsdpMessage } from '../../src/upnp/ssdp-codec.js'
import { SsdpSearch, ssdpHostFor } from '../../src/upnp/ssdp.js'
import { discoverIgd } from '../../src/upnp/discovery.js'
import { findFirewallServices, parseDescription } from '../../src/upnp/description.js'
import { sendHttpRequest } from '../../src/upnp/http.js'
import { SimulatedIgd } from '../../src/testing/index.js'

test('ssdpHostFor: none for IPv4, [FF02::C]:1900 for IPv6, [FF05::C]:1900 when the site-local group is searched', () => {
  assert.equal(ssdpHostFor([{ address: '192.168.1.1', port: 1900 }]), undefined)
  assert.equal(ssdpHostFor([{ address: '::1', port: 5000 }]), '[FF02::C]:1900')
  assert.equal(ssdpHostFor([{ address: 'fe80::1%eth0', port: 1900 }, { address: 'ff02::c', port: 1900 }]), '[FF02::C]:1900')
  assert.equal(ssdpHostFor([{ address: 'ff05::c', port: 1900 }]), '[FF05::C]:1900')
})

test('an M-SEARCH to an IPv6 gateway goes out on a udp6 socket, unicast to it with HOST [FF02::C]:1900', async (t) => {
  const gateway = createSocket('udp6')
  t.after(() => { gateway.close() })
  await new Promise<void>((resolve) => gateway.bind(0, '::1', resolve))
  const received = new Promise<Buffer>((resolve) => gateway.once('message', resolve))
  const search = await SsdpSearch.start({ gateway: '::1', gatewayPort: gateway.address().port, multicast: false, schedule: [{ atMs: 0, searchTargets: ['urn:schemas-upnp-org:device:InternetGatewayDevice:1'] }] })
  t.after(() => { search.close() })
  const message = parseSsdpMessage(new Uint8Array(await received))
  assert.ok(message.kind === 'm-search')
  assert.equal(message.headers.get('host'), '[FF02::C]:1900')
  assert.equal(message.headers.get('st'), 'urn:schemas-upnp-org:device:InternetGatewayDevice:1')
})

/** A socket that records what it would send and sends nothing: the multicast default is checked off the wire. */
class RecordingSocket extends EventEmitter {
  readonly sent: Array<{ address: string, port: number }> = []
  multicastInterface: string | undefined
  constructor (readonly type: SocketType) { super() }
  bind (_port: number, _address: string | undefined, cb: () => void): this { setImmediate(cb); return this }
  send (_msg: Uint8Array, port: number, address: string, cb?: (err: Error | null) => void): void { this.sent.push({ address, port }); cb?.(null) }
  setMulticastTTL (): void {}
  setMulticastInterface (name: string): void { this.multicastInterface = name }
  address (): { address: string, port: number, family: string } { return { address: '::', port: 40000, family: 'IPv6' } }
  close (): void {}
}

test('an IPv6 gateway\'s default multicast target is [ff02::c]:1900, sent out of the interface of its zone; an IPv4 gateway keeps 239.255.255.250', async () => {
  for (const [gateway, group, type, multicastInterface] of [
    ['fe80::1%eth7', 'ff02::c', 'udp6', '::%eth7'],
    ['2001:db8:1::1', 'ff02::c', 'udp6', undefined],
    ['192.168.1.1', '239.255.255.250', 'udp4', undefined]
  ] as const) {
    let socket: RecordingSocket | undefined
    const search = await SsdpSearch.start({
      gateway,
      schedule: [{ atMs: 0, searchTargets: ['urn:schemas-upnp-org:device:InternetGatewayDevice:1'] }],
      bindAddress: gateway.includes(':') ? '::' : '0.0.0.0',
      createSocket: (t) => { socket = new RecordingSocket(t); return socket as unknown as Socket }
    })
    search.close()
    assert.equal(socket!.type, type)
    assert.deepEqual(socket!.sent, [{ address: gateway, port: 1900 }, { address: group, port: 1900 }])
    assert.equal(socket!.multicastInterface, multicastInterface)
  }
})

test('discoverIgd over IPv6 on ::1: SimulatedIgd answers the M-SEARCH with LOCATION http://[::1]:port/, its description names WANIPv6FirewallControl:1', async (t) => {
  const igd = await SimulatedIgd.start({ address: '::1' })
  t.after(async () => { await igd.close() })
  assert.equal(igd.descriptionUrl, `http://[::1]:${igd.httpPort}/rootDesc.xml`)
  assert.equal(igd.pinholeControlUrl, `http://[::1]:${igd.httpPort}/ctl/IP6FCtl`)
  const selection = await discoverIgd({ gateway: '::1', ssdpGatewayPort: igd.ssdpUnicastTarget.port, ssdpTarget: false, timeoutMs: 3000 })
  assert.equal(selection.location, igd.descriptionUrl)
  assert.equal(igd.count('ssdp', 'unicast') >= 1, true)
  const xml = (await sendHttpRequest({ method: 'GET', url: selection.location, maxBytes: 65536, timeoutMs: 2000 })).body
  assert.deepEqual(findFirewallServices(parseDescription(xml, selection.location)).map((s) => s.controlURL), [igd.pinholeControlUrl])
})
