import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createSocket } from 'node:dgram'
import { NatmapperError, NoResponseError, RemoteProtocolError, TimeoutError, UnsafeUrlError } from '../../src/errors.js'
import { SimulatedIgd } from '../../src/testing/igd.js'
import { discoverIgd, type UpnpDiscoverOptions } from '../../src/upnp/discovery.js'
import { MAX_ANSWERS, MAX_ANSWERS_PER_HOST } from '../../src/upnp/ssdp.js'
import { waitFor } from '../helpers/wait.js'
import {
  afterRequest, drip, endless, entityBomb, EXTRA_LOOPBACK, GATEWAY, httpResponse, LAN_INTERFACES, NEIGHBOUR, OUTSIDE,
  rawAnswer, settle, startResponder, startTcp, type Responder
} from './lan.js'

/**
 * SSDP answers from a hostile LAN: LOCATIONs that point outside the local network, at an entity
 * bomb, at a server that drips one byte every half second, at an endless body, malformed URLs and
 * other schemes, and floods of answers. Every case must end with a typed error within its
 * timeout, connect nowhere but the gateway (or the on-LAN host that answered), and do bounded
 * work. All on loopback: the gateway is 127.0.0.1, the LAN 127.0.0.0/24 (see lan.ts).
 */

const TIMEOUT_MS = 1500
/** How late after its timeout a discovery may end (timers, teardown, a busy test machine). */
const SLACK_MS = 700
const needsLoopback = { skip: EXTRA_LOOPBACK ? false : 'needs 127.0.0.0/8 on loopback (Linux)' }

function options (responder: Responder, extra: UpnpDiscoverOptions = {}): UpnpDiscoverOptions {
  return {
    gateway: GATEWAY,
    ssdpGatewayPort: responder.port,
    ssdpTarget: false,
    timeoutMs: TIMEOUT_MS,
    settleMs: 50,
    interfaces: LAN_INTERFACES,
    ...extra
  }
}

/** Runs a discovery that must fail: a NatmapperError, within the timeout. */
async function mustFail (responder: Responder, extra: UpnpDiscoverOptions = {}): Promise<{ error: NatmapperError, ms: number }> {
  const { error, ms } = await settle(discoverIgd(options(responder, extra)))
  assert.ok(error instanceof NatmapperError, `a typed error, not ${String(error)}`)
  assert.ok(ms < (extra.timeoutMs ?? TIMEOUT_MS) + SLACK_MS, `ended after ${Math.round(ms)} ms`)
  return { error, ms }
}

test('a LOCATION outside the local network is never connected to: re-pointed at the host that answered', needsLoopback, async (ctx) => {
  const trap = await startTcp(ctx, OUTSIDE)
  const neighbour = await startTcp(ctx, NEIGHBOUR)
  const responder = await startResponder(ctx)
  responder.answer = () => [
    rawAnswer(`http://${OUTSIDE}:${trap.port}/rootDesc.xml`),
    rawAnswer(`http://${NEIGHBOUR}:${neighbour.port}/rootDesc.xml`),
    rawAnswer(`http://169.254.169.254:${trap.port}/latest/meta-data/`)
  ]
  const { error } = await mustFail(responder)
  // Re-pointed at 127.0.0.1 on the trap's port, where nothing listens.
  assert.ok(error instanceof NoResponseError, String(error))
  assert.match(error.message, new RegExp(`${GATEWAY}:${trap.port}`))
  assert.equal(trap.connections, 0, 'the outside host was never contacted')
  assert.equal(neighbour.connections, 0, 'nor another host of the LAN')
})

test('control URLs and a URLBase outside the local network are refused before any connection', needsLoopback, async (ctx) => {
  const trap = await startTcp(ctx, OUTSIDE)
  const description = (urlBase: string, controlURL: string): string => `<?xml version="1.0"?>
<root xmlns="urn:schemas-upnp-org:device-1-0"><URLBase>${urlBase}</URLBase><device><deviceType>urn:schemas-upnp-org:device:InternetGatewayDevice:1</deviceType>
<deviceList><device><deviceType>urn:schemas-upnp-org:device:WANDevice:1</deviceType><deviceList><device><deviceType>urn:schemas-upnp-org:device:WANConnectionDevice:1</deviceType>
<serviceList><service><serviceType>urn:schemas-upnp-org:service:WANIPConnection:1</serviceType><serviceId>urn:upnp-org:serviceId:WANIPConn1</serviceId>
<controlURL>${controlURL}</controlURL><eventSubURL>/e</eventSubURL><SCPDURL>/s.xml</SCPDURL></service></serviceList></device></deviceList></device></deviceList></device></root>`
  for (const [urlBase, controlURL] of [
    ['', `http://${OUTSIDE}:${trap.port}/ctl`],
    [`http://${OUTSIDE}:${trap.port}/`, 'ctl'],
    ['', `http://user:pw@${GATEWAY}:${trap.port}/ctl`],
    ['', `https://${GATEWAY}:${trap.port}/ctl`]
  ] as const) {
    const server = await startTcp(ctx, GATEWAY, (socket) => { afterRequest(socket, () => { socket.end(httpResponse(description(urlBase, controlURL))) }) })
    const responder = await startResponder(ctx)
    responder.answer = () => [rawAnswer(`http://${GATEWAY}:${server.port}/rootDesc.xml`)]
    const { error } = await mustFail(responder)
    assert.ok(error instanceof UnsafeUrlError || error instanceof RemoteProtocolError, `${urlBase} ${controlURL}: ${String(error)}`)
    assert.equal(server.connections, 1, 'only the description was fetched')
  }
  assert.equal(trap.connections, 0)
})

test('SSDP answers from a host outside the local network are not believed at all', needsLoopback, async (ctx) => {
  const trap = await startTcp(ctx, OUTSIDE)
  const gateway = await startResponder(ctx)
  const outsider = await startResponder(ctx, OUTSIDE)
  gateway.answer = ({ from }) => {
    // The outsider answers the search, from its own address.
    outsider.send(rawAnswer(`http://${OUTSIDE}:${trap.port}/rootDesc.xml`), from.port, from.address)
    return []
  }
  const { error } = await mustFail(gateway)
  assert.ok(error instanceof TimeoutError, String(error))
  assert.equal(trap.connections, 0)
})

test('an entity-expansion bomb as the description: RemoteProtocolError at once, nothing expanded', async (ctx) => {
  const bomb = await startTcp(ctx, GATEWAY, (socket) => { afterRequest(socket, () => { socket.end(httpResponse(entityBomb())) }) })
  const responder = await startResponder(ctx)
  responder.answer = () => [rawAnswer(`http://${GATEWAY}:${bomb.port}/rootDesc.xml`)]
  const heapBefore = process.memoryUsage().heapUsed
  const { error, ms } = await mustFail(responder)
  assert.ok(error instanceof RemoteProtocolError, String(error))
  assert.match(error.message, /undefined entity/)
  assert.ok(ms < 1000, `${Math.round(ms)} ms: refused long before the timeout`)
  assert.ok(process.memoryUsage().heapUsed - heapBefore < 32 * 1024 * 1024, 'no expansion in memory')
})

test('a server that drips one byte every half second: cut off by the time cap, its connection closed', async (ctx) => {
  const dripping = await startTcp(ctx, GATEWAY, (socket) => { afterRequest(socket, () => { drip(socket, httpResponse(entityBomb()), 500) }) })
  const responder = await startResponder(ctx)
  responder.answer = () => [rawAnswer(`http://${GATEWAY}:${dripping.port}/rootDesc.xml`)]
  // Within the discovery's own deadline.
  const whole = await mustFail(responder)
  assert.ok(whole.error instanceof TimeoutError, String(whole.error))
  assert.ok(whole.ms >= TIMEOUT_MS - 50, 'it was the deadline that ended it')
  await waitFor(() => dripping.open === 0, 'the dripping connection closed by natmapper', 1000)
  // With a shorter cap per exchange: the fetch itself times out, and discovery says so early.
  const capped = await mustFail(responder, { requestTimeoutMs: 600 })
  assert.ok(capped.error instanceof TimeoutError, String(capped.error))
  assert.match(capped.error.message, /no complete answer within 600 ms/)
  assert.ok(capped.ms < TIMEOUT_MS, `${Math.round(capped.ms)} ms`)
  await waitFor(() => dripping.open === 0, 'closed again', 1000)
})

test('an endless body, an endless chunked body, an absurd Content-Length, endless headers: RemoteProtocolError, quickly', async (ctx) => {
  const shapes: Record<string, (socket: import('node:net').Socket) => void> = {
    'close-delimited body': (socket) => { endless(socket, 'HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\nConnection: close\r\n\r\n<root>', '<a>x</a>') },
    'chunked body': (socket) => { endless(socket, 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n', '8\r\n<a>x</a>\r\n') },
    'Content-Length of 10 GB': (socket) => { endless(socket, 'HTTP/1.1 200 OK\r\nContent-Length: 10000000000\r\n\r\n', 'x') },
    headers: (socket) => { endless(socket, 'HTTP/1.1 200 OK\r\n', 'X-Junk: yes\r\n') }
  }
  for (const [label, behave] of Object.entries(shapes)) {
    const server = await startTcp(ctx, GATEWAY, (socket) => { afterRequest(socket, () => { behave(socket) }) })
    const responder = await startResponder(ctx)
    responder.answer = () => [rawAnswer(`http://${GATEWAY}:${server.port}/rootDesc.xml`)]
    const heapBefore = process.memoryUsage().heapUsed
    const { error, ms } = await mustFail(responder)
    assert.ok(error instanceof RemoteProtocolError, `${label}: ${String(error)}`)
    assert.ok(ms < 1000, `${label}: ${Math.round(ms)} ms`)
    assert.ok(process.memoryUsage().heapUsed - heapBefore < 32 * 1024 * 1024, `${label}: bounded memory`)
    await waitFor(() => server.open === 0, `${label}: connection closed`, 1000)
  }
})

test('malformed LOCATIONs and other schemes: refused unread or by the guard, never connected, a typed error in time', needsLoopback, async (ctx) => {
  const trap = await startTcp(ctx, OUTSIDE)
  const onGateway = await startTcp(ctx, GATEWAY)
  const locations = [
    `https://${GATEWAY}:${onGateway.port}/rootDesc.xml`,
    `ftp://${OUTSIDE}:${trap.port}/rootDesc.xml`,
    'file:///etc/passwd',
    `gopher://${OUTSIDE}:${trap.port}/`,
    `ws://${GATEWAY}:${onGateway.port}/`,
    'javascript:alert(1)',
    'data:text/xml,<root/>',
    `http://user:secret@${GATEWAY}:${onGateway.port}/rootDesc.xml`,
    `http://${GATEWAY}:0/rootDesc.xml`,
    `http://${GATEWAY}:99999/rootDesc.xml`,
    'http://[::1',
    'http://',
    '/rootDesc.xml',
    'rootDesc.xml',
    `http://${OUTSIDE}:${trap.port}\\@${GATEWAY}/`,
    `http://${GATEWAY}:${onGateway.port}@${OUTSIDE}:${trap.port}/`,
    `http://${'a'.repeat(3000)}:${trap.port}/`,
    `http://${OUTSIDE}:${trap.port}/${'%'.repeat(2000)}`
  ]
  for (const location of locations) {
    const responder = await startResponder(ctx)
    responder.answer = () => [rawAnswer(location)]
    const { error } = await mustFail(responder, { timeoutMs: 500 })
    assert.ok(error instanceof TimeoutError || error instanceof UnsafeUrlError || error instanceof NoResponseError || error instanceof RemoteProtocolError,
      `${location.slice(0, 60)}: ${String(error)}`)
  }
  assert.equal(trap.connections, 0, 'the outside host was never contacted')
  assert.equal(onGateway.connections, 0, 'nor the gateway, by another scheme or with credentials')
})

test(`a flood of distinct answers from the gateway: at most ${MAX_ANSWERS_PER_HOST} descriptions fetched, bounded memory, a typed error in time`, async (ctx) => {
  const stalling = await startTcp(ctx, GATEWAY)
  const responder = await startResponder(ctx)
  responder.answer = () => Array.from({ length: 5000 }, (_, i) => rawAnswer(`http://${GATEWAY}:${stalling.port}/d${i}.xml`))
  const heapBefore = process.memoryUsage().heapUsed
  const { error } = await mustFail(responder, { requestTimeoutMs: 300 })
  assert.ok(error instanceof TimeoutError, String(error))
  assert.ok(responder.searches >= 1, 'answered the search (one IGD type: the later bursts are skipped once an IGD answered)')
  assert.ok(stalling.connections <= MAX_ANSWERS_PER_HOST, `${stalling.connections} fetches`)
  const grownMiB = (process.memoryUsage().heapUsed - heapBefore) / 1024 / 1024
  ctx.diagnostic(`${responder.searches} searches answered with 5000 answers each; ${stalling.connections} fetches; heap +${grownMiB.toFixed(1)} MiB`)
  assert.ok(grownMiB < 64, `heap grew ${grownMiB.toFixed(1)} MiB`)
})

test('a flood of one answer repeated: one fetch', async (ctx) => {
  const stalling = await startTcp(ctx, GATEWAY)
  const responder = await startResponder(ctx)
  const answer = rawAnswer(`http://${GATEWAY}:${stalling.port}/rootDesc.xml`)
  responder.answer = () => Array.from({ length: 3000 }, () => answer)
  await mustFail(responder, { requestTimeoutMs: 300 })
  assert.equal(stalling.connections, 1)
})

test('a flood from many LAN hosts (spoofed sources) is capped, and the real gateway is still found first', needsLoopback, async (ctx) => {
  const igd = await SimulatedIgd.start({ externalAddress: '11.22.33.44' })
  ctx.after(async () => { await igd.close() })
  // The "multicast" search reaches a listener that sets 40 hosts of the LAN flooding.
  const hosts = await Promise.all(Array.from({ length: 40 }, async (_, i) => {
    const address = `127.0.0.${i + 100}`
    return { responder: await startResponder(ctx, address), server: await startTcp(ctx, address) }
  }))
  const group = await startResponder(ctx, '127.0.0.250')
  group.answer = ({ from }) => {
    for (const { responder, server } of hosts) {
      for (let i = 0; i < 20; i++) responder.send(rawAnswer(`http://${responder.address}:${server.port}/d${i}.xml`), from.port, from.address)
    }
    return []
  }
  const selection = await discoverIgd({
    gateway: GATEWAY,
    ssdpGatewayPort: igd.ssdpUnicastTarget.port,
    ssdpTarget: { address: group.address, port: group.port },
    timeoutMs: 3000,
    settleMs: 50,
    requestTimeoutMs: 300,
    interfaces: LAN_INTERFACES
  })
  assert.equal(selection.responder.address, GATEWAY)
  const fetched = hosts.reduce((n, h) => n + h.server.connections, 0)
  assert.ok(fetched <= MAX_ANSWERS, `${fetched} fetches from the flood`)
})

test('a flood of garbage datagrams: discovery still ends in time, with a typed error', async (ctx) => {
  const responder = await startResponder(ctx)
  const junk = Buffer.alloc(1400, 0x41)
  const spray = createSocket('udp4')
  ctx.after(() => { spray.close() })
  responder.answer = ({ from }) => {
    for (let i = 0; i < 20_000; i++) spray.send(junk, from.port, from.address)
    return Array.from({ length: 500 }, () => Buffer.from('HTTP/1.1 200 OK\r\nLOCATION: \u0000\r\n\r\n'))
  }
  const { error } = await mustFail(responder)
  assert.ok(error instanceof TimeoutError, String(error))
})
