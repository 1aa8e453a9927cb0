import { test, describe } from 'node:test'
import assert from 'node:assert/strict'
import fc from 'fast-check'
import { MalformedPacketError, UsageError } from '../../src/errors.js'
import {
  decodeNatPmpRequest,
  decodeNatPmpResponse,
  encodeNatPmpRequest,
  encodeNatPmpResponse
} from '../../src/natpmp/codec.js'
import type { NatPmpRequest, NatPmpResponse } from '../../src/natpmp/codec.js'
import { NatPmpResultCode, natPmpResultName } from '../../src/natpmp/codes.js'
import { fromHex } from '../fixtures/packets/hex.js'
import { malformedNatPmpRequests, malformedNatPmpResponses, natPmpRequests, natPmpResponses } from '../fixtures/packets/natpmp.js'
import { assertDecodesOrMalformed, assertRoundTrip, atOddOffset, mutated } from '../helpers/roundtrip.js'
import type { Codec } from '../helpers/roundtrip.js'

const FUZZ_RUNS = 10_000
const ROUND_TRIP_RUNS = 2_000

const requestCodec: Codec<NatPmpRequest> = { encode: encodeNatPmpRequest, decode: decodeNatPmpRequest }
function responseCodec (length?: 8 | 12 | 16): Codec<NatPmpResponse> {
  return { encode: (r) => encodeNatPmpResponse(r, length === undefined ? undefined : { length }), decode: decodeNatPmpResponse }
}

function assertMalformed (fn: () => unknown, offset: number): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof MalformedPacketError, `expected MalformedPacketError, got ${String(err)}`)
    assert.equal(err.offset, offset, `offset (${err.reason})`)
    assert.equal(err.code, 'NATMAPPER_MALFORMED_PACKET')
    return true
  })
}

// Arbitrary valid messages -------------------------------------------------------------------

const port = fc.integer({ min: 0, max: 0xffff })
const uint32 = fc.integer({ min: 0, max: 0xffffffff })
const protocol = fc.constantFrom<'tcp' | 'udp'>('tcp', 'udp')
const ipv4 = fc.tuple(fc.nat(255), fc.nat(255), fc.nat(255), fc.nat(255)).map((parts) => parts.join('.'))

const anyRequest: fc.Arbitrary<NatPmpRequest> = fc.oneof(
  fc.constant<NatPmpRequest>({ opcode: 'external-address' }),
  fc.tuple(protocol, port, port, uint32).map(([protocol, internalPort, suggestedExternalPort, lifetimeSeconds]): NatPmpRequest =>
    ({ opcode: 'map', protocol, internalPort, suggestedExternalPort, lifetimeSeconds }))
)

/** A response and a `length` option that suits it (undefined = the natural length). */
const anyResponse: fc.Arbitrary<[NatPmpResponse, 8 | 12 | 16 | undefined]> = fc.oneof(
  fc.tuple(uint32, ipv4, fc.constantFrom<12 | 16 | undefined>(undefined, 12, 16))
    .map(([epochSeconds, externalAddress, length]): [NatPmpResponse, 8 | 12 | 16 | undefined] =>
      [{ opcode: 'external-address', resultCode: 0, epochSeconds, externalAddress }, length]),
  fc.tuple(protocol, uint32, port, port, uint32, fc.constantFrom<16 | undefined>(undefined, 16))
    .map(([protocol, epochSeconds, internalPort, externalPort, lifetimeSeconds, length]): [NatPmpResponse, 8 | 12 | 16 | undefined] =>
      [{ opcode: 'map', resultCode: 0, protocol, epochSeconds, internalPort, externalPort, lifetimeSeconds }, length]),
  fc.tuple(fc.integer({ min: 0, max: 127 }), fc.integer({ min: 1, max: 0xffff }), uint32, fc.constantFrom<8 | 12 | 16 | undefined>(undefined, 8, 12, 16))
    .map(([requestOpcode, resultCode, epochSeconds, length]): [NatPmpResponse, 8 | 12 | 16 | undefined] =>
      [{ opcode: 'error', requestOpcode, resultCode, epochSeconds }, length])
)

// Golden packets -----------------------------------------------------------------------------

describe('NAT-PMP request fixtures', () => {
  for (const fixture of natPmpRequests) {
    test(`${fixture.name} (${fixture.source})`, () => {
      const bytes = fromHex(fixture.hex)
      assert.deepStrictEqual(decodeNatPmpRequest(bytes), fixture.value)
      assertRoundTrip(requestCodec, fixture.value, bytes)
    })
  }

  for (const fixture of malformedNatPmpRequests) {
    test(`malformed: ${fixture.name} (${fixture.source})`, () => {
      assertMalformed(() => decodeNatPmpRequest(fromHex(fixture.hex)), fixture.offset)
    })
  }

  test('reserved bytes and bytes past the request are ignored', () => {
    const bytes = fromHex('00 01 ff ff 13 88 13 88 00 00 1c 20 de ad be ef')
    assert.deepStrictEqual(decodeNatPmpRequest(bytes),
      { opcode: 'map', protocol: 'udp', internalPort: 5000, suggestedExternalPort: 5000, lifetimeSeconds: 7200 })
    assert.deepStrictEqual(decodeNatPmpRequest(fromHex('00 00 00 00 00 00')), { opcode: 'external-address' })
  })
})

describe('NAT-PMP response fixtures', () => {
  for (const fixture of natPmpResponses) {
    test(`${fixture.name} (${fixture.source})`, () => {
      const bytes = fromHex(fixture.hex)
      assert.deepStrictEqual(decodeNatPmpResponse(bytes), fixture.value)
      assert.deepStrictEqual(decodeNatPmpResponse(atOddOffset(bytes)), fixture.value)
      const expected = fromHex(fixture.encodesAs ?? fixture.hex)
      assertRoundTrip(responseCodec(fixture.length), fixture.value, expected)
    })
  }

  for (const fixture of malformedNatPmpResponses) {
    test(`malformed: ${fixture.name} (${fixture.source})`, () => {
      assertMalformed(() => decodeNatPmpResponse(fromHex(fixture.hex)), fixture.offset)
    })
  }

  test('an error reply gives the error variant at 8, 12 and 16 bytes', () => {
    for (const hex of ['00 82 00 04 00 00 00 07', '00 82 00 04 00 00 00 07 00 00 00 00', '00 82 00 04 00 00 00 07 00 00 00 00 00 00 00 00']) {
      assert.deepStrictEqual(decodeNatPmpResponse(fromHex(hex)), { opcode: 'error', requestOpcode: 2, resultCode: 4, epochSeconds: 7 })
    }
  })

  test('the top bit decides request versus reply, except the erratum 3618 case', () => {
    // OP = 0 with a result other than UNSUPPORTED_VERSION is a request, as before.
    assertMalformed(() => decodeNatPmpResponse(fromHex('00 00 00 02 00 00 00 2a')), 1)
    assertMalformed(() => decodeNatPmpResponse(fromHex('00 02 00 01 00 00 00 2a')), 1)
  })
})

// Encoder validation -------------------------------------------------------------------------

describe('NAT-PMP encoders reject values that do not fit', () => {
  const map = { opcode: 'map', protocol: 'udp', internalPort: 1, suggestedExternalPort: 1, lifetimeSeconds: 1 } as const
  const bad: Array<[string, () => unknown]> = [
    ['port 65536', () => encodeNatPmpRequest({ ...map, internalPort: 65536 })],
    ['port -1', () => encodeNatPmpRequest({ ...map, suggestedExternalPort: -1 })],
    ['port 1.5', () => encodeNatPmpRequest({ ...map, internalPort: 1.5 })],
    ['port NaN', () => encodeNatPmpRequest({ ...map, internalPort: Number.NaN })],
    ['lifetime 2^32', () => encodeNatPmpRequest({ ...map, lifetimeSeconds: 2 ** 32 })],
    ['protocol sctp', () => encodeNatPmpRequest({ ...map, protocol: 'sctp' as 'udp' })],
    ['unknown opcode', () => encodeNatPmpRequest({ opcode: 'peer' } as unknown as NatPmpRequest)],
    ['IPv6 external address', () => encodeNatPmpResponse({ opcode: 'external-address', resultCode: 0, epochSeconds: 0, externalAddress: '::1' })],
    ['bad address text', () => encodeNatPmpResponse({ opcode: 'external-address', resultCode: 0, epochSeconds: 0, externalAddress: '1.2.3' })],
    ['epoch 2^32', () => encodeNatPmpResponse({ opcode: 'error', requestOpcode: 0, resultCode: 3, epochSeconds: 2 ** 32 })],
    ['error with result 0', () => encodeNatPmpResponse({ opcode: 'error', requestOpcode: 0, resultCode: 0, epochSeconds: 0 })],
    ['error with result 65536', () => encodeNatPmpResponse({ opcode: 'error', requestOpcode: 0, resultCode: 65536, epochSeconds: 0 })],
    ['error for request opcode 128', () => encodeNatPmpResponse({ opcode: 'error', requestOpcode: 128, resultCode: 1, epochSeconds: 0 })],
    ['success variant with a result code', () => encodeNatPmpResponse({ opcode: 'external-address', resultCode: 3 as 0, epochSeconds: 0, externalAddress: '1.2.3.4' })],
    ['map reply shortened to 12', () => encodeNatPmpResponse({ opcode: 'map', resultCode: 0, protocol: 'tcp', epochSeconds: 0, internalPort: 1, externalPort: 1, lifetimeSeconds: 1 }, { length: 12 })],
    ['length 10', () => encodeNatPmpResponse({ opcode: 'error', requestOpcode: 0, resultCode: 3, epochSeconds: 0 }, { length: 10 as 8 })]
  ]
  for (const [name, fn] of bad) {
    test(name, () => {
      assert.throws(fn, UsageError)
    })
  }

  test('the largest values fit', () => {
    const bytes = encodeNatPmpRequest({ ...map, internalPort: 65535, suggestedExternalPort: 65535, lifetimeSeconds: 0xffffffff })
    assert.deepStrictEqual(Array.from(bytes.subarray(4)), [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff])
  })
})

describe('NAT-PMP result names', () => {
  test('known and unknown codes', () => {
    assert.equal(natPmpResultName(NatPmpResultCode.NOT_AUTHORIZED), 'NOT_AUTHORIZED')
    assert.equal(natPmpResultName(0), 'SUCCESS')
    assert.equal(natPmpResultName(5), 'UNSUPPORTED_OPCODE')
    assert.equal(natPmpResultName(9), 'UNKNOWN_9')
  })
})

// Properties ---------------------------------------------------------------------------------

describe('NAT-PMP properties', () => {
  test(`requests round-trip (${ROUND_TRIP_RUNS} runs)`, () => {
    fc.assert(fc.property(anyRequest, (request) => { assertRoundTrip(requestCodec, request) }), { numRuns: ROUND_TRIP_RUNS })
  })

  test(`responses round-trip at every length they allow (${ROUND_TRIP_RUNS} runs)`, () => {
    fc.assert(fc.property(anyResponse, ([response, length]) => { assertRoundTrip(responseCodec(length), response) }), { numRuns: ROUND_TRIP_RUNS })
  })

  const validRequests = anyRequest.map(encodeNatPmpRequest)
  const validResponses = anyResponse.map(([response, length]) => encodeNatPmpResponse(response, length === undefined ? undefined : { length }))
  // Short packets that start like NAT-PMP, so that more than the version check is exercised.
  const natPmpShaped = fc.tuple(fc.integer({ min: 0, max: 255 }), fc.uint8Array({ maxLength: 20 }))
    .map(([opcode, rest]) => Uint8Array.of(0, opcode, ...rest))

  test(`decodeNatPmpRequest throws only MalformedPacketError (${FUZZ_RUNS} runs)`, (t) => {
    const seen = { decoded: 0, malformed: 0 }
    fc.assert(fc.property(fc.oneof(fc.uint8Array({ maxLength: 1200 }), natPmpShaped, mutated(validRequests)), (bytes) => {
      seen[assertDecodesOrMalformed(requestCodec, bytes)]++
    }), { numRuns: FUZZ_RUNS })
    t.diagnostic(`decoded ${seen.decoded}, malformed ${seen.malformed}`)
    assert.ok(seen.decoded > FUZZ_RUNS / 20 && seen.malformed > FUZZ_RUNS / 20, 'the inputs should reach both outcomes')
  })

  test(`decodeNatPmpResponse throws only MalformedPacketError (${FUZZ_RUNS} runs)`, (t) => {
    const seen = { decoded: 0, malformed: 0 }
    fc.assert(fc.property(fc.oneof(fc.uint8Array({ maxLength: 1200 }), natPmpShaped, mutated(validResponses)), (bytes) => {
      seen[assertDecodesOrMalformed(responseCodec(), bytes)]++
    }), { numRuns: FUZZ_RUNS })
    t.diagnostic(`decoded ${seen.decoded}, malformed ${seen.malformed}`)
    assert.ok(seen.decoded > FUZZ_RUNS / 20 && seen.malformed > FUZZ_RUNS / 20, 'the inputs should reach both outcomes')
  })
})
