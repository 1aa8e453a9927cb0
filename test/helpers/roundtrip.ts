import assert from 'node:assert/strict'
import fc from 'fast-check'
import { MalformedPacketError } from '../../src/errors.js'

/** One message type's pair of functions, e.g. encodePcpRequest/decodePcpRequest. */
export interface Codec<T> {
  encode: (value: T) => Uint8Array
  decode: (bytes: Uint8Array) => T
}

/**
 * The one round-trip check every codec family uses. For a valid `value` it asserts:
 *
 * - decode(encode(value)) deep-equals value;
 * - encoding is canonical: encoding the decoded value gives the same bytes again;
 * - `expectedBytes`, when given, is what encode produced (golden fixtures);
 * - decoding works on a view into a larger buffer at an odd offset, as a Node Buffer from a
 *   socket can be (catches DataViews built on `bytes.buffer` without `byteOffset`);
 * - neither direction modifies its input.
 *
 * Returns the encoded bytes.
 */
export function assertRoundTrip<T> (codec: Codec<T>, value: T, expectedBytes?: Uint8Array): Uint8Array {
  const before = structuredClone(value)
  const bytes = codec.encode(value)
  assert.deepStrictEqual(value, before, 'encode modified its input')
  if (expectedBytes !== undefined) assert.deepStrictEqual(hex(bytes), hex(expectedBytes), 'encoded bytes differ from the fixture')

  const copy = bytes.slice()
  const decoded = codec.decode(bytes)
  assert.deepStrictEqual(bytes, copy, 'decode modified its input')
  assert.deepStrictEqual(decoded, value)
  assert.deepStrictEqual(hex(codec.encode(decoded)), hex(bytes), 're-encoding the decoded value gave other bytes')

  assert.deepStrictEqual(codec.decode(atOddOffset(bytes)), value, 'decoding a view at an offset gave another value')
  return bytes
}

/** The same bytes as a view 3 bytes into a larger buffer whose other bytes are 0xee. */
export function atOddOffset (bytes: Uint8Array): Uint8Array {
  const backing = new Uint8Array(bytes.length + 7).fill(0xee)
  backing.set(bytes, 3)
  return backing.subarray(3, 3 + bytes.length)
}

function hex (bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join(' ')
}

/**
 * The decode contract for arbitrary input: `decode` either returns a value, or throws the
 * codec's MalformedPacketError with an offset inside the input, and nothing else (no
 * RangeError from a DataView, no TypeError). A returned value must survive the round trip:
 * encoding it and decoding again gives the same value, so whatever a decoder accepts, the
 * encoder can express. Returns which of the two happened.
 */
export function assertDecodesOrMalformed<T> (codec: Codec<T>, bytes: Uint8Array): 'decoded' | 'malformed' {
  const copy = bytes.slice()
  let value: T
  try {
    value = codec.decode(bytes)
  } catch (err) {
    if (!(err instanceof MalformedPacketError)) throw new assert.AssertionError({ message: `decode threw something other than MalformedPacketError for ${hex(bytes)}: ${String(err)}` })
    assert.ok(Number.isInteger(err.offset) && err.offset >= 0 && err.offset <= bytes.length, `offset ${err.offset} outside 0..${bytes.length}`)
    assert.ok(err.reason.length > 0)
    assert.deepStrictEqual(bytes, copy, 'decode modified its input')
    return 'malformed'
  }
  assert.deepStrictEqual(bytes, copy, 'decode modified its input')
  assert.deepStrictEqual(codec.decode(codec.encode(value)), value, `decoded value does not survive a round trip: ${hex(bytes)}`)
  return 'decoded'
}

type Mutation =
  | { kind: 'flip', index: number, bit: number }
  | { kind: 'set', index: number, value: number }
  | { kind: 'truncate', length: number }
  | { kind: 'extend', bytes: Uint8Array }

const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.tuple(fc.nat(), fc.integer({ min: 0, max: 7 })).map(([index, bit]): Mutation => ({ kind: 'flip', index, bit })),
  fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })).map(([index, value]): Mutation => ({ kind: 'set', index, value })),
  fc.nat().map((length): Mutation => ({ kind: 'truncate', length })),
  // Whole 4-byte words as well as odd lengths, so PCP's multiple-of-4 rule does not stop them all.
  fc.oneof(fc.uint8Array({ maxLength: 40 }), fc.integer({ min: 1, max: 10 }).chain((words) => fc.uint8Array({ minLength: words * 4, maxLength: words * 4 })))
    .map((bytes): Mutation => ({ kind: 'extend', bytes }))
)

function applyMutation (bytes: Uint8Array, m: Mutation): Uint8Array {
  switch (m.kind) {
    case 'flip': {
      if (bytes.length === 0) return bytes
      const out = bytes.slice()
      out[m.index % out.length]! ^= 1 << m.bit
      return out
    }
    case 'set': {
      if (bytes.length === 0) return bytes
      const out = bytes.slice()
      out[m.index % out.length] = m.value
      return out
    }
    case 'truncate':
      return bytes.slice(0, m.length % (bytes.length + 1))
    case 'extend': {
      const out = new Uint8Array(bytes.length + m.bytes.length)
      out.set(bytes)
      out.set(m.bytes, bytes.length)
      return out
    }
  }
}

/** Valid packets with one to four bit flips, byte overwrites, truncations or extensions. */
export function mutated (valid: fc.Arbitrary<Uint8Array>): fc.Arbitrary<Uint8Array> {
  return fc.tuple(valid, fc.array(mutation, { minLength: 1, maxLength: 4 }))
    .map(([bytes, mutations]) => mutations.reduce(applyMutation, bytes))
}
