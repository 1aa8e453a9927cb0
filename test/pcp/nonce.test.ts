import { mock, test } from 'node:test'
import assert from 'node:assert/strict'
import crypto from 'node:crypto'
import { randomNonce } from '../../src/pcp/nonce.js'

test('randomNonce: 96 bits, a different value each time', () => {
  const seen = new Set<string>()
  for (let i = 0; i < 1000; i++) {
    const nonce = randomNonce()
    assert.equal(nonce.length, 12)
    seen.add(Buffer.from(nonce).toString('hex'))
  }
  assert.equal(seen.size, 1000)
  // Each byte value shows up across 12,000 random bytes (a stuck or zeroed source would not).
  const counts = new Array<number>(256).fill(0)
  for (const hex of seen) for (const byte of Buffer.from(hex, 'hex')) counts[byte]!++
  assert.ok(counts.every((c) => c > 0), 'every byte value seen')
})

test('randomNonce takes its bytes from node:crypto, on every platform', () => {
  const fill = mock.method(crypto, 'randomFillSync')
  try {
    const nonce = randomNonce()
    assert.equal(fill.mock.callCount(), 1)
    assert.equal(fill.mock.calls[0]!.result, nonce)
  } finally {
    fill.mock.restore()
  }
})
