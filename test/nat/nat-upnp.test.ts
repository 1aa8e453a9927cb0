import { test } from 'node:test'
import assert from 'node:assert/strict'
import { discoverNAT } from '../../src/nat/discover-nat.js'
import { startIgd } from '../upnp/setup.js'
import { waitFor } from '../helpers/wait.js'
import { freeUdpPort } from '../helpers/net.js'

test('a UPnP router that restarts on another HTTP port: its ssdp:alive brings the mappings back at once, on their ports', async (ctx) => {
  const igd = await startIgd(ctx)
  const listenPort = await freeUdpPort()
  igd.notifyTargets = [{ address: '127.0.0.1', port: listenPort }]
  const nat = await discoverNAT({
    gateway: igd.address,
    methods: ['upnp'],
    ssdpTarget: igd.ssdpMulticastTarget,
    ssdpGatewayPort: igd.ssdpUnicastTarget.port,
    ssdpListen: { group: '127.0.0.1', port: listenPort },
    timeout: 3000
  })
  ctx.after(async () => { await nat.close() })
  assert.equal(nat.method, 'upnp')
  await nat.addMapping('tcp', 4001)
  await nat.addMapping('udp', 4002)
  // The restart is said as it is: each mapping lost, then mapped again.
  const events: string[] = []
  nat.on('lost', (e) => events.push(`lost ${e.internalPort}`))
  nat.on('mapped', (m) => events.push(`mapped ${m.internalPort}`))
  nat.on('renewed', (m) => events.push(`renewed ${m.internalPort}`))
  const ports = igd.mappings().map((m) => m.externalPort).sort()
  const oldHttpPort = igd.httpPort
  const restartedAt = Date.now()
  await igd.restart()
  assert.notEqual(igd.httpPort, oldHttpPort)
  await waitFor(() => igd.mappings().length === 2, 'both mappings back', 3000)
  const recoveryMs = Date.now() - restartedAt
  assert.deepEqual(igd.mappings().map((m) => m.externalPort).sort(), ports)
  assert.ok(recoveryMs < 1000, `recovered in ${recoveryMs} ms`)
  await waitFor(() => events.filter((e) => e.startsWith('mapped')).length === 2, 'mapped events')
  assert.deepEqual(events.slice(0, 2).sort(), ['lost 4001', 'lost 4002'], 'lost first')
  assert.deepEqual(events.slice(2).sort(), ['mapped 4001', 'mapped 4002'], 'then mapped, not renewed')
  await nat.close()
  assert.deepEqual(igd.mappings(), [], 'close deleted both on the restarted router')
})

/** discoverNAT for `igd` alone, over loopback, with no listener. */
async function discoverUpnp (igd: Awaited<ReturnType<typeof startIgd>>): Promise<Awaited<ReturnType<typeof discoverNAT>>> {
  return await discoverNAT({
    gateway: igd.address,
    methods: ['upnp'],
    ssdpTarget: igd.ssdpMulticastTarget,
    ssdpGatewayPort: igd.ssdpUnicastTarget.port,
    ssdpListen: false,
    timeout: 3000
  })
}

test('discoverNAT on UPnP does not wait for the external address: asked alongside the first add, or by the NAT when no mapping is asked for', async (ctx) => {
  const igd = await startIgd(ctx, { externalAddress: '198.51.100.30' })
  igd.quirks.httpDelayMs = 20
  const nat = await discoverUpnp(igd)
  ctx.after(async () => { await nat.close() })
  const events: string[] = []
  nat.on('external-address', (e) => events.push(e.address))
  await nat.addMapping('tcp', 4001)
  assert.deepEqual(nat.getMapping('tcp', 4001), { address: '198.51.100.30', port: 4001 })
  assert.equal(nat.externalAddress, '198.51.100.30')
  assert.deepEqual(events, ['198.51.100.30'])
  assert.equal(igd.count('http', 'GetExternalIPAddress'), 1, 'asked once, alongside the first add; the NAT then found the address known')
  assert.equal(igd.maxConcurrentHttp, 2, 'the first add did not wait for it')

  const idle = await startIgd(ctx, { externalAddress: '198.51.100.31' })
  const quiet = await discoverUpnp(idle)
  ctx.after(async () => { await quiet.close() })
  assert.equal(quiet.externalAddress, undefined, 'not yet asked when discoverNAT returns')
  await waitFor(() => quiet.externalAddress === '198.51.100.31', 'the external address without any mapping')
})

test('discoverNAT on a UPnP gateway with no external address (miniupnpd behind a reserved WAN address): notPublicReason, and nothing left on the router', async (ctx) => {
  const igd = await startIgd(ctx, { externalAddress: '' })
  const nat = await discoverUpnp(igd)
  ctx.after(async () => { await nat.close() })
  const errors: Error[] = []
  nat.on('error', (err) => errors.push(err))
  await nat.addMapping('tcp', 4001)
  assert.equal(nat.getMapping('tcp', 4001), undefined)
  assert.match(nat.notPublicReason ?? '', /double NAT/)
  assert.match(errors[0]?.message ?? '', /no public external address/)
  assert.deepEqual(igd.mappings(), [], 'the add made alongside the address was taken back')
  await nat.close()
  assert.deepEqual(igd.mappings(), [])
})

test('issue 18 point 7: close() does not delete what another program of this host put over our mapping; it says so (error event)', async (ctx) => {
  const igd = await startIgd(ctx)
  const nat = await discoverNAT({ gateway: igd.address, methods: ['upnp'], ssdpTarget: igd.ssdpMulticastTarget, ssdpGatewayPort: igd.ssdpUnicastTarget.port, ssdpListen: false, announcements: false, timeout: 3000 })
  const errors: Error[] = []
  nat.on('error', (err) => errors.push(err))
  await nat.addMapping('tcp', 4001)
  await nat.addMapping('tcp', 4002)
  // Another program adds over 4001 (miniupnpd lets it: same internal client).
  igd.occupy(4001, 'TCP', '127.0.0.1', { internalPort: 4009, description: 'other program' })
  await nat.close()
  assert.deepEqual(igd.mappings().map((m) => `${m.externalPort}->${m.internalPort} ${m.description}`), ['4001->4009 other program'], 'ours (4002) deleted, theirs kept')
  assert.equal(errors.length, 1)
  assert.match(errors[0]!.message, /not deleting UPnP TCP external port 4001/)
})
