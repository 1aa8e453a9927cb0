import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createSocket } from 'node:dgram'
import { createServer } from 'node:http'
import { AbortError, RemoteProtocolError, TimeoutError, UnsafeUrlError } from '../../src/errors.js'
import { FakeClock } from '../../src/testing/fake-clock.js'
import { discoverIgd } from '../../src/upnp/discovery.js'
import { encodeSsdpResponse } from '../../src/upnp/ssdp-encode.js'
import { waitFor } from '../helpers/wait.js'
import { discoverOptions, LOOPBACK_INTERFACES, startIgd } from './setup.js'

const PUBLIC = '11.22.33.44'

test('the gateway\'s answer, connected with an address, is taken at once: SSDP, description, GetExternalIPAddress', async (ctx) => {
  const igd = await startIgd(ctx, { externalAddress: PUBLIC })
  const clock = new FakeClock()
  const selection = await discoverIgd(discoverOptions(igd, { clock }))
  assert.equal(clock.now(), 0, 'no timer had to fire')
  assert.equal(selection.gateway, '127.0.0.1')
  assert.equal(selection.responder.address, '127.0.0.1')
  assert.equal(selection.location, igd.descriptionUrl)
  assert.equal(selection.service.serviceType, 'urn:schemas-upnp-org:service:WANIPConnection:2')
  assert.equal(selection.device.friendlyName, 'natmapper SimulatedIgd')
  assert.deepEqual(selection.externalAddress, { ok: true, address: PUBLIC })
  assert.equal(selection.status, undefined, 'one service: nothing to compare, no GetStatusInfo')
  assert.equal(selection.internalClient, '127.0.0.1')
  assert.equal(selection.rank, 0)
  assert.equal(selection.bootId, 1)
  assert.match(selection.server ?? '', /SimulatedIgd/)
  assert.deepEqual(igd.requests.filter((r) => r.kind === 'http').map((r) => r.what), ['GET', 'GetExternalIPAddress'])
})

test('another host of the subnet answering for the gateway (CARP: tailscale#5502) is used, its URLs allowed', async (ctx) => {
  const gateway = await startIgd(ctx)
  gateway.quirks.silentSsdp = true
  const other = await startIgd(ctx, { address: '127.0.0.2', externalAddress: PUBLIC })
  const selection = await discoverIgd(discoverOptions(gateway, { ssdpTarget: other.ssdpMulticastTarget }))
  assert.equal(selection.responder.address, '127.0.0.2')
  assert.equal(selection.service.controlURL, `http://127.0.0.2:${other.httpPort}/ctl/IPConn`)
  assert.equal(selection.policy.responder, '127.0.0.2')
})

test('issue 18 point 8: a gateway the caller named (gatewayNamed) must answer itself: another host of its subnet is refused, its description never fetched', async (ctx) => {
  const gateway = await startIgd(ctx)
  gateway.quirks.silentSsdp = true
  const other = await startIgd(ctx, { address: '127.0.0.2', externalAddress: PUBLIC })
  const clock = new FakeClock()
  const pending = discoverIgd(discoverOptions(gateway, { gatewayNamed: true, ssdpTarget: other.ssdpMulticastTarget, clock, timeoutMs: 1500 }))
  const outcome = pending.then(() => undefined, (err: Error) => err)
  await waitFor(() => other.count('ssdp') === 1, 'the other host\'s answer')
  await clock.advance(1500)
  const err = await outcome
  assert.ok(err instanceof TimeoutError, String(err))
  assert.match(err.message, /\d+ datagrams? received; \d+ from hosts other than the gateway refused\)/)
  assert.equal(other.count('http'), 0, 'its description was never fetched')
})

test('issue 18 point 8: with gatewayNamed, the gateway\'s own answer still works, and a control URL on another host of the subnet is refused', async (ctx) => {
  const igd = await startIgd(ctx, { externalAddress: PUBLIC })
  const selection = await discoverIgd(discoverOptions(igd, { gatewayNamed: true }))
  assert.equal(selection.responder.address, '127.0.0.1')
  assert.equal(selection.policy.subnet, undefined, 'the URL policy allows the gateway alone')
  igd.quirks.controlUrlHost = '127.0.0.2'
  await assert.rejects(discoverIgd(discoverOptions(igd, { gatewayNamed: true })), (err: unknown) => err instanceof UnsafeUrlError && err.reason === 'foreign-host')
})

test('a public address elsewhere on the subnet beats a gateway without one; the gateway wins ties', async (ctx) => {
  const gateway = await startIgd(ctx, { externalAddress: '' })
  const other = await startIgd(ctx, { address: '127.0.0.2', externalAddress: PUBLIC })
  const selection = await discoverIgd(discoverOptions(gateway, { ssdpTarget: other.ssdpMulticastTarget, settleMs: 50 }))
  assert.equal(selection.responder.address, '127.0.0.2')
  assert.equal(selection.rank, 0)
})

test('with only second-rate answers, the best of them after the settle time: IGD v2 before v1', async (ctx) => {
  const clock = new FakeClock()
  const v1 = await startIgd(ctx, { igdVersion: 1, externalAddress: '', clock })
  const v2 = await startIgd(ctx, { igdVersion: 2, externalAddress: '', clock })
  const log: string[] = []
  const pending = discoverIgd(discoverOptions(v1, { ssdpTarget: v2.ssdpMulticastTarget, clock, settleMs: 100, logger: (m, ...a) => log.push(`${m} ${a.join(' ')}`) }))
  await waitFor(() => log.filter((l) => l.includes('rank')).length === 2, 'both descriptions ranked')
  await clock.advance(100)
  const selection = await pending
  assert.equal(selection.service.igdVersion, 2)
  assert.equal(selection.rank, 4)
})

test('answers from outside the gateway\'s subnet are not believed', async (ctx) => {
  const gateway = await startIgd(ctx)
  gateway.quirks.silentSsdp = true
  const other = await startIgd(ctx, { address: '127.0.0.2', externalAddress: PUBLIC })
  const clock = new FakeClock()
  const lonely = { lo: [{ ...LOOPBACK_INTERFACES.lo![0]!, netmask: '255.255.255.255', cidr: '127.0.0.1/32' }] }
  const pending = discoverIgd(discoverOptions(gateway, { ssdpTarget: other.ssdpMulticastTarget, interfaces: lonely, clock, timeoutMs: 1500 }))
  const outcome = pending.then(() => undefined, (err: Error) => err)
  await waitFor(() => other.count('ssdp') === 1, 'the other host\'s answer')
  await clock.advance(1500)
  const err = await outcome
  assert.ok(err instanceof TimeoutError, String(err))
  assert.match(err.message, /no usable UPnP IGD answered within 1500 ms \(M-SEARCH to 127\.0\.0\.1 and the SSDP group; \d+ datagrams? received; \d+ from outside the gateway's subnet refused\)/)
  assert.equal(other.count('http'), 0, 'its description was never fetched')
})

test('quirk 34: LOCATION naming another host (HONOR: 169.254.x, home-assistant#63745): re-pointed at the host that answered', async (ctx) => {
  const igd = await startIgd(ctx, { externalAddress: PUBLIC })
  igd.quirks.locationHost = '169.254.10.1'
  const selection = await discoverIgd(discoverOptions(igd))
  assert.equal(selection.location, `http://127.0.0.1:${igd.httpPort}/rootDesc.xml`)
  assert.equal(selection.rank, 0)
})

test('SSRF guard: a description whose control URLs point elsewhere is refused with UnsafeUrlError, nothing sent there', async (ctx) => {
  const igd = await startIgd(ctx)
  igd.quirks.controlUrlHost = '127.0.0.9'
  // Were the guard not there, the client would POST to 127.0.0.9: nothing listens, but a counter would see it.
  const trap = createServer((_req, res) => { res.end() })
  let hits = 0
  trap.on('connection', () => { hits++ })
  await new Promise<void>((resolve) => { trap.listen(igd.httpPort, '127.0.0.9', resolve) })
  ctx.after(() => { trap.close() })
  await assert.rejects(discoverIgd(discoverOptions(igd)), (err: unknown) => {
    assert.ok(err instanceof UnsafeUrlError, String(err))
    assert.equal(err.reason, 'foreign-host')
    assert.match(err.message, /host 127\.0\.0\.9 is not the gateway 127\.0\.0\.1/)
    return true
  })
  assert.equal(hits, 0)
  assert.deepEqual(igd.requests.filter((r) => r.kind === 'http').map((r) => r.what), ['GET'])
})

test('SSRF guard: an https or credential-bearing LOCATION is refused before any connection', async (ctx) => {
  for (const location of ['https://127.0.0.1:1/rootDesc.xml', 'http://user:pw@127.0.0.1:1/rootDesc.xml']) {
    const responder = createSocket('udp4')
    await new Promise<void>((resolve) => { responder.bind(0, '127.0.0.1', resolve) })
    ctx.after(() => { responder.close() })
    responder.on('message', (_m, rinfo) => {
      responder.send(encodeSsdpResponse({ location, st: 'urn:schemas-upnp-org:device:InternetGatewayDevice:1', usn: 'uuid:1::urn:schemas-upnp-org:device:InternetGatewayDevice:1', server: 'x' }), rinfo.port, rinfo.address)
    })
    await assert.rejects(discoverIgd({ gateway: '127.0.0.1', ssdpGatewayPort: responder.address().port, ssdpTarget: false, settleMs: 5, interfaces: LOOPBACK_INTERFACES }),
      (err: unknown) => err instanceof UnsafeUrlError && (err.reason === 'not-http' || err.reason === 'credentials'), location)
  }
})

test('a description that is not one, or not found, is a RemoteProtocolError; one without a WAN service too', async (ctx) => {
  const server = createServer((req, res) => {
    if (req.url === '/404') res.writeHead(404).end('no')
    else if (req.url === '/html') res.writeHead(200).end('<!DOCTYPE html><html><body>login</body></html>')
    else res.writeHead(200).end('<root xmlns="urn:schemas-upnp-org:device-1-0"><device><deviceType>urn:schemas-upnp-org:device:MediaServer:1</deviceType></device></root>')
  })
  await new Promise<void>((resolve) => { server.listen(0, '127.0.0.1', resolve) })
  ctx.after(() => { server.close() })
  const port = (server.address() as { port: number }).port
  for (const [path, pattern] of [['/404', /HTTP 404, not 200/], ['/html', /not well-formed|not a UPnP device description/], ['/empty', /offers no WAN connection service/]] as const) {
    const responder = createSocket('udp4')
    await new Promise<void>((resolve) => { responder.bind(0, '127.0.0.1', resolve) })
    ctx.after(() => { responder.close() })
    responder.on('message', (_m, rinfo) => {
      responder.send(encodeSsdpResponse({ location: `http://127.0.0.1:${port}${path}`, st: 'urn:schemas-upnp-org:device:InternetGatewayDevice:1', usn: 'uuid:1', server: 'x' }), rinfo.port, rinfo.address)
    })
    await assert.rejects(discoverIgd({ gateway: '127.0.0.1', ssdpGatewayPort: responder.address().port, ssdpTarget: false, settleMs: 5, interfaces: LOOPBACK_INTERFACES }),
      (err: unknown) => err instanceof RemoteProtocolError && pattern.test(err.message), path)
  }
})

test('nobody answers: TimeoutError at the deadline, on the injected clock; abort: AbortError', async (ctx) => {
  const igd = await startIgd(ctx)
  igd.quirks.silentSsdp = true
  const clock = new FakeClock()
  const outcome = discoverIgd(discoverOptions(igd, { clock, timeoutMs: 3000 })).then(() => undefined, (err: Error) => err)
  await waitFor(() => igd.count('ssdp') === 2, 'the first burst (IGD:1 to the gateway and to the group)')
  await clock.advance(3000)
  assert.ok(await outcome instanceof TimeoutError)
  assert.equal(clock.pendingTimers, 0)
  const controller = new AbortController()
  const aborted = discoverIgd(discoverOptions(igd, { signal: controller.signal }))
  controller.abort()
  await assert.rejects(aborted, AbortError)
})

test('a finished discovery leaves no timer behind (a settle timer would hold a CLI process open for 250 ms)', async (ctx) => {
  const clock = new FakeClock()
  const igd = await startIgd(ctx, { externalAddress: PUBLIC })
  const selection = await discoverIgd(discoverOptions(igd, { clock, settleMs: 250 }))
  assert.equal(selection.rank, 0)
  // What is due now (the XML parser's preload) runs; nothing is left to wait for.
  await clock.advance(0)
  assert.equal(clock.pendingTimers, 0)
})

test('a search started before discovery (the M-SEARCH sent while the rest of the UPnP code loads): answers heard meanwhile are used', async (ctx) => {
  const { startIgdSearch } = await import('../../src/upnp/search.js')
  const igd = await startIgd(ctx, { externalAddress: PUBLIC })
  const options = discoverOptions(igd)
  const started = await startIgdSearch(options)
  await waitFor(() => started.search.answers.length > 0, 'an answer before discoverIgd is called')
  const selection = await discoverIgd({ ...options, started })
  assert.equal(selection.rank, 0)
  assert.equal(selection.location, igd.descriptionUrl)
  assert.equal(igd.count('ssdp'), 2, 'no second search')
})
