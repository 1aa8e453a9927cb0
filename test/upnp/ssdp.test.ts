import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createSocket, type Socket, type SocketType } from 'node:dgram'
import { AbortError, TimeoutError } from '../../src/errors.js'
import { FakeClock } from '../../src/testing/fake-clock.js'
import { findIgd, IGD_SEARCH_TARGETS, isIgdAnswer, SsdpSearch, type SsdpAnswer } from '../../src/upnp/ssdp.js'
import { SsdpListener, type SsdpRestart, type SsdpNotification } from '../../src/upnp/ssdp-listener.js'
import { parseSsdpMessage, type SsdpSearchResponse } from '../../src/upnp/ssdp-codec.js'
import { encodeMSearch, encodeNotify, encodeSsdpResponse } from '../../src/upnp/ssdp-encode.js'
import { waitFor } from '../helpers/wait.js'
import { startIgd } from './setup.js'

/** A socket factory that records every datagram sent, in order, with its destination. */
function recordingSockets (): { createSocket: (type: SocketType) => Socket, sent: Array<{ address: string, port: number, text: string }> } {
  const sent: Array<{ address: string, port: number, text: string }> = []
  return {
    sent,
    createSocket: (type) => {
      const socket = createSocket(type)
      const send = socket.send.bind(socket) as (msg: Uint8Array, port: number, address: string, cb?: (err: Error | null) => void) => void
      ;(socket as unknown as { send: typeof send }).send = (msg, port, address, cb) => {
        sent.push({ address, port, text: Buffer.from(msg).toString() })
        send(msg, port, address, cb)
      }
      return socket
    }
  }
}

test('M-SEARCH: unicast to the gateway first, then the multicast target; IGD:1 at once, the other types 200 ms later; MX 1; from an ephemeral port', async (ctx) => {
  const igd = await startIgd(ctx)
  igd.quirks.silentSsdp = true
  const clock = new FakeClock()
  const rec = recordingSockets()
  const search = await SsdpSearch.start({
    gateway: igd.address, gatewayPort: igd.ssdpUnicastTarget.port, multicast: igd.ssdpMulticastTarget, createSocket: rec.createSocket, clock
  })
  ctx.after(() => { search.close() })
  assert.notEqual(search.port, 1900)
  assert.deepEqual(IGD_SEARCH_TARGETS, [
    'urn:schemas-upnp-org:device:InternetGatewayDevice:2', 'urn:schemas-upnp-org:device:InternetGatewayDevice:1',
    'urn:schemas-upnp-org:service:WANIPConnection:2', 'urn:schemas-upnp-org:service:WANIPConnection:1',
    'urn:schemas-upnp-org:service:WANPPPConnection:1'
  ])
  const burst = (targets: readonly string[]): Array<{ address: string, port: number, text: string }> =>
    [igd.ssdpUnicastTarget, igd.ssdpMulticastTarget].flatMap((target) =>
      targets.map((st) => ({ ...target, text: Buffer.from(encodeMSearch({ searchTarget: st, mx: 1 })).toString() })))
  const igd1 = 'urn:schemas-upnp-org:device:InternetGatewayDevice:1'
  assert.deepEqual(rec.sent, burst([igd1]))
  assert.match(rec.sent[0]!.text, /\r\nMX: 1\r\n/)
  await clock.advance(199)
  assert.equal(rec.sent.length, 2)
  await clock.advance(1)
  assert.deepEqual(rec.sent.slice(2), burst(IGD_SEARCH_TARGETS.filter((st) => st !== igd1)))
  await clock.advance(800)
  assert.deepEqual(rec.sent.slice(10), burst(IGD_SEARCH_TARGETS), 'everything again at 1 s')
  await clock.advance(2000)
  assert.deepEqual(rec.sent.slice(20), burst(IGD_SEARCH_TARGETS), 'and at 3 s')
  await clock.advance(60_000)
  assert.equal(rec.sent.length, 30)
  await waitFor(() => igd.count('ssdp') === 30, 'the IGD to see all thirty searches')
})

test('once an IGD has answered, the later bursts are not sent', async (ctx) => {
  const igd = await startIgd(ctx)
  const clock = new FakeClock()
  const search = await SsdpSearch.start({ gateway: igd.address, gatewayPort: igd.ssdpUnicastTarget.port, multicast: igd.ssdpMulticastTarget, clock })
  ctx.after(() => { search.close() })
  await waitFor(() => search.received === 2, 'two answers')
  await clock.advance(10_000)
  assert.equal(igd.count('ssdp'), 2)
})

test('one answer per LOCATION, though the IGD answers every search on both sockets', async (ctx) => {
  const igd = await startIgd(ctx)
  const search = await SsdpSearch.start({ gateway: igd.address, gatewayPort: igd.ssdpUnicastTarget.port, multicast: igd.ssdpMulticastTarget, schedule: [{ atMs: 0, searchTargets: IGD_SEARCH_TARGETS }] })
  ctx.after(() => { search.close() })
  const answers: SsdpAnswer[] = []
  search.on('answer', (a) => answers.push(a))
  // IGD:2, IGD:1, WANIPConnection:2 and :1 match (miniupnpd matches any version); WANPPPConnection does not.
  // Each reply is counted and reported (or dropped) in the same turn: nothing more is to come.
  await waitFor(() => search.received === 8, 'eight replies')
  assert.equal(answers.length, 1)
  assert.equal(answers[0]!.response.location, igd.descriptionUrl)
  assert.equal(answers[0]!.response.st, 'urn:schemas-upnp-org:device:InternetGatewayDevice:2')
  assert.equal(answers[0]!.response.bootId, 1)
})

test('one answer per USN too: the same device and type at a second LOCATION is not fetched twice', async (ctx) => {
  const responder = createSocket('udp4')
  await new Promise<void>((resolve) => { responder.bind(0, '127.0.0.1', resolve) })
  ctx.after(() => { responder.close() })
  const st = 'urn:schemas-upnp-org:device:InternetGatewayDevice:2'
  responder.on('message', (_m, rinfo) => {
    for (const [location, usn] of [['http://127.0.0.1:5000/rootDesc.xml', 'uuid:a::x'], ['http://127.0.0.2:5000/rootDesc.xml', 'uuid:a::x'], ['http://127.0.0.1:5000/IGDV1/rootDesc.xml', 'uuid:a::y']]) {
      responder.send(encodeSsdpResponse({ location: location!, st, usn: usn!, server: 'x' }), rinfo.port, rinfo.address)
    }
  })
  const search = await SsdpSearch.start({ gateway: '127.0.0.1', gatewayPort: responder.address().port, schedule: [{ atMs: 0, searchTargets: [st] }] })
  ctx.after(() => { search.close() })
  const answers: SsdpAnswer[] = []
  search.on('answer', (a) => answers.push(a))
  await waitFor(() => search.received === 3, 'three replies')
  assert.deepEqual(answers.map((a) => a.response.location), ['http://127.0.0.1:5000/rootDesc.xml', 'http://127.0.0.1:5000/IGDV1/rootDesc.xml'])
})

test('another host repeating the gateway\'s USN first does not hide the gateway\'s own answer', async (ctx) => {
  const st = 'urn:schemas-upnp-org:device:InternetGatewayDevice:1'
  const usn = `uuid:a::${st}`
  const sockets = await Promise.all(['127.0.0.1', '127.0.0.2'].map(async (address) => {
    const socket = createSocket('udp4')
    await new Promise<void>((resolve) => { socket.bind(0, address, resolve) })
    ctx.after(() => { socket.close() })
    return socket
  }))
  const [gateway, spoofer] = sockets as [Socket, Socket]
  // The spoofer answers the multicast search at once; the gateway 20 ms later, as miniupnpd does.
  spoofer.on('message', (_m, rinfo) => {
    spoofer.send(encodeSsdpResponse({ location: 'http://127.0.0.2:5000/rootDesc.xml', st, usn, server: 'x' }), rinfo.port, rinfo.address)
  })
  gateway.on('message', (_m, rinfo) => {
    setTimeout(() => { gateway.send(encodeSsdpResponse({ location: 'http://127.0.0.1:5000/rootDesc.xml', st, usn, server: 'x' }), rinfo.port, rinfo.address) }, 20)
  })
  const search = await SsdpSearch.start({
    gateway: '127.0.0.1', gatewayPort: gateway.address().port, multicast: { address: '127.0.0.2', port: spoofer.address().port }, schedule: [{ atMs: 0, searchTargets: [st] }]
  })
  ctx.after(() => { search.close() })
  const answers: SsdpAnswer[] = []
  search.on('answer', (a) => answers.push(a))
  await waitFor(() => search.received === 2, 'both replies')
  assert.deepEqual(answers.map((a) => `${a.from.address} ${a.response.location}`), [
    '127.0.0.2 http://127.0.0.2:5000/rootDesc.xml', '127.0.0.1 http://127.0.0.1:5000/rootDesc.xml'
  ])
})

test('findIgd resolves with the first answer, at once', async (ctx) => {
  const igd = await startIgd(ctx)
  const clock = new FakeClock()
  const answer = await findIgd({ gateway: igd.address, gatewayPort: igd.ssdpUnicastTarget.port, multicast: igd.ssdpMulticastTarget, timeoutMs: 1000, clock })
  assert.equal(answer.from.address, '127.0.0.1')
  assert.equal(answer.from.port, igd.ssdpUnicastTarget.port, 'the unicast answer arrives first')
  assert.equal(clock.now(), 0, 'no window waited out')
})

test('quirk 1: unicast SSDP ignored (Eero: tailscale#3197): the multicast search finds the IGD', async (ctx) => {
  const igd = await startIgd(ctx)
  igd.quirks.ignoreUnicastSsdp = true
  const answer = await findIgd({ gateway: igd.address, gatewayPort: igd.ssdpUnicastTarget.port, multicast: igd.ssdpMulticastTarget, timeoutMs: 2000 })
  assert.equal(answer.from.port, igd.ssdpMulticastTarget.port)
  assert.ok(igd.count('ssdp', 'unicast') >= 1, 'the unicast search was sent, and ignored')
})

test('quirk 3: replies from an ephemeral port (TP-Link ER605: tailscale#7377): accepted', async (ctx) => {
  const igd = await startIgd(ctx)
  igd.quirks.replyFromEphemeralPort = true
  const answer = await findIgd({ gateway: igd.address, gatewayPort: igd.ssdpUnicastTarget.port, multicast: igd.ssdpMulticastTarget, timeoutMs: 2000 })
  assert.notEqual(answer.from.port, igd.ssdpUnicastTarget.port)
  assert.notEqual(answer.from.port, igd.ssdpMulticastTarget.port)
  assert.notEqual(answer.from.port, 1900)
})

test('answers from hosts not accepted are dropped with a warning', async (ctx) => {
  const igd = await startIgd(ctx)
  const clock = new FakeClock()
  const search = await SsdpSearch.start({ gateway: igd.address, gatewayPort: igd.ssdpUnicastTarget.port, multicast: false, acceptFrom: (a) => a === '127.0.0.2', clock })
  ctx.after(() => { search.close() })
  const warnings: Error[] = []
  const answers: SsdpAnswer[] = []
  search.on('warning', (w) => warnings.push(w))
  search.on('answer', (a) => answers.push(a))
  await waitFor(() => warnings.length >= 1, 'a warning')
  assert.equal(answers.length, 0)
  assert.match(warnings[0]!.message, /ignoring SSDP datagram from 127\.0\.0\.1:\d+: not the gateway nor a host of its subnet/)
})

test('undecodable datagrams and other kinds of SSDP message are skipped, never thrown', async (ctx) => {
  const responder = createSocket('udp4')
  await new Promise<void>((resolve) => { responder.bind(0, '127.0.0.1', resolve) })
  ctx.after(() => { responder.close() })
  responder.on('message', (_m, rinfo) => {
    responder.send(Buffer.from('\x00\x01garbage'), rinfo.port, rinfo.address)
    responder.send(encodeMSearch({ searchTarget: 'ssdp:all' }), rinfo.port, rinfo.address)
    responder.send(Buffer.from('HTTP/1.1 200 OK\r\nST: urn:schemas-wifialliance-org:device:WFADevice:1\r\nUSN: uuid:1::urn:schemas-wifialliance-org:device:WFADevice:1\r\nLOCATION: http://127.0.0.1:1/wfa.xml\r\n\r\n'), rinfo.port, rinfo.address)
  })
  const clock = new FakeClock()
  const search = await SsdpSearch.start({ gateway: '127.0.0.1', gatewayPort: responder.address().port, schedule: [{ atMs: 0, searchTargets: ['ssdp:all'] }], clock })
  ctx.after(() => { search.close() })
  const warnings: Error[] = []
  const answers: SsdpAnswer[] = []
  search.on('warning', (w) => warnings.push(w))
  search.on('answer', (a) => answers.push(a))
  await waitFor(() => search.received === 3, 'three datagrams')
  assert.equal(warnings.length, 1)
  assert.match(warnings[0]!.message, /undecodable/)
  assert.equal(answers.length, 1, 'the WFA answer is an answer...')
  assert.equal(isIgdAnswer(answers[0]!.response), false, '...but not an IGD')
})

test('isIgdAnswer: an IGD or one of its WAN services, any version, dslforum too', () => {
  const r = (st: string, usn = ''): SsdpSearchResponse => {
    const parsed = parseSsdpMessage(Buffer.from(`HTTP/1.1 200 OK\r\nLOCATION: http://1.2.3.4/\r\nST: ${st}\r\n${usn === '' ? '' : `USN: ${usn}\r\n`}\r\n`))
    assert.equal(parsed.kind, 'search-response')
    return parsed as SsdpSearchResponse
  }
  assert.equal(isIgdAnswer(r('urn:schemas-upnp-org:device:InternetGatewayDevice:1')), true)
  assert.equal(isIgdAnswer(r('urn:schemas-upnp-org:service:WANPPPConnection:2')), true)
  assert.equal(isIgdAnswer(r('urn:dslforum-org:service:WANIPConnection:1')), true)
  assert.equal(isIgdAnswer(r('upnp:rootdevice', 'uuid:x::urn:schemas-upnp-org:device:InternetGatewayDevice:2')), true)
  assert.equal(isIgdAnswer(r('urn:schemas-upnp-org:device:MediaServer:1')), false)
})

test('a silent network: every burst of the schedule, then TimeoutError, on the fake clock', async (ctx) => {
  const igd = await startIgd(ctx)
  igd.quirks.silentSsdp = true
  const clock = new FakeClock()
  const pending = findIgd({ gateway: igd.address, gatewayPort: igd.ssdpUnicastTarget.port, multicast: igd.ssdpMulticastTarget, timeoutMs: 4000, clock })
  const outcome = pending.then(() => undefined, (err: Error) => err)
  await waitFor(() => igd.count('ssdp') === 2, 'the first burst')
  await clock.advance(1000)
  await waitFor(() => igd.count('ssdp') === 20, 'the second and third bursts')
  await clock.advance(2000)
  await waitFor(() => igd.count('ssdp') === 30, 'the fourth burst')
  await clock.advance(1000)
  const err = await outcome
  assert.ok(err instanceof TimeoutError, String(err))
  assert.match(err.message, /no UPnP IGD answered SSDP within 4000 ms \(0 datagrams received\)/)
  assert.equal(clock.pendingTimers, 0, 'every timer cleared')
})

test('an AbortSignal ends the search', async (ctx) => {
  const igd = await startIgd(ctx)
  igd.quirks.silentSsdp = true
  const controller = new AbortController()
  const pending = findIgd({ gateway: igd.address, gatewayPort: igd.ssdpUnicastTarget.port, multicast: false, timeoutMs: 60_000, signal: controller.signal })
  await waitFor(() => igd.count('ssdp') > 0, 'a search')
  controller.abort()
  await assert.rejects(pending, AbortError)
  await assert.rejects(findIgd({ gateway: igd.address, timeoutMs: 10, signal: AbortSignal.abort() }), AbortError)
})

test('a loopback gateway gets no multicast search unless a target is given: nothing on a LAN can be it', async (ctx) => {
  const rec = recordingSockets()
  const search = await SsdpSearch.start({ gateway: '127.0.0.1', gatewayPort: 9, createSocket: rec.createSocket, schedule: [{ atMs: 0, searchTargets: IGD_SEARCH_TARGETS }] })
  search.close()
  assert.deepEqual(new Set(rec.sent.map((s) => `${s.address}:${s.port}`)), new Set(['127.0.0.1:9']))
  assert.equal(rec.sent.length, 5)
  ctx.diagnostic('sent only to 127.0.0.1:9')
})

// ---------------------------------------------------------------------------------------------
// NOTIFY

async function listener (ctx: { after: (fn: () => void) => void }, acceptFrom?: (a: string) => boolean): Promise<SsdpListener> {
  const l = await SsdpListener.start({ group: '127.0.0.1', port: 0, ...(acceptFrom === undefined ? {} : { acceptFrom }) })
  ctx.after(() => { l.close() })
  return l
}

test('NOTIFY listener: a router restart shows as byebye, then alive with a new BOOTID and LOCATION, and one restart event', async (ctx) => {
  const l = await listener(ctx)
  const igd = await startIgd(ctx, { notifyTargets: [l.address], bootId: 1700000000 })
  const alive: SsdpNotification[] = []
  const byebye: SsdpNotification[] = []
  const restarts: SsdpRestart[] = []
  l.on('alive', (n) => alive.push(n))
  l.on('byebye', (n) => byebye.push(n))
  l.on('restart', (r) => restarts.push(r))
  igd.announce()
  await waitFor(() => alive.length === 3, 'three ssdp:alive')
  assert.deepEqual(alive.map((n) => n.notify.nt), ['upnp:rootdevice', 'urn:schemas-upnp-org:device:InternetGatewayDevice:2', 'urn:schemas-upnp-org:service:WANIPConnection:2'])
  assert.equal(alive[0]!.notify.location, igd.descriptionUrl)
  assert.equal(alive[0]!.notify.bootId, 1700000000)
  assert.equal(alive[0]!.uuid, igd.uuid)
  assert.equal(alive[0]!.from.address, '127.0.0.1')
  assert.equal(restarts.length, 0)
  const oldLocation = igd.descriptionUrl
  await igd.restart()
  await waitFor(() => alive.length === 6, 'three more ssdp:alive')
  assert.equal(byebye.length, 3)
  assert.equal(byebye[0]!.notify.bootId, 1700000000)
  assert.equal(restarts.length, 1, 'one restart event for the whole announcement')
  assert.deepEqual({ ...restarts[0]!, notification: undefined }, {
    address: '127.0.0.1', previousBootId: 1700000000, bootId: 1700000001, previousLocation: oldLocation, location: igd.descriptionUrl, notification: undefined
  })
  assert.notEqual(oldLocation, igd.descriptionUrl, 'the HTTP port changed')
})

test('NOTIFY listener: a new LOCATION with the same BOOTID is a restart too; ssdp:update is not', async (ctx) => {
  const l = await listener(ctx)
  const sender = createSocket('udp4')
  await new Promise<void>((resolve) => { sender.bind(0, '127.0.0.1', resolve) })
  ctx.after(() => { sender.close() })
  const restarts: SsdpRestart[] = []
  const updates: SsdpNotification[] = []
  l.on('restart', (r) => restarts.push(r))
  l.on('update', (n) => updates.push(n))
  const send = (packet: Uint8Array): void => { sender.send(packet, l.address.port, l.address.address) }
  const usn = 'uuid:abc::upnp:rootdevice'
  send(encodeNotify({ nts: 'ssdp:alive', nt: 'upnp:rootdevice', usn, location: 'http://127.0.0.1:5000/d.xml', server: 'x', bootId: 7 }))
  send(encodeNotify({ nts: 'ssdp:update', nt: 'upnp:rootdevice', usn, location: 'http://127.0.0.1:5000/d.xml', bootId: 7, nextBootId: 8 }))
  send(encodeNotify({ nts: 'ssdp:alive', nt: 'upnp:rootdevice', usn, location: 'http://127.0.0.1:5000/d.xml', server: 'x', bootId: 8 }))
  send(encodeNotify({ nts: 'ssdp:alive', nt: 'upnp:rootdevice', usn, location: 'http://127.0.0.1:6000/d.xml', server: 'x', bootId: 8 }))
  await waitFor(() => restarts.length === 1 && updates.length === 1, 'one restart and one update')
  assert.equal(restarts[0]!.location, 'http://127.0.0.1:6000/d.xml')
  assert.equal(restarts[0]!.previousBootId, 8)
})

test('NOTIFY listener: searches are no announcements; garbage and foreign senders are warnings', async (ctx) => {
  const l = await listener(ctx, (a) => a === '127.0.0.1')
  const sender = createSocket('udp4')
  await new Promise<void>((resolve) => { sender.bind(0, '127.0.0.2', resolve) })
  ctx.after(() => { sender.close() })
  const local = createSocket('udp4')
  await new Promise<void>((resolve) => { local.bind(0, '127.0.0.1', resolve) })
  ctx.after(() => { local.close() })
  const warnings: Error[] = []
  const events: string[] = []
  l.on('warning', (w) => warnings.push(w))
  for (const name of ['alive', 'byebye', 'update', 'restart'] as const) l.on(name, () => events.push(name))
  local.send(encodeMSearch({ searchTarget: 'ssdp:all' }), l.address.port, '127.0.0.1')
  local.send(Buffer.from('NOTIFY * HTTP/1.1\r\nNTS: ssdp:alive\r\n\r\n'), l.address.port, '127.0.0.1')
  sender.send(encodeNotify({ nts: 'ssdp:byebye', nt: 'upnp:rootdevice', usn: 'uuid:x::upnp:rootdevice' }), l.address.port, '127.0.0.1')
  await waitFor(() => warnings.length === 2, 'two warnings')
  const messages = warnings.map((w) => w.message).sort()
  assert.match(messages[0]!, /from 127\.0\.0\.2:\d+: not an accepted source/)
  assert.match(messages[1]!, /undecodable/)
  assert.deepEqual(events, [])
})
