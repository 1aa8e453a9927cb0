// The shared gateway socket with many requests in flight: replies routed by key, at most
// maxInFlight requests sent at once, and the wait for a slot counted against the timeout.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createSocket } from 'node:dgram'
import { GatewaySocket } from '../../src/net/gateway-socket.js'
import { PcpClient } from '../../src/pcp/client.js'
import { SimulatedPmpGateway } from '../../src/testing/pmp-gateway.js'
import { FakeClock } from '../../src/testing/fake-clock.js'
import { TimeoutError } from '../../src/errors.js'

test('200 PCP mappings at once: one request each, every reply reaches its own request', async (t) => {
  const router = await SimulatedPmpGateway.start()
  const client = new PcpClient({ gateway: router.address, port: router.port })
  t.after(async () => { client.close(); await router.close() })
  const ports = Array.from({ length: 200 }, (_v, i) => 30000 + i)
  const mappings = await Promise.all(ports.map(async (internalPort) => await client.map({ protocol: 'tcp', internalPort, lifetimeSeconds: 600 })))
  assert.deepEqual(mappings.map((m) => m.internalPort), ports)
  assert.equal(router.requestCount, 200, 'no retransmission: no reply was missed or handled late')
  await Promise.all(mappings.map(async (m) => { await client.unmap(m) }))
  assert.equal(router.mappings().length, 0)
  assert.equal(router.requestCount, 400)
})

test('at most maxInFlight requests are sent at once; the rest wait their turn', async (t) => {
  // A server that counts what it has received and answers nothing until told to.
  const server = createSocket('udp4')
  await new Promise<void>((resolve) => { server.bind(0, '127.0.0.1', resolve) })
  const received: Array<{ port: number, message: Buffer }> = []
  server.on('message', (message, rinfo) => { received.push({ port: rinfo.port, message }) })
  const clock = new FakeClock()
  const socket = new GatewaySocket({ gateway: '127.0.0.1', port: server.address().port, clock, maxInFlight: 3 })
  t.after(() => { socket.close(); server.close() })
  const answers = Array.from({ length: 5 }, async (_v, i) => await socket.request(`r${i}`, Uint8Array.of(i), (m) => m[0] === i ? i : undefined, { timeoutMs: 60_000 }))
  await waitUntil(() => received.length >= 3)
  await new Promise((resolve) => { setTimeout(resolve, 50) })
  assert.deepEqual(received.map((r) => r.message[0]), [0, 1, 2], 'three sent, two waiting')
  const reply = (i: number): void => { server.send(Uint8Array.of(i), received[0]!.port, '127.0.0.1') }
  reply(1)
  assert.equal(await answers[1], 1)
  await waitUntil(() => received.length >= 4)
  assert.equal(received[3]!.message[0], 3, 'the slot went to the next request in line')
  for (const i of [0, 2, 3]) reply(i)
  await waitUntil(() => received.length >= 5)
  reply(4)
  assert.deepEqual(await Promise.all(answers), [0, 1, 2, 3, 4])
})

test('the wait for a slot counts against the request\'s timeout', async (t) => {
  const server = createSocket('udp4')
  await new Promise<void>((resolve) => { server.bind(0, '127.0.0.1', resolve) })
  const clock = new FakeClock()
  const socket = new GatewaySocket({ gateway: '127.0.0.1', port: server.address().port, clock, maxInFlight: 1, initialTimeoutMs: 250, maxAttempts: 100 })
  t.after(() => { socket.close(); server.close() })
  const first = socket.request('first', Uint8Array.of(1), () => undefined, { timeoutMs: 10_000 })
  const second = socket.request('second', Uint8Array.of(2), () => undefined, { timeoutMs: 1000 })
  first.catch(() => {})
  second.catch(() => {})
  await clock.advance(1000)
  await assert.rejects(second, (err: Error) => err instanceof TimeoutError && /second: not sent within 1000 ms/.test(err.message))
  await clock.advance(10_000)
  await assert.rejects(first, TimeoutError)
})

async function waitUntil (check: () => boolean): Promise<void> {
  const deadline = performance.now() + 5000
  while (!check()) {
    if (performance.now() > deadline) throw new Error('timed out')
    await new Promise((resolve) => { setTimeout(resolve, 5) })
  }
}
