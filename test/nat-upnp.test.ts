import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createSocket } from 'node:dgram'
import { discoverNAT } from '../src/discover.js'
import { startIgd } from './upnp/setup.js'
import { waitFor } from './helpers/wait.js'

async function freeUdpPort (): Promise<number> {
  const socket = createSocket('udp4')
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve))
  const { port } = socket.address()
  await new Promise<void>((resolve) => socket.close(() => { resolve() }))
  return port
}

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
  const renewed: number[] = []
  nat.on('renewed', (m) => renewed.push(m.externalPort))
  await nat.addMapping('tcp', 4001)
  await nat.addMapping('udp', 4002)
  const ports = igd.mappings().map((m) => m.externalPort).sort()
  const oldHttpPort = igd.httpPort
  const restartedAt = Date.now()
  await igd.restart()
  assert.notEqual(igd.httpPort, oldHttpPort)
  await waitFor(() => igd.mappings().length === 2, 'both mappings back', 3000)
  const recoveryMs = Date.now() - restartedAt
  assert.deepEqual(igd.mappings().map((m) => m.externalPort).sort(), ports)
  assert.ok(recoveryMs < 1000, `recovered in ${recoveryMs} ms`)
  await waitFor(() => renewed.length === 2, 'renewed events')
  await nat.close()
  assert.deepEqual(igd.mappings(), [], 'close deleted both on the restarted router')
})
