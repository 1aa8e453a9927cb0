// natmapperNat() inside a real js-libp2p node on loopback, against natmapper's simulated
// gateways (natmapper/testing): what the node's address manager holds at each step, and what the
// router's table holds. Node >= 22 (scripts/run-tests.mjs says so on older Nodes).
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { SimulatedPmpGateway, SimulatedIgd, FakeClock } from '../../src/testing/index.js'
import { waitFor } from '../helpers/wait.js'
import { freeUdpPort } from '../helpers/net.js'
import { startNode, tcpPort } from './setup.js'

/** natmapper's options for a simulated PCP/NAT-PMP gateway on loopback, announcements heard on `announcePort`. */
function pmpOptions (gateway: SimulatedPmpGateway, announcePort: number | false = false) {
  return {
    gateway: gateway.address,
    natmapper: {
      port: gateway.port,
      methods: ['pcp', 'natpmp'] as Array<'pcp' | 'natpmp'>,
      announcements: announcePort === false ? false as const : { port: announcePort, bindAddress: '127.0.0.1', multicastGroup: undefined },
      ssdpListen: false as const,
      ssdpTarget: false as const,
      // The RFCs' random 0-5 s wait before re-mapping after a reboot: none here.
      random: () => 0,
      timeout: 2000
    }
  }
}

/**
 * Announces as a restarted server does, again and again (RFC 6887 §14.1.3: up to ten times)
 * until `heard` holds: the NAT's announcement listener binds in the background, and a single
 * datagram sent before it is bound would be lost.
 */
async function announceUntil (gateway: SimulatedPmpGateway, port: number, heard: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 10 && !heard(); i++) {
    gateway.announce({ address: '127.0.0.1', port })
    try { await waitFor(heard, what, 250 * 2 ** i) } catch {}
  }
  assert.ok(heard(), `${what}, after ten announcements`)
}

test('listen -> mapped -> public address added, unconfirmed (left to AutoNAT); the router forwards the node\'s port', async (ctx) => {
  const gateway = await SimulatedPmpGateway.start({ externalAddress: '11.0.0.1' })
  const t = await startNode(ctx, pmpOptions(gateway))
  // After the node's stop (hooks run in order): it deletes its mappings on a live router.
  ctx.after(async () => { await gateway.close() })
  const port = tcpPort(t.node)
  await waitFor(() => t.mapped().length > 0, 'the public address', 5000)
  assert.deepEqual(t.mapped(), [{ address: `/ip4/11.0.0.1/tcp/${port}`, verified: false }])
  assert.deepEqual(gateway.mappings().map((m) => [m.protocol, m.internalPort, m.externalPort, m.via]), [['tcp', port, port, 'pcp']])
  assert.equal(t.nat.nat?.method, 'pcp')
  assert.ok(!t.node.getMultiaddrs().some((ma) => ma.toString().includes('11.0.0.1')), 'not announced to peers before AutoNAT confirms it')
})

test('autoConfirmAddress: the mapped address is among the node\'s own multiaddrs at once', async (ctx) => {
  const gateway = await SimulatedPmpGateway.start({ externalAddress: '11.0.0.1' })
  const t = await startNode(ctx, { ...pmpOptions(gateway), autoConfirmAddress: true })
  // After the node's stop (hooks run in order): it deletes its mappings on a live router.
  ctx.after(async () => { await gateway.close() })
  const port = tcpPort(t.node)
  await waitFor(() => t.node.getMultiaddrs().some((ma) => ma.toString().startsWith(`/ip4/11.0.0.1/tcp/${port}/p2p/`)), 'the confirmed address', 5000)
  assert.deepEqual(t.mapped(), [{ address: `/ip4/11.0.0.1/tcp/${port}`, verified: true }])
})

test('a UPnP IGD: listen -> mapped -> public address added', async (ctx) => {
  const igd = await SimulatedIgd.start({ externalAddress: '11.0.0.5' })
  const t = await startNode(ctx, {
    gateway: igd.address,
    natmapper: { methods: ['upnp'], ssdpTarget: igd.ssdpMulticastTarget, ssdpGatewayPort: igd.ssdpUnicastTarget.port, ssdpListen: false, announcements: false, timeout: 3000 }
  })
  // After the node's stop (hooks run in order): it deletes its mappings on a live router.
  ctx.after(async () => { await igd.close() })
  const port = tcpPort(t.node)
  await waitFor(() => t.mapped().length > 0, 'the public address', 5000)
  const [entry] = igd.mappings()
  assert.equal(igd.mappings().length, 1)
  assert.equal(entry?.internalPort, port)
  assert.deepEqual(t.mapped(), [{ address: `/ip4/11.0.0.5/tcp/${String(entry?.externalPort)}`, verified: false }])
  await t.node.stop()
  assert.deepEqual(igd.mappings(), [], 'deleted on stop')
})

test('router restart (announced): re-mapped on the same port, and the confirmed address is kept, never removed', async (ctx) => {
  const gateway = await SimulatedPmpGateway.start({ externalAddress: '11.0.0.1' })
  const announcePort = await freeUdpPort()
  const t = await startNode(ctx, { ...pmpOptions(gateway, announcePort), autoConfirmAddress: true })
  // After the node's stop (hooks run in order): it deletes its mappings on a live router.
  ctx.after(async () => { await gateway.close() })
  const port = tcpPort(t.node)
  await waitFor(() => t.mapped().length > 0, 'the public address', 5000)
  const lost: number[] = []
  t.nat.nat?.on('lost', (e) => lost.push(e.internalPort))
  gateway.restart()
  assert.deepEqual(gateway.mappings(), [], 'the reboot emptied the table')
  await announceUntil(gateway, announcePort, () => lost.length > 0, 'the NAT saw the loss')
  await waitFor(() => gateway.mappings().length === 1, 'the mapping back on the router', 5000)
  assert.deepEqual(lost, [port], 'the NAT saw the loss once')
  assert.equal(gateway.mappings()[0]?.externalPort, port)
  assert.deepEqual(t.mapped(), [{ address: `/ip4/11.0.0.1/tcp/${port}`, verified: true }])
  assert.deepEqual(t.removed, [], 'the address was not withdrawn during recovery')
})

test('a mapping lost for good: its address goes once the grace period is over', async (ctx) => {
  const gateway = await SimulatedPmpGateway.start({ externalAddress: '11.0.0.1' })
  const announcePort = await freeUdpPort()
  const clock = new FakeClock()
  const t = await startNode(ctx, { ...pmpOptions(gateway, announcePort), clock, lostMappingGraceMs: 30_000 })
  // After the node's stop (hooks run in order): it deletes its mappings on a live router.
  ctx.after(async () => { await gateway.close() })
  const port = tcpPort(t.node)
  await waitFor(() => t.mapped().length > 0, 'the public address', 5000)
  // The rebooted router refuses every new mapping: the NAT keeps trying, the address must go.
  gateway.faults.refuseWith = { pcp: 2, natpmp: 2 }
  gateway.restart()
  await announceUntil(gateway, announcePort, () => clock.pendingTimers > 0, 'the grace timer')
  assert.deepEqual(t.removed, [], 'kept during the grace period')
  await clock.advance(30_000)
  await waitFor(() => t.removed.length === 1, 'the address removed')
  assert.deepEqual(t.removed, [`11.0.0.1:${port}/tcp`])
  assert.deepEqual(t.mapped(), [])
})

test('external address change (NAT-PMP announcement): the announced address is replaced', async (ctx) => {
  const gateway = await SimulatedPmpGateway.start({ externalAddress: '11.0.0.1', pcp: false })
  const announcePort = await freeUdpPort()
  const t = await startNode(ctx, { ...pmpOptions(gateway, announcePort), autoConfirmAddress: true })
  // After the node's stop (hooks run in order): it deletes its mappings on a live router.
  ctx.after(async () => { await gateway.close() })
  const port = tcpPort(t.node)
  await waitFor(() => t.mapped().length > 0, 'the public address', 5000)
  gateway.externalAddress = '11.0.0.99'
  await announceUntil(gateway, announcePort, () => t.mapped().some((a) => a.address.includes('11.0.0.99')), 'the new address')
  assert.deepEqual(t.mapped(), [{ address: `/ip4/11.0.0.99/tcp/${port}`, verified: true }])
  assert.deepEqual(t.removed, [`11.0.0.1:${port}/tcp`])
  assert.ok(t.node.getMultiaddrs().every((ma) => !ma.toString().includes('11.0.0.1/')), 'the old one is no longer the node\'s')
})

for (const [external, kind] of [['100.64.0.1', /carrier-grade NAT/], ['192.168.1.1', /double NAT/]] as const) {
  test(`not public (${external}): mapped on the router but nothing announced`, async (ctx) => {
    const gateway = await SimulatedPmpGateway.start({ externalAddress: external })
    const t = await startNode(ctx, { ...pmpOptions(gateway), autoConfirmAddress: true })
    // After the node's stop (hooks run in order): it deletes its mappings on a live router.
    ctx.after(async () => { await gateway.close() })
    await waitFor(() => gateway.mappings().length === 1 && t.nat.nat?.notPublicReason !== undefined, 'the mapping and the reason', 5000)
    await new Promise((resolve) => setImmediate(resolve))
    assert.match(t.nat.nat?.notPublicReason ?? '', kind)
    assert.deepEqual(t.mapped(), [])
    assert.deepEqual(t.nat.announced(), [])
  })
}

test('stop: every mapping deleted on the router, every address removed', async (ctx) => {
  const gateway = await SimulatedPmpGateway.start({ externalAddress: '11.0.0.1' })
  const t = await startNode(ctx, { ...pmpOptions(gateway), autoConfirmAddress: true }, ['/ip4/127.0.0.1/tcp/0', '/ip4/127.0.0.1/tcp/0'])
  // After the node's stop (hooks run in order): it deletes its mappings on a live router.
  ctx.after(async () => { await gateway.close() })
  await waitFor(() => t.mapped().length === 2, 'both public addresses', 5000)
  const ports = gateway.mappings().map((m) => m.internalPort).sort()
  assert.equal(ports.length, 2)
  await t.node.stop()
  assert.deepEqual(gateway.mappings(), [], 'nothing left on the router')
  assert.deepEqual(t.removed.sort(), ports.map((p) => `11.0.0.1:${p}/tcp`).sort())
  assert.deepEqual(t.nat.announced(), [])
  assert.equal(t.nat.nat, undefined)
})

test('no gateway: start() resolves at once, the node works, and the search is tried again later (back-off)', async (ctx) => {
  const silentPort = await freeUdpPort()
  const clock = new FakeClock()
  const started = performance.now()
  const t = await startNode(ctx, {
    gateway: '127.0.0.1',
    clock,
    initialGatewaySearchInterval: 10_000,
    natmapper: { port: silentPort, methods: ['pcp', 'natpmp'], announcements: false, ssdpListen: false, ssdpTarget: false, timeout: 1000 }
  })
  const startMs = performance.now() - started
  assert.ok(t.node.status === 'started')
  assert.ok(startMs < 1000, `createLibp2p + start in ${startMs.toFixed(0)} ms`)
  tcpPort(t.node)
  // The first search fails (nothing on the port), and a retry is scheduled on the service's clock.
  await waitFor(() => clock.pendingTimers === 1, 'the retry timer', 5000)
  assert.deepEqual(t.mapped(), [])
  // A router appears on that port; the retry finds it.
  const gateway = await SimulatedPmpGateway.start({ port: silentPort, externalAddress: '11.0.0.1' })
  ctx.after(async () => { await gateway.close() })
  await clock.advance(10_000)
  await waitFor(() => t.mapped().length === 1, 'the public address after the retry', 5000)
  assert.equal(gateway.mappings().length, 1)
})
