// The shared gateway socket with many requests in flight: replies routed by key, at most
// maxInFlight requests sent at once, and the wait for a slot counted against the timeout.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createSocket } from 'node:dgram'
import { createUdpSocket } from '../../src/net/udp.js'
import { GatewaySocket } from '../../src/net/gateway-socket.js'
import { mapReplyKey, PcpClient } from '../../src/port-control/pcp-client.js'
import { encodePcpResponse } from '../../src/pcp/codec.js'
import { PcpOpcode } from '../../src/pcp/codes.js'
import { SimulatedPmpGateway } from '../../src/testing/pmp-gateway.js'
import { FakeClock } from '../../src/testing/fake-clock.js'
import { waitFor } from '../helpers/wait.js'
import { TimeoutError } from '../../src/errors.js'
import { mapChecked } from '../../src/gateway.js'

test('200 PCP mappings at once: one request each, every reply reaches its own request', async (t) => {
  const router = await SimulatedPmpGateway.start()
  const client = new PcpClient({ gateway: router.address, port: router.port })
  t.after(async () => { client.close(); await router.close() })
  const ports = Array.from({ length: 200 }, (_v, i) => 30000 + i)
  const mappings = await Promise.all(ports.map(async (internalPort) => await mapChecked(client, { protocol: 'tcp', internalPort, lifetimeSeconds: 600 })))
  assert.deepEqual(mappings.map((m) => m.internalPort), ports)
  assert.equal(router.requestCount, 200, 'no retransmission: no reply was missed or handled late')
  await Promise.all(mappings.map(async (m) => { await client.unmap(m) }))
  assert.equal(router.mappings().length, 0)
  assert.equal(router.requestCount, 400)
})

test('a reply with a key reaches only the requests waiting under that key; one without reaches all', async (t) => {
  const server = createSocket('udp4')
  await new Promise<void>((resolve) => { server.bind(0, '127.0.0.1', resolve) })
  let clientPort = 0
  server.on('message', (_m, rinfo) => { clientPort = rinfo.port })
  const socket = new GatewaySocket({ gateway: '127.0.0.1', port: server.address().port, clock: new FakeClock(), replyKey: (m) => m[0] === 0 ? undefined : String(m[0]) })
  t.after(() => { socket.close(); server.close() })
  const seen = { a: [] as number[], b: [] as number[] }
  const a = socket.request('a', Uint8Array.of(1), (m) => { seen.a.push(m[0]!); return m[0] === 1 ? 'a' : undefined }, { key: '1' })
  const b = socket.request('b', Uint8Array.of(2), (m) => { seen.b.push(m[0]!); return m[0] === 2 ? 'b' : undefined }, { key: '2' })
  await waitFor(() => clientPort !== 0, 'clientPort !== 0')
  for (const byte of [0, 1, 2]) server.send(Uint8Array.of(byte), clientPort, '127.0.0.1')
  assert.deepEqual(await Promise.all([a, b]), ['a', 'b'])
  assert.deepEqual(seen, { a: [0, 1], b: [0, 2] })
})

test('mapReplyKey reads the nonce of a MAP reply and nothing else', () => {
  const nonce = Uint8Array.from({ length: 12 }, (_v, i) => i + 1)
  const map = { nonce, protocol: 6, internalPort: 7001, externalPort: 7001, externalAddress: '11.0.0.1' }
  const reply = encodePcpResponse({ version: 2, opcode: PcpOpcode.MAP, resultCode: 0, lifetimeSeconds: 60, epochSeconds: 1, map, options: [] })
  assert.equal(mapReplyKey(reply), '0102030405060708090a0b0c')
  assert.equal(mapReplyKey(reply.subarray(0, 30)), undefined)
  const announce = encodePcpResponse({ version: 2, opcode: PcpOpcode.ANNOUNCE, resultCode: 0, lifetimeSeconds: 0, epochSeconds: 1, options: [] })
  assert.equal(mapReplyKey(announce), undefined)
})

test('at most maxInFlight requests are sent at once; the rest wait their turn', async (t) => {
  // A server that counts what it has received and answers nothing until told to.
  const server = createSocket('udp4')
  await new Promise<void>((resolve) => { server.bind(0, '127.0.0.1', resolve) })
  const received: Array<{ port: number, message: Buffer }> = []
  server.on('message', (message, rinfo) => { received.push({ port: rinfo.port, message }) })
  const clock = new FakeClock()
  // Counts what leaves, as it leaves: the requests not sent are waiting, not late.
  let sends = 0
  const countingSocket = (type: 'udp4' | 'udp6'): ReturnType<typeof createUdpSocket> => {
    const s = createUdpSocket({ type })
    const send = s.send.bind(s) as (...args: unknown[]) => void
    s.send = ((...args: unknown[]) => { sends++; send(...args) }) as typeof s.send
    return s
  }
  const socket = new GatewaySocket({ gateway: '127.0.0.1', port: server.address().port, clock, maxInFlight: 3, createSocket: countingSocket })
  t.after(() => { socket.close(); server.close() })
  const answers = Array.from({ length: 5 }, async (_v, i) => await socket.request(`r${i}`, Uint8Array.of(i), (m) => m[0] === i ? i : undefined, { timeoutMs: 60_000 }))
  await waitFor(() => received.length >= 3, 'received.length >= 3')
  assert.equal(sends, 3, 'three sent, two waiting')
  assert.deepEqual(received.map((r) => r.message[0]), [0, 1, 2])
  const reply = (i: number): void => { server.send(Uint8Array.of(i), received[0]!.port, '127.0.0.1') }
  reply(1)
  assert.equal(await answers[1], 1)
  await waitFor(() => received.length >= 4, 'received.length >= 4')
  assert.equal(received[3]!.message[0], 3, 'the slot went to the next request in line')
  for (const i of [0, 2, 3]) reply(i)
  await waitFor(() => received.length >= 5, 'received.length >= 5')
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
  await assert.rejects(second, (err: Error) => err instanceof TimeoutError && /second #2: not sent within 1000 ms/.test(err.message))
  await clock.advance(10_000)
  await assert.rejects(first, TimeoutError)
})
