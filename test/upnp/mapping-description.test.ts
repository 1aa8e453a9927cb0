import { test } from 'node:test'
import assert from 'node:assert/strict'
import { UsageError } from '../../src/errors.js'
import { capDescription, MAX_MAPPING_DESCRIPTION_BYTES } from '../../src/upnp/mapping-description.js'
import { escapeXml } from '../../src/upnp/soap.js'

const sentBytes = (text: string): number => Buffer.byteLength(escapeXml(text), 'utf8')

test('capDescription: 63 bytes as sent (miniupnpd desc[64]); shorter text unchanged', () => {
  assert.equal(MAX_MAPPING_DESCRIPTION_BYTES, 63)
  assert.equal(capDescription('natmapper'), 'natmapper')
  assert.equal(capDescription('a'.repeat(63)), 'a'.repeat(63))
  assert.equal(capDescription('a'.repeat(64)), 'a'.repeat(63))
  assert.equal(capDescription(''), '')
})

test('capDescription never cuts inside an entity: the escaped form counts, and an entity that does not fit goes whole', () => {
  // 60 + '&amp;' = 65 bytes escaped: the '&' does not fit, and neither does anything after it.
  const text = `${'x'.repeat(60)} & more`
  assert.equal(capDescription(text), `${'x'.repeat(60)} `)
  for (const special of ['&', '<', '>', '"', "'", '\r']) {
    for (let pad = 55; pad <= 63; pad++) {
      const capped = capDescription(`${'y'.repeat(pad)}${special}tail`)
      assert.ok(sentBytes(capped) <= 63, `${pad} + ${JSON.stringify(special)}: ${sentBytes(capped)} bytes`)
      assert.ok(capped === 'y'.repeat(pad) || capped.startsWith(`${'y'.repeat(pad)}${special}`), JSON.stringify(capped))
    }
  }
})

test('capDescription cuts on a code point: no half UTF-8 sequence, no lone surrogate', () => {
  const text = 'é'.repeat(40) // 2 bytes each: 31 fit (62 bytes)
  assert.equal(capDescription(text), 'é'.repeat(31))
  const emoji = `${'z'.repeat(61)}\u{1f600}` // 4 bytes: 65 in all, the emoji goes whole
  assert.equal(capDescription(emoji), 'z'.repeat(61))
  assert.equal(capDescription(`${'z'.repeat(59)}\u{1f600}`), `${'z'.repeat(59)}\u{1f600}`, '59 + 4 = 63 bytes fit')
})

test('capDescription refuses what XML cannot carry, as escapeXml does', () => {
  assert.throws(() => capDescription('bell\u0007'), UsageError)
})
