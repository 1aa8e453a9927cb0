import { test, describe } from 'node:test'
import assert from 'node:assert/strict'
import fc from 'fast-check'
import { MalformedPacketError, UsageError } from '../../src/errors.js'
import { bytes16ToIp } from '../../src/net/address.js'
import { decodePcpRequest, decodePcpResponse, encodePcpRequest, encodePcpResponse } from '../../src/pcp/codec.js'
import type { PcpMapData, PcpOption, PcpRequest, PcpResponse } from '../../src/pcp/codec.js'
import {
  IanaProtocol,
  PCP_MAX_PACKET,
  PcpOpcode,
  PcpOptionCode,
  PcpResultCode,
  isShortLifetimeError,
  pcpResultName
} from '../../src/pcp/codes.js'
import { fromHex } from '../fixtures/packets/hex.js'
import { malformedPcpRequests, malformedPcpResponses, pcpRequests, pcpResponses } from '../fixtures/packets/pcp.js'
import { assertDecodesOrMalformed, assertRoundTrip, atOddOffset, mutated } from '../helpers/roundtrip.js'
import type { Codec } from '../helpers/roundtrip.js'

const FUZZ_RUNS = 10_000
const ROUND_TRIP_RUNS = 2_000

const requestCodec: Codec<PcpRequest> = { encode: encodePcpRequest, decode: decodePcpRequest }
const responseCodec: Codec<PcpResponse> = { encode: encodePcpResponse, decode: decodePcpResponse }

function assertMalformed (fn: () => unknown, offset: number): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof MalformedPacketError, `expected MalformedPacketError, got ${String(err)}`)
    assert.equal(err.offset, offset, `offset (${err.reason})`)
    return true
  })
}

// Arbitrary valid messages -------------------------------------------------------------------

const uint8 = fc.integer({ min: 0, max: 255 })
const port = fc.integer({ min: 0, max: 0xffff })
const uint32 = fc.integer({ min: 0, max: 0xffffffff })
/** Decoded addresses are canonical text: dotted IPv4, or RFC 5952 IPv6 from any 16 bytes. */
const address = fc.oneof(
  fc.tuple(uint8, uint8, uint8, uint8).map((parts) => parts.join('.')),
  fc.uint8Array({ minLength: 16, maxLength: 16 }).map((bytes) => bytes16ToIp(bytes)),
  fc.constantFrom('0.0.0.0', '::', '::1', '2001:db8::1')
)
const mapData: fc.Arbitrary<PcpMapData> = fc.tuple(fc.uint8Array({ minLength: 12, maxLength: 12 }), uint8, port, port, address)
  .map(([nonce, protocol, internalPort, externalPort, externalAddress]) => ({ nonce, protocol, internalPort, externalPort, externalAddress }))
const option: fc.Arbitrary<PcpOption> = fc.tuple(uint8, fc.uint8Array({ maxLength: 40 })).map(([code, data]) => ({ code, data }))
const options = fc.array(option, { maxLength: 6 })
/** Opcodes without a known data length: PEER, and the rest of the 7-bit space. */
const otherOpcode = fc.integer({ min: 2, max: 127 })

const anyRequest: fc.Arbitrary<PcpRequest> = fc.oneof(
  fc.tuple(uint8, uint32, address, mapData, options).map(([version, lifetimeSeconds, clientAddress, map, options]): PcpRequest =>
    ({ version, opcode: PcpOpcode.MAP, lifetimeSeconds, clientAddress, map, options })),
  fc.tuple(uint8, uint32, address, options).map(([version, lifetimeSeconds, clientAddress, options]): PcpRequest =>
    ({ version, opcode: PcpOpcode.ANNOUNCE, lifetimeSeconds, clientAddress, options })),
  fc.tuple(uint8, otherOpcode, uint32, address).map(([version, opcode, lifetimeSeconds, clientAddress]): PcpRequest =>
    ({ version, opcode, lifetimeSeconds, clientAddress, options: [] }))
)

const errorCode = fc.integer({ min: 1, max: 255 })
const anyResponse: fc.Arbitrary<PcpResponse> = fc.oneof(
  // MAP with data, success or error.
  fc.tuple(uint8, fc.oneof(fc.constant(0), errorCode), uint32, uint32, mapData, options)
    .map(([version, resultCode, lifetimeSeconds, epochSeconds, map, options]): PcpResponse =>
      ({ version, opcode: PcpOpcode.MAP, resultCode, lifetimeSeconds, epochSeconds, map, options })),
  // MAP error, header only.
  fc.tuple(uint8, errorCode, uint32, uint32).map(([version, resultCode, lifetimeSeconds, epochSeconds]): PcpResponse =>
    ({ version, opcode: PcpOpcode.MAP, resultCode, lifetimeSeconds, epochSeconds, options: [] })),
  fc.tuple(uint8, uint8, uint32, uint32, options).map(([version, resultCode, lifetimeSeconds, epochSeconds, options]): PcpResponse =>
    ({ version, opcode: PcpOpcode.ANNOUNCE, resultCode, lifetimeSeconds, epochSeconds, options })),
  fc.tuple(uint8, otherOpcode, uint8, uint32, uint32).map(([version, opcode, resultCode, lifetimeSeconds, epochSeconds]): PcpResponse =>
    ({ version, opcode, resultCode, lifetimeSeconds, epochSeconds, options: [] }))
)

// Golden packets -----------------------------------------------------------------------------

describe('PCP request fixtures', () => {
  for (const fixture of pcpRequests) {
    test(`${fixture.name} (${fixture.source})`, () => {
      const bytes = fromHex(fixture.hex)
      assert.equal(bytes.length % 4, 0)
      assert.deepStrictEqual(decodePcpRequest(bytes), fixture.value)
      assertRoundTrip(requestCodec, fixture.value, bytes)
    })
  }

  for (const fixture of malformedPcpRequests) {
    test(`malformed: ${fixture.name} (${fixture.source})`, () => {
      assertMalformed(() => decodePcpRequest(fromHex(fixture.hex)), fixture.offset)
    })
  }

  test('the version defaults to 2 when encoding, and is reported as found when decoding', () => {
    const request: PcpRequest = { opcode: PcpOpcode.ANNOUNCE, lifetimeSeconds: 0, clientAddress: '10.0.0.2', options: [] }
    const bytes = encodePcpRequest(request)
    assert.equal(bytes[0], 2)
    assert.deepStrictEqual(decodePcpRequest(bytes), { ...request, version: 2 })
    const v3 = encodePcpRequest({ ...request, version: 3 })
    assert.equal(decodePcpRequest(v3).version, 3)
  })

  test('a MAP request is 60 bytes and an ANNOUNCE 24', () => {
    const map: PcpMapData = { nonce: new Uint8Array(12), protocol: IanaProtocol.udp, internalPort: 1, externalPort: 0, externalAddress: '0.0.0.0' }
    assert.equal(encodePcpRequest({ opcode: PcpOpcode.MAP, lifetimeSeconds: 1, clientAddress: '10.0.0.2', map, options: [] }).length, 60)
    assert.equal(encodePcpRequest({ opcode: PcpOpcode.ANNOUNCE, lifetimeSeconds: 0, clientAddress: '::1', options: [] }).length, 24)
  })
})

describe('PCP response fixtures', () => {
  for (const fixture of pcpResponses) {
    test(`${fixture.name} (${fixture.source})`, () => {
      const bytes = fromHex(fixture.hex)
      assert.equal(bytes.length % 4, 0)
      assert.deepStrictEqual(decodePcpResponse(bytes), fixture.value)
      assert.deepStrictEqual(decodePcpResponse(atOddOffset(bytes)), fixture.value)
      assertRoundTrip(responseCodec, fixture.value, fromHex(fixture.encodesAs ?? fixture.hex))
    })
  }

  for (const fixture of malformedPcpResponses) {
    test(`malformed: ${fixture.name} (${fixture.source})`, () => {
      assertMalformed(() => decodePcpResponse(fromHex(fixture.hex)), fixture.offset)
    })
  }

  test('1104 bytes is over the 1100-byte limit; 1100 is not', () => {
    const announce = (length: number): Uint8Array => {
      const bytes = new Uint8Array(length)
      bytes[0] = 2
      bytes[1] = 0x80
      if (length >= 28) {
        // One option filling the rest, so that a well-formed packet of this length exists.
        bytes[24] = 0x80
        new DataView(bytes.buffer).setUint16(26, length - 28)
      }
      return bytes
    }
    assertMalformed(() => decodePcpResponse(announce(1104)), PCP_MAX_PACKET)
    const max = decodePcpResponse(announce(1100))
    assert.equal(max.options[0]?.data.length, 1100 - 28)
  })

  test('a MAP error shorter than the MAP data has no map and no options', () => {
    // A truncated copy of the request (28 bytes): only the header is usable.
    const bytes = fromHex('02 81 00 08 00 00 00 1e 00 00 01 f4 00 00 00 00 00 00 00 00 00 00 00 00 01 02 03 04')
    assert.deepStrictEqual(decodePcpResponse(bytes), { version: 2, opcode: 1, resultCode: 8, lifetimeSeconds: 30, epochSeconds: 500, options: [] })
  })

  test('decoded byte fields are plain copies, not views of the packet, also from a Node Buffer', () => {
    const fixture = pcpResponses.find((f) => f.name === 'MAP success with options, one padded')!
    for (const bytes of [fromHex(fixture.hex), Buffer.from(fromHex(fixture.hex))]) {
      const decoded = decodePcpResponse(bytes)
      bytes.fill(0)
      assert.deepStrictEqual(decoded, fixture.value)
      assert.equal(Object.getPrototypeOf(decoded.map?.nonce), Uint8Array.prototype)
      assert.equal(Object.getPrototypeOf(decoded.options[1]?.data), Uint8Array.prototype)
    }
  })
})

// Encoder validation -------------------------------------------------------------------------

describe('PCP encoders reject values that do not fit', () => {
  const map: PcpMapData = { nonce: new Uint8Array(12), protocol: 17, internalPort: 5000, externalPort: 0, externalAddress: '0.0.0.0' }
  const request: PcpRequest = { opcode: PcpOpcode.MAP, lifetimeSeconds: 7200, clientAddress: '192.168.1.100', map, options: [] }
  const response: PcpResponse = { version: 2, opcode: PcpOpcode.MAP, resultCode: 0, lifetimeSeconds: 7200, epochSeconds: 1, map, options: [] }
  const bad: Array<[string, () => unknown]> = [
    ['MAP request without map', () => encodePcpRequest({ ...request, map: undefined })],
    ['map data on ANNOUNCE', () => encodePcpRequest({ ...request, opcode: PcpOpcode.ANNOUNCE })],
    ['options on PEER', () => encodePcpRequest({ opcode: PcpOpcode.PEER, lifetimeSeconds: 1, clientAddress: '10.0.0.2', options: [{ code: 1, data: new Uint8Array(0) }] })],
    ['opcode 128', () => encodePcpRequest({ ...request, opcode: 128 })],
    ['version 256', () => encodePcpRequest({ ...request, version: 256 })],
    ['lifetime -1', () => encodePcpRequest({ ...request, lifetimeSeconds: -1 })],
    ['lifetime 2^32', () => encodePcpRequest({ ...request, lifetimeSeconds: 2 ** 32 })],
    ['lifetime 1.5', () => encodePcpRequest({ ...request, lifetimeSeconds: 1.5 })],
    ['nonce of 11 bytes', () => encodePcpRequest({ ...request, map: { ...map, nonce: new Uint8Array(11) } })],
    ['nonce of 13 bytes', () => encodePcpRequest({ ...request, map: { ...map, nonce: new Uint8Array(13) } })],
    ['nonce as an array', () => encodePcpRequest({ ...request, map: { ...map, nonce: Array(12).fill(0) as unknown as Uint8Array } })],
    ['port 65536', () => encodePcpRequest({ ...request, map: { ...map, internalPort: 65536 } })],
    ['port -1', () => encodePcpRequest({ ...request, map: { ...map, externalPort: -1 } })],
    ['protocol 256', () => encodePcpRequest({ ...request, map: { ...map, protocol: 256 } })],
    ['bad client address', () => encodePcpRequest({ ...request, clientAddress: 'gateway.local' })],
    ['bad external address', () => encodePcpRequest({ ...request, map: { ...map, externalAddress: '1.2.3.4.5' } })],
    ['option code 256', () => encodePcpRequest({ ...request, options: [{ code: 256, data: new Uint8Array(0) }] })],
    ['over 1100 bytes', () => encodePcpRequest({ ...request, options: [{ code: 1, data: new Uint8Array(1100) }] })],
    ['MAP success without map', () => encodePcpResponse({ ...response, map: undefined })],
    ['MAP error without map but with options', () => encodePcpResponse({ ...response, resultCode: 2, map: undefined, options: [{ code: 2, data: new Uint8Array(0) }] })],
    ['result code 256', () => encodePcpResponse({ ...response, resultCode: 256 })],
    ['epoch 2^32', () => encodePcpResponse({ ...response, epochSeconds: 2 ** 32 })]
  ]
  for (const [name, fn] of bad) {
    test(name, () => {
      assert.throws(fn, UsageError)
    })
  }

  test('IPv4 goes on the wire IPv4-mapped, IPv6 as is; zones are dropped', () => {
    const v4 = encodePcpRequest({ opcode: PcpOpcode.ANNOUNCE, lifetimeSeconds: 0, clientAddress: '192.168.1.100', options: [] })
    assert.deepStrictEqual(Array.from(v4.subarray(8, 24)), [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 192, 168, 1, 100])
    const v6 = encodePcpRequest({ opcode: PcpOpcode.ANNOUNCE, lifetimeSeconds: 0, clientAddress: 'fe80::1%eth0', options: [] })
    assert.deepStrictEqual(Array.from(v6.subarray(8, 24)), [0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1])
    assert.equal(decodePcpRequest(v6).clientAddress, 'fe80::1')
  })

  test('options are padded to 4 bytes and their length excludes the padding', () => {
    const bytes = encodePcpRequest({ opcode: PcpOpcode.ANNOUNCE, lifetimeSeconds: 0, clientAddress: '10.0.0.2', options: [{ code: 0x81, data: Uint8Array.of(1, 2, 3, 4, 5, 6, 7) }] })
    assert.equal(bytes.length, 24 + 4 + 8)
    assert.deepStrictEqual(Array.from(bytes.subarray(24)), [0x81, 0, 0, 7, 1, 2, 3, 4, 5, 6, 7, 0])
  })
})

describe('PCP code tables', () => {
  test('result names, known and unknown', () => {
    assert.equal(pcpResultName(PcpResultCode.NOT_AUTHORIZED), 'NOT_AUTHORIZED')
    assert.equal(pcpResultName(13), 'EXCESSIVE_REMOTE_PEERS')
    assert.equal(pcpResultName(14), 'UNKNOWN_14')
    assert.equal(pcpResultName(255), 'UNKNOWN_255')
  })

  test('short-lifetime errors are exactly NETWORK_FAILURE, NO_RESOURCES and USER_EX_QUOTA (RFC 6887 §7.4)', () => {
    const short = Array.from({ length: 256 }, (_, code) => code).filter(isShortLifetimeError)
    assert.deepStrictEqual(short, [PcpResultCode.NETWORK_FAILURE, PcpResultCode.NO_RESOURCES, PcpResultCode.USER_EX_QUOTA])
  })

  test('option codes and protocol numbers', () => {
    assert.deepStrictEqual(PcpOptionCode, { THIRD_PARTY: 1, PREFER_FAILURE: 2, FILTER: 3 })
    assert.deepStrictEqual(IanaProtocol, { tcp: 6, udp: 17 })
  })
})

// Properties ---------------------------------------------------------------------------------

describe('PCP properties', () => {
  test(`requests round-trip (${ROUND_TRIP_RUNS} runs)`, () => {
    fc.assert(fc.property(anyRequest, (request) => { assertRoundTrip(requestCodec, request) }), { numRuns: ROUND_TRIP_RUNS })
  })

  test(`responses round-trip (${ROUND_TRIP_RUNS} runs)`, () => {
    fc.assert(fc.property(anyResponse, (response) => { assertRoundTrip(responseCodec, response) }), { numRuns: ROUND_TRIP_RUNS })
  })

  const validRequests = anyRequest.map(encodePcpRequest)
  const validResponses = anyResponse.map(encodePcpResponse)
  /** Right length class and R bit, random everything else: gets past the first checks. */
  function pcpShaped (rBit: number): fc.Arbitrary<Uint8Array> {
    return fc.tuple(fc.integer({ min: 6, max: 275 }), fc.integer({ min: 0, max: 255 }), fc.integer({ min: 0, max: 2 }))
      .chain(([words, version, opcode]) => fc.uint8Array({ minLength: words * 4, maxLength: words * 4 }).map((bytes) => {
        bytes[0] = version
        bytes[1] = rBit | opcode
        return bytes
      }))
  }

  test(`decodePcpRequest throws only MalformedPacketError (${FUZZ_RUNS} runs)`, (t) => {
    const seen = { decoded: 0, malformed: 0 }
    fc.assert(fc.property(fc.oneof(fc.uint8Array({ maxLength: 1200 }), pcpShaped(0), mutated(validRequests)), (bytes) => {
      seen[assertDecodesOrMalformed(requestCodec, bytes)]++
    }), { numRuns: FUZZ_RUNS })
    t.diagnostic(`decoded ${seen.decoded}, malformed ${seen.malformed}`)
    assert.ok(seen.decoded > FUZZ_RUNS / 20 && seen.malformed > FUZZ_RUNS / 20, 'the inputs should reach both outcomes')
  })

  test(`decodePcpResponse throws only MalformedPacketError (${FUZZ_RUNS} runs)`, (t) => {
    const seen = { decoded: 0, malformed: 0 }
    fc.assert(fc.property(fc.oneof(fc.uint8Array({ maxLength: 1200 }), pcpShaped(0x80), mutated(validResponses)), (bytes) => {
      seen[assertDecodesOrMalformed(responseCodec, bytes)]++
    }), { numRuns: FUZZ_RUNS })
    t.diagnostic(`decoded ${seen.decoded}, malformed ${seen.malformed}`)
    assert.ok(seen.decoded > FUZZ_RUNS / 20 && seen.malformed > FUZZ_RUNS / 20, 'the inputs should reach both outcomes')
  })
})
