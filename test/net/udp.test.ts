import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createSocket } from 'node:dgram'
import { systemClock } from '../../src/clock.js'
import { AbortError } from '../../src/errors.js'
import { exchange } from '../../src/net/udp.js'

const options = { from: { address: '127.0.0.1', port: 9 }, accept: () => undefined, clock: systemClock, initialTimeoutMs: 1000, maxAttempts: 1, label: 'test' }

test('exchange on a socket closed meanwhile rejects at once and leaves no listener behind', async () => {
  const socket = createSocket('udp4')
  await new Promise<void>((resolve) => { socket.connect(9, '127.0.0.1', resolve) })
  socket.close()
  const controller = new AbortController()
  await assert.rejects(exchange({ ...options, socket, payload: new Uint8Array(4), signal: controller.signal }), { code: 'ERR_SOCKET_DGRAM_NOT_RUNNING' })
  assert.equal(socket.listenerCount('message'), 0)
  assert.equal(socket.listenerCount('error'), 0)
  // Its abort listener was never added: aborting now reaches nothing.
  controller.abort()
})

test('exchange: an abort after the request has left ends it with AbortError and removes its listeners', async () => {
  const socket = createSocket('udp4')
  await new Promise<void>((resolve) => { socket.bind(0, '127.0.0.1', resolve) })
  const peer = createSocket('udp4')
  await new Promise<void>((resolve) => { peer.bind(0, '127.0.0.1', resolve) })
  await new Promise<void>((resolve) => { socket.connect(peer.address().port, '127.0.0.1', resolve) })
  const received = new Promise<void>((resolve) => { peer.once('message', () => { resolve() }) })
  const controller = new AbortController()
  const pending = exchange({ ...options, from: { address: '127.0.0.1', port: peer.address().port }, socket, payload: new Uint8Array(4), signal: controller.signal })
  await received
  controller.abort()
  await assert.rejects(pending, AbortError)
  assert.equal(socket.listenerCount('message'), 0)
  assert.equal(socket.listenerCount('error'), 0)
  socket.close()
  peer.close()
})

test('exchange: a socket closed between retransmissions ends the exchange with the error instead of throwing from the timer', async () => {
  const socket = createSocket('udp4')
  const silent = createSocket('udp4')
  await new Promise<void>((resolve) => { silent.bind(0, '127.0.0.1', resolve) })
  await new Promise<void>((resolve) => { socket.connect(silent.address().port, '127.0.0.1', resolve) })
  const first = new Promise<void>((resolve) => { silent.once('message', () => { resolve() }) })
  const pending = exchange({ ...options, from: { address: '127.0.0.1', port: silent.address().port }, socket, payload: new Uint8Array(4), initialTimeoutMs: 20, maxAttempts: 3 })
  await first
  socket.close()
  await assert.rejects(pending, { code: 'ERR_SOCKET_DGRAM_NOT_RUNNING' })
  silent.close()
})
