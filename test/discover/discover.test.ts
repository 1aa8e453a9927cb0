import { test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { discoverGateway } from '../../src/discover/discover.js'
import { discoverNAT } from '../../src/nat/discover-nat.js'
import { SimulatedPmpGateway, type SimulatedPmpGatewayOptions } from '../../src/testing/pmp-gateway.js'
import { NatmapperError, NoGatewayError, TimeoutError } from '../../src/errors.js'
import { waitFor } from '../helpers/wait.js'
import { FakeClock } from '../../src/testing/fake-clock.js'
import { freeUdpPort } from '../helpers/net.js'

async function gatewayFor (ctx: TestContext, options: SimulatedPmpGatewayOptions = {}): Promise<SimulatedPmpGateway> {
  const gateway = await SimulatedPmpGateway.start(options)
  ctx.after(async () => { await gateway.close() })
  return gateway
}

const noAnnouncements = { announcements: false as const }

test('a PCP gateway is found with PCP, and the external address is known at once', async (ctx) => {
  const sim = await gatewayFor(ctx, { externalAddress: '11.0.0.7' })
  const found = await discoverGateway({ gateway: sim.address, port: sim.port, methods: ['pcp', 'natpmp'] })
  ctx.after(() => { found.gateway.close() })
  assert.equal(found.gateway.method, 'pcp')
  assert.equal(found.externalAddress, '11.0.0.7')
  assert.deepEqual(found.probes.map((p) => [p.method, p.ok]), [['pcp', true], ['natpmp', true]])
  assert.equal(sim.requestCount, 2, 'one ANNOUNCE and one NAT-PMP address request')
})

test('a NAT-PMP-only gateway is found with NAT-PMP', async (ctx) => {
  const sim = await gatewayFor(ctx, { pcp: false })
  const found = await discoverGateway({ gateway: sim.address, port: sim.port, methods: ['pcp', 'natpmp'] })
  ctx.after(() => { found.gateway.close() })
  assert.equal(found.gateway.method, 'natpmp')
  assert.notEqual(found.probes.find((p) => p.method === 'pcp')?.ok, true, 'PCP never answered')
})

test('discoverNAT on a PCP gateway costs it one request (the ANNOUNCE); the address comes with the first MAP, no NAT-PMP request', async (ctx) => {
  const sim = await gatewayFor(ctx)
  const clock = new FakeClock()
  const nat = await discoverNAT({ gateway: sim.address, port: sim.port, methods: ['pcp', 'natpmp'], clock, ...noAnnouncements })
  ctx.after(async () => { await nat.close() })
  assert.equal(nat.method, 'pcp')
  assert.equal(nat.gatewayAddress, '127.0.0.1')
  assert.equal(sim.requestCount, 1, 'the ANNOUNCE alone')
  assert.equal(nat.notPublicReason, undefined)
  await nat.addMapping('tcp', 4001)
  assert.deepEqual(nat.getMapping('tcp', 4001), { address: '11.0.0.1', port: 4001 })
  assert.equal(nat.externalAddress, '11.0.0.1')
  // The NAT's own ask, in the turn after it was made, waits for the first mapping and finds the address known.
  await clock.advance(0)
  assert.equal(sim.requestCount, 2, 'ANNOUNCE and MAP only')
})

test('discoverNAT on a PCP gateway with no mapping asked: the NAT asks the address itself (external-address event)', async (ctx) => {
  const sim = await gatewayFor(ctx, { externalAddress: '11.0.0.9' })
  const nat = await discoverNAT({ gateway: sim.address, port: sim.port, methods: ['pcp', 'natpmp'], ...noAnnouncements })
  ctx.after(async () => { await nat.close() })
  assert.equal(nat.externalAddress, undefined)
  const event = await new Promise<{ address: string }>((resolve) => { nat.once('external-address', resolve) })
  assert.equal(event.address, '11.0.0.9')
  assert.equal(nat.externalAddress, '11.0.0.9')
  assert.equal(sim.requestCount, 2, 'the ANNOUNCE, then one NAT-PMP address request')
})

test('a gateway without an external address (NETWORK_FAILURE) is flagged as double NAT: by discovery reports at once, by discoverNAT from the first MAP or its own ask', async (ctx) => {
  const sim = await gatewayFor(ctx)
  sim.faults.externalAddressResult = 3
  const report = await discoverGateway({ gateway: sim.address, port: sim.port, methods: ['pcp', 'natpmp'] })
  report.gateway.close()
  assert.match(report.notPublicReason ?? '', /double NAT/)

  const nat = await discoverNAT({ gateway: sim.address, port: sim.port, methods: ['pcp', 'natpmp'], ...noAnnouncements })
  ctx.after(async () => { await nat.close() })
  assert.equal(nat.externalAddress, undefined)
  await waitFor(() => nat.notPublicReason !== undefined, 'the NAT\'s own ask')
  assert.match(nat.notPublicReason ?? '', /NAT-PMP NETWORK_FAILURE.*double NAT/)
})

test('discoverNAT asks NAT-PMP only where PCP cannot be used: a NAT-PMP-only gateway still answers at once', async (ctx) => {
  const sim = await gatewayFor(ctx, { pcp: false, externalAddress: '11.0.0.4' })
  const started = Date.now()
  const nat = await discoverNAT({ gateway: sim.address, port: sim.port, methods: ['pcp', 'natpmp'], ...noAnnouncements })
  ctx.after(async () => { await nat.close() })
  assert.equal(nat.method, 'natpmp')
  assert.equal(nat.externalAddress, '11.0.0.4')
  assert.ok(Date.now() - started < 1000)
})

test('nothing listening (ICMP unreachable): a clear error at once, naming each protocol', async () => {
  const port = await freeUdpPort()
  const started = Date.now()
  const err = await discoverGateway({ gateway: '127.0.0.1', port, methods: ['pcp', 'natpmp'] }).catch((e: unknown) => e)
  assert.ok(err instanceof NatmapperError)
  assert.equal(err.code, 'NATMAPPER_NO_GATEWAY')
  assert.match(err.message, /pcp: .*refused.*natpmp: .*refused/)
  assert.ok(Date.now() - started < 1000)
})

test('a silent gateway: NoGatewayError, timed out, within the timeout, each protocol\'s cause a TimeoutError', async (ctx) => {
  const sim = await gatewayFor(ctx)
  sim.faults.silent = true
  const started = Date.now()
  const err = await discoverGateway({ gateway: sim.address, port: sim.port, methods: ['pcp', 'natpmp'], timeout: 400 }).catch((e: unknown) => e)
  assert.ok(err instanceof NoGatewayError && err.timedOut, String(err))
  assert.ok(err.causes.pcp instanceof TimeoutError && err.causes.natpmp instanceof TimeoutError, String(err.causes))
  assert.match(err.message, /no gateway answered at 127\.0\.0\.1 within 400 ms/)
  assert.ok(Date.now() - started < 1500)
})

test('the caller\'s signal aborts discovery', async (ctx) => {
  const sim = await gatewayFor(ctx)
  sim.faults.silent = true
  const controller = new AbortController()
  const pending = discoverNAT({ gateway: sim.address, port: sim.port, methods: ['pcp', 'natpmp'], signal: controller.signal, ...noAnnouncements })
  setTimeout(() => { controller.abort() }, 20)
  await assert.rejects(pending, (err: Error) => err.name === 'AbortError')
})

test('discoverNAT\'s quick discovery, PCP answering: nothing else is set up; the report lists PCP alone and no search or NAT-PMP request follows', async (ctx) => {
  const { startIgd } = await import('../upnp/setup.js')
  const igd = await startIgd(ctx)
  const sim = await gatewayFor(ctx)
  const clock = new FakeClock()
  const found = await discoverGateway({ gateway: sim.address, port: sim.port, deferExternalAddress: true, ssdpTarget: igd.ssdpMulticastTarget, ssdpGatewayPort: igd.ssdpUnicastTarget.port, clock })
  ctx.after(() => { found.gateway.close() })
  assert.equal(found.gateway.method, 'pcp')
  assert.deepEqual(found.probes.map((p) => [p.method, p.ok]), [['pcp', true]])
  assert.equal(found.externalAddress, undefined, 'the first MAP reply tells it')
  // Past both head starts (25 ms): the probes that were never set up stay that way.
  await clock.advance(60)
  assert.equal(sim.requestCount, 1, 'the ANNOUNCE alone')
  assert.equal(igd.count('ssdp'), 0, 'no M-SEARCH')
})

test('discoverNAT\'s quick discovery, NAT-PMP answering: UPnP, waiting for its turn, ends unasked when the answer is chosen', async (ctx) => {
  const { startIgd } = await import('../upnp/setup.js')
  const igd = await startIgd(ctx)
  const sim = await gatewayFor(ctx, { pcp: false })
  const clock = new FakeClock()
  const found = await discoverGateway({ gateway: sim.address, port: sim.port, deferExternalAddress: true, ssdpTarget: igd.ssdpMulticastTarget, ssdpGatewayPort: igd.ssdpUnicastTarget.port, clock })
  ctx.after(() => { found.gateway.close() })
  assert.equal(found.gateway.method, 'natpmp')
  await clock.advance(60)
  assert.equal(igd.count('ssdp'), 0, 'no M-SEARCH after discovery ended')
  const upnp = found.probes.find((p) => p.method === 'upnp')
  assert.equal(upnp, undefined, 'the report is made when the answer is chosen, before UPnP ends')
})

test('discoverNAT: a gateway that refuses the first MAP vaguely (NO_RESOURCES) and has no external address: not-public comes from the NAT\'s own address request, once', async (ctx) => {
  const sim = await gatewayFor(ctx)
  sim.faults.refuseWith = { pcp: 8 }
  sim.faults.externalAddressResult = 3
  const clock = new FakeClock()
  const nat = await discoverNAT({ gateway: sim.address, port: sim.port, methods: ['pcp', 'natpmp'], clock, ...noAnnouncements })
  ctx.after(async () => { await nat.close() })
  const reasons: string[] = []
  nat.on('not-public', (e) => { reasons.push(e.reason) })
  nat.on('error', () => {})
  await nat.addMapping('tcp', 4001)
  assert.equal(nat.getMapping('tcp', 4001), undefined)
  await clock.advance(0)
  await waitFor(() => reasons.length > 0, 'the not-public event')
  assert.match(reasons[0]!, /NETWORK_FAILURE/)
  assert.equal(nat.notPublicReason, reasons[0])
  // The retries that follow (NO_RESOURCES, then the back-off) say it no more.
  await clock.advance(10 * 60_000)
  assert.ok(sim.requestCount > 3, 'retried meanwhile')
  assert.equal(reasons.length, 1)
})

test('discoverNAT: a carrier-grade NAT address in the first MAP reply emits not-public once, after external-address', async (ctx) => {
  const sim = await gatewayFor(ctx, { externalAddress: '100.64.0.9' })
  const nat = await discoverNAT({ gateway: sim.address, port: sim.port, methods: ['pcp', 'natpmp'], ...noAnnouncements })
  ctx.after(async () => { await nat.close() })
  const events: string[] = []
  nat.on('external-address', (e) => { events.push(`address ${e.address}`) })
  nat.on('not-public', (e) => { events.push(`not-public ${e.reason.slice(0, 17)}`) })
  await nat.addMapping('tcp', 4001)
  await nat.addMapping('tcp', 4002)
  assert.deepEqual(events, ['address 100.64.0.9', 'not-public carrier-grade NAT'])
})

test('unknown methods are refused', async () => {
  await assert.rejects(discoverGateway({ gateway: '127.0.0.1', methods: ['smtp' as 'pcp'] }), /unknown method "smtp"/)
})

test('UPnP waits for PCP and NAT-PMP: a PCP gateway never sees an M-SEARCH; a UPnP-only one is searched at once', async (ctx) => {
  const { startIgd } = await import('../upnp/setup.js')
  const igd = await startIgd(ctx)
  const upnp = { ssdpTarget: igd.ssdpMulticastTarget, ssdpGatewayPort: igd.ssdpUnicastTarget.port }
  const sim = await gatewayFor(ctx)
  const clock = new FakeClock()
  const found = await discoverGateway({ gateway: sim.address, port: sim.port, ...upnp, clock })
  ctx.after(() => { found.gateway.close() })
  assert.equal(found.gateway.method, 'pcp')
  await clock.advance(100)
  assert.equal(igd.count('ssdp'), 0, 'no M-SEARCH reached the router')

  // Nothing on the PCP/NAT-PMP port: ICMP unreachable at once, and UPnP starts without waiting.
  const port = await freeUdpPort()
  const upnpOnly = await discoverGateway({ gateway: igd.address, port, ...upnp })
  ctx.after(() => { upnpOnly.gateway.close() })
  assert.equal(upnpOnly.gateway.method, 'upnp')
  assert.ok(igd.count('ssdp') > 0)
})

test('PCP and NAT-PMP silent (a router that drops port 5351 without an ICMP error): UPnP answers and is taken 150 ms after the start, not a fixed wait after its answer', async (ctx) => {
  const { startIgd } = await import('../upnp/setup.js')
  const igd = await startIgd(ctx)
  const sim = await gatewayFor(ctx)
  sim.faults.silent = true
  const clock = new FakeClock()
  let done = false
  const pending = discoverGateway({
    gateway: sim.address, port: sim.port, ssdpTarget: igd.ssdpMulticastTarget, ssdpGatewayPort: igd.ssdpUnicastTarget.port, clock
  }).finally(() => { done = true })
  ctx.after(async () => { (await pending).gateway.close() })
  // UPnP starts after its 25 ms head start and answers on loopback; the better protocols keep the grace.
  const { waitFor } = await import('../helpers/wait.js')
  await clock.advance(24)
  assert.equal(igd.count('ssdp'), 0, 'UPnP waits out the head start')
  await clock.advance(1)
  await waitFor(() => igd.count('http', 'GetExternalIPAddress') === 1, 'UPnP to answer')
  assert.equal(done, false, 'PCP may still answer within the grace')
  await clock.advance(124)
  assert.equal(done, false)
  await clock.advance(1)
  const found = await pending
  assert.equal(found.gateway.method, 'upnp')
  assert.notEqual(found.probes.find((p) => p.method === 'pcp')?.ok, true, 'PCP never answered')
})

test('discoverNAT: a server that drops PCP without a word is asked NAT-PMP after the head start', async (ctx) => {
  const sim = await gatewayFor(ctx, { externalAddress: '11.0.0.5' })
  // Every version-2 datagram goes unanswered; NAT-PMP (version 0) is served as usual.
  sim.faults.mangle = (answer, request) => request[0] === 2 ? undefined : answer
  const nat = await discoverNAT({ gateway: sim.address, port: sim.port, methods: ['pcp', 'natpmp'], ...noAnnouncements })
  ctx.after(async () => { await nat.close() })
  assert.equal(nat.method, 'natpmp')
  assert.equal(nat.externalAddress, '11.0.0.5')
})

test('issue 18 point 8: a gateway named by the caller must be the UPnP device; another host of its subnet answering for it (a CARP partner, tolerated for the default route\'s gateway) is refused, nothing fetched from it', async (ctx) => {
  const { startIgd } = await import('../upnp/setup.js')
  // 127.0.0.1 is named and runs no IGD (its "port 1900" is the named one's silent SSDP socket); 127.0.0.2, on the same /8, answers the group.
  const named = await startIgd(ctx)
  named.quirks.silentSsdp = true
  const other = await startIgd(ctx, { address: '127.0.0.2', externalAddress: '11.22.33.44' })
  await assert.rejects(discoverGateway({ gateway: '127.0.0.1', methods: ['upnp'], timeout: 1000, ssdpTarget: other.ssdpMulticastTarget, ssdpGatewayPort: named.ssdpUnicastTarget.port }),
    (err: unknown) => {
      assert.ok(err instanceof NatmapperError, String(err))
      assert.match(err.message, /upnp: no usable UPnP IGD answered within \d+ ms \(M-SEARCH to 127\.0\.0\.1 and the SSDP group; \d+ datagrams? received; \d+ from hosts other than the gateway refused\)/)
      return true
    })
  assert.ok(other.count('ssdp') > 0, 'the other host did hear the search')
  assert.equal(other.count('http'), 0, 'its description was never fetched')
})
