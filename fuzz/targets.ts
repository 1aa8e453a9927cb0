import assert from 'node:assert/strict'
import { readFileSync, readdirSync } from 'node:fs'
import { isIPv4 } from 'node:net'
import fc from 'fast-check'
import { GatewayRefusedError, MalformedPacketError, RemoteProtocolError } from '../src/errors.js'
import { decodeNatPmpRequest, decodeNatPmpResponse, encodeNatPmpRequest, encodeNatPmpResponse } from '../src/natpmp/codec.js'
import type { NatPmpRequest, NatPmpResponse } from '../src/natpmp/codec.js'
import { decodePcpRequest, decodePcpResponse, encodePcpRequest, encodePcpResponse } from '../src/pcp/codec.js'
import type { PcpMapData, PcpOption, PcpRequest, PcpResponse } from '../src/pcp/codec.js'
import { PCP_MAX_PACKET } from '../src/pcp/codes.js'
import {
  decodeAddAnyPortMapping, decodeAddPortMapping, decodeDeletePortMapping, decodeGetExternalIPAddress,
  decodeGetGenericPortMappingEntry, decodeGetSpecificPortMappingEntry, decodeGetStatusInfo, encodeAddAnyPortMapping, encodeAddPortMapping,
  encodeDeletePortMapping, encodeGetExternalIPAddress, encodeGetSpecificPortMappingEntry, encodeGetStatusInfo
} from '../src/upnp/actions.js'
import { DeviceType, ServiceType } from '../src/upnp/codes.js'
import {
  decodeAddPinhole, decodeCheckPinholeWorking, decodeDeletePinhole, decodeGetFirewallStatus, decodeGetOutboundPinholeTimeout,
  decodeGetPinholePackets, decodeUpdatePinhole
} from '../src/upnp/pinhole-actions.js'
import { MAX_DESCRIPTION_CHARS, findWanServices, parseDescription } from '../src/upnp/description.js'
import type { UpnpDevice } from '../src/upnp/description.js'
import {
  MAX_SOAP_CHARS, encodeSoapFault, encodeSoapRequest, encodeSoapResponse, escapeXml, parseSoapFault, parseSoapRequest,
  parseSoapResponse
} from '../src/upnp/soap.js'
import { MAX_SSDP_MESSAGE_BYTES, parseSsdpMessage } from '../src/upnp/ssdp-codec.js'
import { encodeMSearch, encodeNotify, encodeSsdpResponse } from '../src/upnp/ssdp-encode.js'
import { MAX_HEADER_SECTION_BYTES } from '../src/upnp/http.js'
import { fromHex } from '../test/fixtures/packets/hex.js'
import { malformedNatPmpRequests, malformedNatPmpResponses, natPmpRequests, natPmpResponses } from '../test/fixtures/packets/natpmp.js'
import { routeTargets } from './route-targets.js'
import type { ErrorClass, FuzzTarget, Shape } from './target.js'
import { malformedPcpRequests, malformedPcpResponses, pcpRequests, pcpResponses } from '../test/fixtures/packets/pcp.js'

/**
 * One fuzz target per parser that reads what the network sends (STYLE.md §3: any input decodes
 * or throws the codec's own typed error). Each target mixes three kinds of input:
 *
 * - structured: valid messages built with the codec's own encoders (or a generator of the same
 *   shape) from random field values, so the deep paths of a parser are reached;
 * - random: bytes or text with no structure at all;
 * - mutated: the real fixtures (test/fixtures/packets, test/fixtures/routers) and the structured
 *   messages, edited the way a buggy or hostile device would: bit flips, overwritten bytes,
 *   boundary values, truncation, duplicated or spliced regions, long runs of one byte; header
 *   names and values for SSDP; tags, attributes, entities and markup for XML.
 *
 * fuzz/run.ts drives them (`npm run fuzz`), test/fuzz/fuzz.test.ts runs a short slice in `npm test`.
 */

export type { ErrorClass, FuzzTarget, Shape } from './target.js'

// ---------------------------------------------------------------------------------------------
// Fixtures

const routers = new URL('../../test/fixtures/routers/', import.meta.url)
const routerFiles = readdirSync(routers).sort()
const readRouter = (name: string): string => readFileSync(new URL(name, routers), 'utf8')
const utf8 = new TextEncoder()
const fromUtf8 = new TextDecoder()

/** An SSDP fixture as its datagram: leading "# " lines dropped, LF made CRLF unless "# line-endings: lf". */
function datagram (text: string): Uint8Array {
  const lines = text.split('\n')
  let i = 0
  let crlf = true
  while (lines[i]?.startsWith('# ') === true) {
    if (lines[i] === '# line-endings: lf') crlf = false
    i++
  }
  return utf8.encode(lines.slice(i).join(crlf ? '\r\n' : '\n'))
}

const ssdpFixtures = routerFiles.filter((n) => n.endsWith('.txt') && !n.startsWith('html')).map((n) => datagram(readRouter(n)))
const xmlFixtures = routerFiles.filter((n) => n.endsWith('.xml')).map(readRouter)
const descriptionFixtures = xmlFixtures.filter((x) => x.includes('<root'))
const soapFixtures = xmlFixtures.filter((x) => x.includes('Envelope'))
/** HTML where XML was expected (a login page): a real thing routers send. */
const htmlFixtures = routerFiles.filter((n) => n.startsWith('html')).map((n) => readRouter(n).split('\n').filter((l) => !l.startsWith('# ')).join('\n'))
assert.ok(ssdpFixtures.length >= 8 && descriptionFixtures.length >= 8 && soapFixtures.length >= 15, 'router fixtures not found')

const natPmpFixtures = [...natPmpRequests, ...natPmpResponses, ...malformedNatPmpRequests, ...malformedNatPmpResponses].map((f) => fromHex(f.hex))
const pcpFixtures = [...pcpRequests, ...pcpResponses, ...malformedPcpRequests, ...malformedPcpResponses].map((f) => fromHex(f.hex))
/** NAT-PMP and PCP share port 5351, so each decoder meets the other's packets: both sets seed both. */
const portControlFixtures = [...natPmpFixtures, ...pcpFixtures]

// ---------------------------------------------------------------------------------------------
// Byte mutations

type ByteEdit =
  | { op: 'flip', at: number, bit: number }
  | { op: 'set', at: number, value: number }
  | { op: 'boundary', at: number, width: 1 | 2 | 4, pick: number }
  | { op: 'truncate', at: number }
  | { op: 'delete', at: number, length: number }
  | { op: 'duplicate', at: number, length: number }
  | { op: 'splice', at: number, donor: number, from: number, length: number }
  | { op: 'run', at: number, length: number, value: number }
  | { op: 'insert', at: number, bytes: Uint8Array }

/** Values at the edges of 8-, 16- and 32-bit fields. */
const BOUNDARIES = [0, 1, 2, 3, 4, 0x7f, 0x80, 0xff, 0x100, 0x7fff, 0x8000, 0xfffe, 0xffff, 0x10000, 0x7fffffff, 0x80000000, 0xfffffffe, 0xffffffff]

/** Mostly short, sometimes up to `max`: long runs are where a quadratic loop shows. */
function runLength (max: number): fc.Arbitrary<number> {
  return fc.oneof(
    { weight: 12, arbitrary: fc.integer({ min: 1, max: 64 }) },
    { weight: 3, arbitrary: fc.integer({ min: 65, max: Math.max(65, Math.min(4096, max)) }) },
    { weight: 1, arbitrary: fc.integer({ min: 1, max }) }
  )
}

function byteEdit (maxRun: number): fc.Arbitrary<ByteEdit> {
  const at = fc.nat()
  const length = fc.integer({ min: 1, max: 64 })
  const byte = fc.integer({ min: 0, max: 255 })
  return fc.oneof(
    { weight: 4, arbitrary: fc.record({ op: fc.constant('flip' as const), at, bit: fc.integer({ min: 0, max: 7 }) }) },
    { weight: 3, arbitrary: fc.record({ op: fc.constant('set' as const), at, value: byte }) },
    { weight: 3, arbitrary: fc.record({ op: fc.constant('boundary' as const), at, width: fc.constantFrom<1 | 2 | 4>(1, 2, 4), pick: fc.nat() }) },
    { weight: 2, arbitrary: fc.record({ op: fc.constant('truncate' as const), at }) },
    { weight: 2, arbitrary: fc.record({ op: fc.constant('delete' as const), at, length }) },
    { weight: 2, arbitrary: fc.record({ op: fc.constant('duplicate' as const), at, length: fc.integer({ min: 1, max: 256 }) }) },
    { weight: 2, arbitrary: fc.record({ op: fc.constant('splice' as const), at, donor: fc.nat(), from: fc.nat(), length: fc.integer({ min: 1, max: 256 }) }) },
    { weight: 1, arbitrary: fc.record({ op: fc.constant('run' as const), at, length: runLength(maxRun), value: fc.constantFrom(0x00, 0xff, 0x41, 0x20, 0x0a, 0x3c, 0x26, 0x3a) }) },
    { weight: 2, arbitrary: fc.record({ op: fc.constant('insert' as const), at, bytes: fc.uint8Array({ minLength: 1, maxLength: 16 }) }) }
  )
}

function concat (...parts: Uint8Array[]): Uint8Array {
  let length = 0
  for (const part of parts) length += part.length
  const out = new Uint8Array(length)
  let offset = 0
  for (const part of parts) {
    out.set(part, offset)
    offset += part.length
  }
  return out
}

function applyByteEdit (bytes: Uint8Array, edit: ByteEdit, donors: readonly Uint8Array[]): Uint8Array {
  const n = bytes.length
  const at = edit.at % (n + 1)
  switch (edit.op) {
    case 'flip': {
      if (n === 0) return bytes
      const out = bytes.slice()
      out[edit.at % n]! ^= 1 << edit.bit
      return out
    }
    case 'set': {
      if (n === 0) return bytes
      const out = bytes.slice()
      out[edit.at % n] = edit.value
      return out
    }
    case 'boundary': {
      if (n < edit.width) return bytes
      const out = bytes.slice()
      const where = edit.at % (n - edit.width + 1)
      const value = BOUNDARIES[edit.pick % BOUNDARIES.length]!
      const dv = new DataView(out.buffer)
      if (edit.width === 1) dv.setUint8(where, value & 0xff)
      else if (edit.width === 2) dv.setUint16(where, value & 0xffff)
      else dv.setUint32(where, value >>> 0)
      return out
    }
    case 'truncate':
      return bytes.slice(0, at)
    case 'delete':
      return concat(bytes.subarray(0, at), bytes.subarray(at + edit.length))
    case 'duplicate':
      return concat(bytes.subarray(0, at + edit.length), bytes.subarray(at, at + edit.length), bytes.subarray(at + edit.length))
    case 'splice': {
      const donor = donors[edit.donor % donors.length]!
      const from = edit.from % (donor.length + 1)
      return concat(bytes.subarray(0, at), donor.subarray(from, from + edit.length), bytes.subarray(at))
    }
    case 'run':
      return concat(bytes.subarray(0, at), new Uint8Array(edit.length).fill(edit.value), bytes.subarray(at))
    case 'insert':
      return concat(bytes.subarray(0, at), edit.bytes, bytes.subarray(at))
  }
}

/** `seeds` with one to five byte edits; `donors` supply spliced regions. */
function mutatedBytes (seeds: fc.Arbitrary<Uint8Array>, donors: readonly Uint8Array[], maxRun: number): fc.Arbitrary<Uint8Array> {
  return fc.tuple(seeds, fc.array(byteEdit(maxRun), { minLength: 1, maxLength: 5 }))
    .map(([seed, edits]) => edits.reduce((bytes, edit) => applyByteEdit(bytes, edit, donors), seed))
}

/** Text through the byte mutator, decoded as an HTTP client would decode a body (invalid UTF-8 becomes U+FFFD). */
function mutatedText (seeds: fc.Arbitrary<string>, donors: readonly Uint8Array[], maxRun: number): fc.Arbitrary<string> {
  return mutatedBytes(seeds.map((s) => utf8.encode(s)), donors, maxRun).map((bytes) => fromUtf8.decode(bytes))
}

// ---------------------------------------------------------------------------------------------
// Shared field generators

const uint8 = fc.integer({ min: 0, max: 0xff })
const uint16 = fc.integer({ min: 0, max: 0xffff })
const uint32 = fc.oneof(fc.integer({ min: 0, max: 0xffffffff }), fc.constantFrom(0, 1, 0x7fffffff, 0x80000000, 0xffffffff))
const ipv4 = fc.tuple(uint8, uint8, uint8, uint8).map((parts) => parts.join('.'))
const ipv6 = fc.constantFrom('::', '::1', '2001:db8::1', 'fe80::1', '::ffff:192.0.2.1', '2001:db8:0:1:2:3:4:5', 'ff02::1')
const address = fc.oneof(ipv4, ipv6)
const transport = fc.constantFrom<'tcp' | 'udp'>('tcp', 'udp')
const printable = fc.integer({ min: 0x20, max: 0x7e }).map((c) => String.fromCharCode(c))
/**
 * Any other character: Latin-1 and the rest of the BMP, and astral ones. (fast-check's 'grapheme' and
 * 'binary' units build a table of every character for each string arbitrary: seconds at import.)
 */
const nonAscii = fc.oneof(
  fc.integer({ min: 0x80, max: 0xd7ff }).map((c) => String.fromCharCode(c)),
  fc.integer({ min: 0xe000, max: 0xfffd }).map((c) => String.fromCharCode(c)),
  fc.integer({ min: 0x10000, max: 0x10ffff }).map((c) => String.fromCodePoint(c))
)
/** Any ASCII character, controls included. */
const asciiChar = fc.integer({ min: 0, max: 0x7f }).map((c) => String.fromCharCode(c))
/** Any UTF-16 code unit: controls, lone surrogates, U+FFFE and U+FFFF included. */
const utf16Unit = fc.integer({ min: 0, max: 0xffff }).map((c) => String.fromCharCode(c))
/** Text without the control characters encoders refuse, ASCII or not. */
const fieldText = (maxLength: number): fc.Arbitrary<string> => fc.oneof(
  { weight: 3, arbitrary: fc.string({ unit: printable, maxLength }) },
  { weight: 1, arbitrary: fc.string({ unit: fc.oneof(printable, nonAscii), maxLength }) }
)

/** Removes what XML 1.0 cannot carry, so that escapeXml accepts the rest. */
function xmlSafe (text: string): string {
  return text.replace(/[^\t\n\r\u0020-\ud7ff\ue000-\ufffd\u{10000}-\u{10ffff}]/gu, '')
}

function hex (bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join(' ')
}

function showBytes (bytes: Uint8Array): string {
  const text = fromUtf8.decode(bytes)
  return `${bytes.length} bytes: ${hex(bytes)}\nas text: ${JSON.stringify(text)}`
}

function showText (text: string): string {
  return `${text.length} characters: ${JSON.stringify(text)}`
}

/** `head` + `unit` repeated + `tail`, at most `size` long (at least head + tail). */
function fill (head: string, unit: string, tail: string, size: number): string {
  return head + unit.repeat(Math.max(0, Math.floor((size - head.length - tail.length) / unit.length))) + tail
}

// ---------------------------------------------------------------------------------------------
// NAT-PMP and PCP

const natPmpRequest: fc.Arbitrary<NatPmpRequest> = fc.oneof(
  fc.constant<NatPmpRequest>({ opcode: 'external-address' }),
  fc.record({ opcode: fc.constant('map' as const), protocol: transport, internalPort: uint16, suggestedExternalPort: uint16, lifetimeSeconds: uint32 })
)

const natPmpResponse: fc.Arbitrary<Uint8Array> = fc.oneof(
  fc.tuple(uint32, ipv4, fc.constantFrom<12 | 16>(12, 16)).map(([epochSeconds, externalAddress, length]) =>
    encodeNatPmpResponse({ opcode: 'external-address', resultCode: 0, epochSeconds, externalAddress }, { length })),
  fc.tuple(transport, uint32, uint16, uint16, uint32).map(([protocol, epochSeconds, internalPort, externalPort, lifetimeSeconds]) =>
    encodeNatPmpResponse({ opcode: 'map', resultCode: 0, protocol, epochSeconds, internalPort, externalPort, lifetimeSeconds })),
  fc.tuple(fc.integer({ min: 0, max: 127 }), fc.integer({ min: 1, max: 0xffff }), uint32, fc.constantFrom<8 | 12 | 16>(8, 12, 16))
    .map(([requestOpcode, resultCode, epochSeconds, length]) => encodeNatPmpResponse({ opcode: 'error', requestOpcode, resultCode, epochSeconds }, { length }))
)

/** Version 0, an opcode and result code near the interesting ones, a length around the real ones, random rest. */
const natPmpShaped: fc.Arbitrary<Uint8Array> = fc.tuple(
  fc.oneof({ weight: 9, arbitrary: fc.constant(0) }, { weight: 1, arbitrary: uint8 }),
  fc.oneof(fc.constantFrom(0, 1, 2, 3, 0x80, 0x81, 0x82, 0x83, 0xff), uint8),
  fc.oneof(fc.constantFrom(0, 1, 2, 3, 4, 5), uint16),
  fc.oneof(fc.integer({ min: 0, max: 20 }), fc.integer({ min: 0, max: 64 })),
  fc.uint8Array({ minLength: 64, maxLength: 64 })
).map(([version, opcode, result, length, rest]) => {
  const out = rest.slice(0, length)
  if (length > 0) out[0] = version
  if (length > 1) out[1] = opcode
  if (length > 3) new DataView(out.buffer).setUint16(2, result)
  return out
})

const nonce = fc.uint8Array({ minLength: 12, maxLength: 12 })
const pcpMap: fc.Arbitrary<PcpMapData> = fc.record({
  nonce,
  protocol: fc.oneof(fc.constantFrom(0, 6, 17), uint8),
  internalPort: uint16,
  externalPort: uint16,
  externalAddress: address
})
/** THIRD_PARTY, PREFER_FAILURE and FILTER with their real lengths, and anything else. */
const pcpOption: fc.Arbitrary<PcpOption> = fc.oneof(
  fc.record({ code: fc.constant(1), data: fc.uint8Array({ minLength: 16, maxLength: 16 }) }),
  fc.record({ code: fc.constant(2), data: fc.constant(new Uint8Array(0)) }),
  fc.record({ code: fc.constant(3), data: fc.uint8Array({ minLength: 20, maxLength: 20 }) }),
  fc.record({ code: uint8, data: fc.uint8Array({ maxLength: 40 }) })
)
const pcpOptions = fc.array(pcpOption, { maxLength: 5 })
const pcpVersion = fc.oneof({ weight: 8, arbitrary: fc.constant(2) }, { weight: 2, arbitrary: uint8 })

const pcpRequest: fc.Arbitrary<PcpRequest> = fc.oneof(
  fc.record({ version: pcpVersion, opcode: fc.constant(1), lifetimeSeconds: uint32, clientAddress: address, map: pcpMap, options: pcpOptions }),
  fc.record({ version: pcpVersion, opcode: fc.constant(0), lifetimeSeconds: uint32, clientAddress: address, options: pcpOptions }),
  fc.record({ version: pcpVersion, opcode: fc.integer({ min: 2, max: 127 }), lifetimeSeconds: uint32, clientAddress: address, options: fc.constant<PcpOption[]>([]) })
)

const pcpResponse: fc.Arbitrary<PcpResponse> = fc.oneof(
  fc.record({ version: pcpVersion, opcode: fc.constant(1), resultCode: fc.oneof(fc.constant(0), uint8), lifetimeSeconds: uint32, epochSeconds: uint32, map: pcpMap, options: pcpOptions }),
  fc.record({ version: pcpVersion, opcode: fc.constant(1), resultCode: fc.integer({ min: 1, max: 255 }), lifetimeSeconds: uint32, epochSeconds: uint32, options: fc.constant<PcpOption[]>([]) }),
  fc.record({ version: pcpVersion, opcode: fc.constant(0), resultCode: uint8, lifetimeSeconds: uint32, epochSeconds: uint32, options: pcpOptions }),
  fc.record({ version: pcpVersion, opcode: fc.integer({ min: 2, max: 127 }), resultCode: uint8, lifetimeSeconds: uint32, epochSeconds: uint32, options: fc.constant<PcpOption[]>([]) })
)

/**
 * A PCP header with the R bit as given, then maybe MAP-sized data, then option headers whose
 * lengths sit on the edges of what is left (§7.3), padded to 4 bytes or not.
 */
function pcpShaped (rBit: number): fc.Arbitrary<Uint8Array> {
  const option = fc.tuple(uint8, fc.constantFrom('zero', 'rest-4', 'rest-3', 'rest', 'rest+1', 'max', 'small'), fc.integer({ min: 0, max: 12 }))
  return fc.tuple(
    fc.uint8Array({ minLength: 24, maxLength: 24 }), pcpVersion, fc.constantFrom(0, 1, 2, 3, 127), fc.boolean(),
    fc.array(option, { maxLength: 6 }), fc.integer({ min: 0, max: 3 })
  ).map(([header, version, opcode, withMap, options, pad]) => {
    const parts: Uint8Array[] = [header]
    header[0] = version
    header[1] = rBit | opcode
    if (withMap) parts.push(new Uint8Array(36).fill(0x11))
    let length = 24 + (withMap ? 36 : 0)
    for (const [code, kind, small] of options) {
      const rest = Math.max(0, PCP_MAX_PACKET - length - 4)
      const claim = { zero: 0, 'rest-4': Math.max(0, rest - 4), 'rest-3': Math.max(0, rest - 3), rest, 'rest+1': rest + 1, max: 0xffff, small }[kind]
      const data = Math.min(claim, rest, 64)
      const padded = (data + 3) & ~3
      const option = new Uint8Array(4 + padded)
      option[0] = code
      new DataView(option.buffer).setUint16(2, claim)
      parts.push(option)
      length += option.length
    }
    parts.push(new Uint8Array(pad))
    return concat(...parts)
  })
}

function roundTrips<T> (encode: (value: T) => Uint8Array, decode: (bytes: Uint8Array) => T, value: T): void {
  assert.deepStrictEqual(decode(encode(value)), value, 'a decoded value does not survive encode + decode')
}

function binaryShapes (prefix: Uint8Array): Array<Shape<Uint8Array>> {
  return [
    { name: 'zeros', build: (size) => new Uint8Array(size) },
    { name: 'one byte 0xff', build: (size) => new Uint8Array(size).fill(0xff) },
    { name: 'valid packet then zeros', build: (size) => { const out = new Uint8Array(size); out.set(prefix.subarray(0, size)); return out } },
    {
      name: 'header then empty options',
      build: (size) => {
        const out = new Uint8Array(size - (size % 4))
        out.set(prefix.subarray(0, Math.min(24, out.length)))
        for (let i = 24; i + 4 <= out.length; i += 4) out[i] = 0x80
        return out
      }
    }
  ]
}

function binaryTarget<T> (options: {
  name: string
  parser: string
  decode: (bytes: Uint8Array) => T
  encode: (value: T) => Uint8Array
  structured: fc.Arbitrary<Uint8Array>
  shaped: fc.Arbitrary<Uint8Array>
  limit: number | undefined
  shapePrefix: Uint8Array
}): FuzzTarget<Uint8Array> {
  const seeds = fc.oneof(fc.constantFrom(...portControlFixtures), options.structured)
  return {
    name: options.name,
    parser: options.parser,
    allowed: [MalformedPacketError],
    input: fc.oneof(
      { weight: 2, arbitrary: options.structured },
      { weight: 2, arbitrary: options.shaped },
      { weight: 1, arbitrary: fc.uint8Array({ maxLength: 1200 }) },
      { weight: 5, arbitrary: mutatedBytes(seeds, portControlFixtures, 2048) }
    ),
    limit: options.limit,
    shapes: binaryShapes(options.shapePrefix),
    parse: options.decode,
    check: (value) => { roundTrips(options.encode, options.decode, value as T) },
    size: (bytes) => bytes.length,
    show: showBytes
  }
}

const natPmpRequestTarget = binaryTarget<NatPmpRequest>({
  name: 'natpmp-request',
  parser: 'decodeNatPmpRequest',
  decode: decodeNatPmpRequest,
  encode: encodeNatPmpRequest,
  structured: natPmpRequest.map(encodeNatPmpRequest),
  shaped: natPmpShaped,
  limit: undefined,
  shapePrefix: fromHex('00 02 00 00 1f 90 1f 90 00 00 1c 20')
})

const natPmpResponseTarget = binaryTarget<NatPmpResponse>({
  name: 'natpmp-response',
  parser: 'decodeNatPmpResponse',
  decode: decodeNatPmpResponse,
  // Error replies decode without their padding; the shortest encoding is the canonical one.
  encode: (value) => encodeNatPmpResponse(value),
  structured: natPmpResponse,
  shaped: natPmpShaped,
  limit: undefined,
  shapePrefix: fromHex('00 81 00 00 00 00 0e 10 13 88 13 88 00 00 1c 20')
})

const pcpRequestTarget = binaryTarget<PcpRequest>({
  name: 'pcp-request',
  parser: 'decodePcpRequest',
  decode: decodePcpRequest,
  encode: encodePcpRequest,
  structured: pcpRequest.map(encodePcpRequest),
  shaped: pcpShaped(0),
  limit: PCP_MAX_PACKET,
  shapePrefix: fromHex(pcpRequests[0]!.hex)
})

const pcpResponseTarget = binaryTarget<PcpResponse>({
  name: 'pcp-response',
  parser: 'decodePcpResponse',
  decode: decodePcpResponse,
  encode: encodePcpResponse,
  structured: pcpResponse.map(encodePcpResponse),
  shaped: pcpShaped(0x80),
  limit: PCP_MAX_PACKET,
  shapePrefix: fromHex(`02 80 00 00 ${'00 '.repeat(20)}`)
})

// ---------------------------------------------------------------------------------------------
// SSDP

const LOCATIONS = [
  'http://192.168.1.1:5000/rootDesc.xml', 'https://192.0.2.1/d.xml', 'http://[fe80::1]:49152/desc', 'http://gw/', 'http://192.0.2.1:0/',
  'http://', 'http:/x', 'http://[::1', 'ftp://192.0.2.1/d.xml', 'file:///etc/passwd', 'javascript:alert(1)', '//192.0.2.1/d.xml',
  '/rootDesc.xml', 'http://169.254.169.254/latest/meta-data/', 'http://user:pw@192.0.2.1/', 'http://a b/', 'http://%zz/',
  'http://192.0.2.1:99999/', 'http://0x7f.1/', `http://192.0.2.1/${'a'.repeat(3000)}`, ' http://192.0.2.1/ ', 'HTTP://GW/'
]
const SSDP_VALUES = [
  ...LOCATIONS, 'ssdp:alive', 'ssdp:byebye', 'ssdp:update', 'ssdp:ALIVE', 'ssdp:all', 'upnp:rootdevice', '"ssdp:discover"', 'ssdp:discover',
  DeviceType.InternetGatewayDevice2, ServiceType.WANIPConnection1, 'max-age=1800', 'max-age = "300"', 'no-cache="Ext", max-age=1',
  'max-age=', 'max-age=-1', 'max-age=99999999999999', 'max-age=1e3', '0', '1', '-1', '0042', '2147483647', '2147483648',
  '65535', '65536', '999999999999', '1.5', '', ' ', '\t', 'uuid:00000000-0000-0000-0000-000000000000::upnp:rootdevice',
  'OpenWrt/23.05 UPnP/1.1 MiniUPnPd/2.3.3', '239.255.255.250:1900', 'é', '\u00ff\u00fe'
]
const SSDP_NAMES = [
  'LOCATION', 'Location', 'location', 'ST', 'NT', 'NTS', 'USN', 'SERVER', 'CACHE-CONTROL', 'EXT', 'HOST', 'MAN', 'MX', 'USER-AGENT',
  'BOOTID.UPNP.ORG', 'CONFIGID.UPNP.ORG', 'NEXTBOOTID.UPNP.ORG', 'SEARCHPORT.UPNP.ORG', 'OPT', '01-NLS', 'X-User-Agent',
  '', ' ', 'LOCATION ', 'a b', 'X:Y', '(bad)', 'é', '__proto__', 'constructor'
]
const SSDP_START_LINES = [
  'HTTP/1.1 200 OK', 'HTTP/1.0 200 OK', 'HTTP/1.1 200', 'http/1.1 200 ok', 'HTTP/1.1 404 Not Found', 'HTTP/2 200', 'HTTP/1.1',
  'NOTIFY * HTTP/1.1', 'notify * http/1.1', 'M-SEARCH * HTTP/1.1', 'M-SEARCH / HTTP/1.1', 'NOTIFY * HTTP/1.1 extra', 'GET / HTTP/1.1',
  'SUBSCRIBE * HTTP/1.1', '', ' ', 'HTTP/1.1\t200\tOK', ' HTTP/1.1 200 OK'
]

type LineEdit = { op: 'case' | 'space' | 'colon' | 'duplicate' | 'delete' | 'swap' | 'value' | 'add' | 'fold' | 'start', at: number, pick: number, other: number }

const lineEdit: fc.Arbitrary<LineEdit> = fc.record({
  op: fc.constantFrom('case', 'space', 'colon', 'duplicate', 'delete', 'swap', 'value', 'add', 'fold', 'start'),
  at: fc.nat(),
  pick: fc.nat(),
  other: fc.nat()
})

function applyLineEdit (lines: string[], edit: LineEdit): string[] {
  if (lines.length === 0) return [SSDP_START_LINES[edit.pick % SSDP_START_LINES.length]!]
  const out = lines.slice()
  // Headers are lines 1..; the start line is edited only by 'start'.
  const i = lines.length > 1 ? 1 + (edit.at % (lines.length - 1)) : 0
  const line = out[i]!
  const colon = line.indexOf(':')
  const name = colon === -1 ? line : line.slice(0, colon)
  const rest = colon === -1 ? '' : line.slice(colon)
  switch (edit.op) {
    case 'case':
      out[i] = (edit.pick % 3 === 0 ? name.toLowerCase() : edit.pick % 3 === 1 ? name.toUpperCase() : name.replace(/./g, (c, k: number) => k % 2 === 0 ? c.toLowerCase() : c.toUpperCase())) + rest
      break
    case 'space':
      out[i] = [`${name} ${rest}`, `${name}\t${rest}`, ` ${line}`, `\t${line}`, `${name}:${rest.slice(1).trim()}`, `${line}   `][edit.pick % 6]!
      break
    case 'colon':
      out[i] = colon === -1 ? `${line}:` : name + rest.slice(1)
      break
    case 'duplicate':
      out.splice(i, 0, `${name}: ${SSDP_VALUES[edit.pick % SSDP_VALUES.length]!}`)
      break
    case 'delete':
      out.splice(i, 1)
      break
    case 'swap': {
      const j = edit.other % lines.length
      out[i] = lines[j]!
      out[j] = line
      break
    }
    case 'value':
      out[i] = `${name}: ${SSDP_VALUES[edit.pick % SSDP_VALUES.length]!}`
      break
    case 'add':
      out.splice(i, 0, `${SSDP_NAMES[edit.pick % SSDP_NAMES.length]!}: ${SSDP_VALUES[edit.other % SSDP_VALUES.length]!}`)
      break
    case 'fold': {
      // obs-fold (RFC 9112 §5.2): the value continues on lines starting with whitespace.
      const cut = Math.floor(line.length / 2)
      const pieces = Array.from({ length: 1 + (edit.other % 4) }, () => ` ${line.slice(cut)}`)
      out.splice(i, 1, line.slice(0, cut), ...pieces)
      break
    }
    case 'start':
      out[0] = SSDP_START_LINES[edit.pick % SSDP_START_LINES.length]!
      break
  }
  return out
}

const EOLS = ['\r\n', '\n', '\r', '\r\r\n', '\n\r']

/** Header-level edits (names, values, folding, start line, line ends), then maybe byte edits. */
function mutatedDatagram (seeds: fc.Arbitrary<Uint8Array>): fc.Arbitrary<Uint8Array> {
  const ending = fc.record({ eol: fc.constantFrom(...EOLS), mixed: fc.boolean(), final: fc.constantFrom('keep', 'none', 'body', 'blank-lines') })
  const headerLevel = fc.tuple(seeds, fc.array(lineEdit, { minLength: 1, maxLength: 6 }), ending).map(([seed, edits, { eol, mixed, final }]) => {
    const lines = edits.reduce(applyLineEdit, fromUtf8.decode(seed).replace(/(\r?\n)+$/, '').split(/\r?\n/))
    let text = mixed ? lines.map((l, k) => l + EOLS[k % EOLS.length]!).join('') : lines.join(eol) + eol
    if (final === 'keep') text += eol
    else if (final === 'body') text += `${eol}<html>${'x'.repeat(40)}</html>`
    else if (final === 'blank-lines') text += eol.repeat(5)
    return utf8.encode(text)
  })
  return fc.oneof(
    { weight: 3, arbitrary: headerLevel },
    { weight: 2, arbitrary: mutatedBytes(seeds, ssdpFixtures, MAX_SSDP_MESSAGE_BYTES + 16) },
    { weight: 2, arbitrary: mutatedBytes(headerLevel, ssdpFixtures, MAX_SSDP_MESSAGE_BYTES + 16) }
  )
}

/** LOCATIONs the encoders accept (the rest of LOCATIONS comes in through mutations). */
const location = fc.oneof(fc.constantFrom(...LOCATIONS.slice(0, 5)), fc.tuple(ipv4, uint16, fc.string({ unit: printable, maxLength: 20 }))
  .map(([host, port, path]) => `http://${host}:${port}/${encodeURIComponent(path)}`))
/** ST, NT and USN values: not empty (encoders refuse that), anything else goes. */
const ssdpToken = fc.oneof(fc.constantFrom(...SSDP_VALUES.slice(LOCATIONS.length)), fieldText(40)).map((s) => s.trim() === '' ? 'x' : s)
const uint31 = fc.oneof(fc.integer({ min: 0, max: 0x7fffffff }), fc.constantFrom(0, 1, 0x7fffffff))

const ssdpStructured: fc.Arbitrary<Uint8Array> = fc.oneof(
  fc.record({
    location, st: ssdpToken, usn: ssdpToken, server: fieldText(60),
    cacheMaxAgeSeconds: fc.option(uint31, { nil: undefined }),
    bootId: fc.option(uint31, { nil: undefined }),
    configId: fc.option(uint31, { nil: undefined }),
    searchPort: fc.option(fc.integer({ min: 1, max: 65535 }), { nil: undefined })
  }).map(encodeSsdpResponse),
  fc.record({ nts: fc.constant('ssdp:alive' as const), nt: ssdpToken, usn: ssdpToken, location, server: fieldText(60), cacheMaxAgeSeconds: fc.option(uint31, { nil: undefined }) })
    .map(encodeNotify),
  fc.record({ nts: fc.constant('ssdp:byebye' as const), nt: ssdpToken, usn: ssdpToken, bootId: fc.option(uint31, { nil: undefined }) }).map(encodeNotify),
  fc.record({ nts: fc.constant('ssdp:update' as const), nt: ssdpToken, usn: ssdpToken, location, bootId: uint31, nextBootId: uint31 }).map(encodeNotify),
  fc.record({ searchTarget: ssdpToken, mx: fc.integer({ min: 1, max: 120 }), userAgent: fc.option(fieldText(60), { nil: undefined }) }).map(encodeMSearch),
  // Assembled from SSDP pieces, in any order and with any separators.
  fc.tuple(
    fc.constantFrom(...SSDP_START_LINES),
    fc.array(fc.tuple(fc.constantFrom(...SSDP_NAMES), fc.constantFrom(':', ': ', ' : ', ':\t', ''), fc.oneof(fc.constantFrom(...SSDP_VALUES), fieldText(30)), fc.constantFrom(...EOLS)), { maxLength: 14 })
  ).map(([start, headers]) => utf8.encode(`${start}\r\n${headers.map(([n, sep, v, eol]) => `${n}${sep}${v}${eol}`).join('')}\r\n`))
)

function isHttpUrl (text: string): boolean {
  try {
    const url = new URL(text)
    return (url.protocol === 'http:' || url.protocol === 'https:') && url.hostname !== ''
  } catch {
    return false
  }
}

function checkOptionalUint (value: unknown, max: number, what: string): void {
  if (value === undefined) return
  assert.ok(Number.isSafeInteger(value) && (value as number) >= 0 && (value as number) <= max, `${what} out of range: ${String(value)}`)
}

function checkSsdp (value: unknown): void {
  const message = value as ReturnType<typeof parseSsdpMessage>
  assert.ok(message.kind === 'search-response' || message.kind === 'notify' || message.kind === 'm-search', 'unknown kind')
  for (const name of message.headers.keys()) assert.match(name, /^[a-z0-9!#$%&'*+\-.^_`|~]+$/, 'header names are lower-case tokens')
  if (message.kind === 'm-search') {
    assert.ok(message.st !== '')
    checkOptionalUint(message.mx, 0x7fffffff, 'MX')
    return
  }
  if (message.kind === 'search-response' || message.location !== undefined) assert.ok(isHttpUrl(message.location!), `LOCATION ${message.location}`)
  if (message.kind === 'notify') {
    assert.ok(['ssdp:alive', 'ssdp:byebye', 'ssdp:update'].includes(message.nts))
    assert.ok(message.nts === 'ssdp:byebye' || message.location !== undefined, 'alive/update without LOCATION')
    checkOptionalUint(message.nextBootId, 0x7fffffff, 'NEXTBOOTID')
  }
  checkOptionalUint(message.cacheMaxAgeSeconds, 0x7fffffff, 'max-age')
  checkOptionalUint(message.bootId, 0x7fffffff, 'BOOTID')
  checkOptionalUint(message.configId, 0x7fffffff, 'CONFIGID')
  if (message.searchPort !== undefined) assert.ok(message.searchPort >= 1 && message.searchPort <= 65535)
}

const textBytes = (text: string): Uint8Array => utf8.encode(text)
const ssdpHead = 'HTTP/1.1 200 OK\r\nLOCATION: http://192.0.2.1:5000/rootDesc.xml\r\n'

const ssdpTarget: FuzzTarget<Uint8Array> = {
  name: 'ssdp',
  parser: 'parseSsdpMessage',
  allowed: [MalformedPacketError],
  input: fc.oneof(
    { weight: 3, arbitrary: ssdpStructured },
    { weight: 1, arbitrary: fc.uint8Array({ maxLength: 1500 }) },
    { weight: 1, arbitrary: fc.string({ unit: asciiChar, maxLength: 600 }).map(textBytes) },
    { weight: 6, arbitrary: mutatedDatagram(fc.oneof({ weight: 3, arbitrary: fc.constantFrom(...ssdpFixtures) }, { weight: 1, arbitrary: ssdpStructured })) }
  ),
  limit: MAX_SSDP_MESSAGE_BYTES,
  shapes: [
    { name: 'one long header line', build: (size) => textBytes(fill(`${ssdpHead}X-LONG: `, 'a', '\r\n\r\n', size)) },
    { name: 'many headers', build: (size) => textBytes(ssdpHead + Array.from({ length: Math.floor(size / 10) }, (_, i) => `h${i.toString(36)}: v\r\n`).join('').slice(0, size - ssdpHead.length)) },
    { name: 'one header repeated', build: (size) => textBytes(fill(ssdpHead, 'ST: x\r\n', '\r\n', size)) },
    { name: 'continuation lines', build: (size) => textBytes(fill(`${ssdpHead}X-FOLD: a\r\n`, ' a\r\n', '\r\n', size)) },
    { name: 'LF-only continuation lines', build: (size) => textBytes(fill('HTTP/1.1 200 OK\nLOCATION: http://192.0.2.1/\nX: y\n', ' a\n', '\n', size)) },
    { name: 'empty lines', build: (size) => textBytes(fill('', '\r\n', '', size)) },
    { name: 'one byte repeated', build: (size) => new Uint8Array(size).fill(0x41) },
    { name: 'colons', build: (size) => textBytes(fill(ssdpHead, ':', '', size)) },
    { name: 'long start line', build: (size) => textBytes(fill('NOTIFY ', '*', ' HTTP/1.1\r\n\r\n', size)) }
  ],
  parse: parseSsdpMessage,
  check: checkSsdp,
  size: (bytes) => bytes.length,
  show: showBytes
}

// ---------------------------------------------------------------------------------------------
// HTTP responses

/** The body cap the shapes are built around: MAX_SOAP_BYTES, the cap of most exchanges. */
export const HTTP_MAX_BODY = 64 * 1024

const HTTP_STATUS_LINES = [
  'HTTP/1.1 200 OK', 'HTTP/1.0 200 OK', 'HTTP/1.1 500 Internal Server Error', 'HTTP/1.1 200', 'HTTP/1.1 200 ', 'HTTP/1.1 404 Not Found',
  'HTTP/1.1 302 Found', 'HTTP/1.1 204 No Content', 'HTTP/1.1 304 Not Modified', 'HTTP/1.1 401 Unauthorized', 'HTTP/1.1\t200\tOK',
  'HTTP/1.1 999 Odd', 'HTTP/1.1 099 x', 'HTTP/1.1 20 OK', 'HTTP/2 200', 'HTTP/1.2 200 OK', 'http/1.1 200 ok', ' HTTP/1.1 200 OK', 'HTTP/1.1', ''
]
const HTTP_INTERIM = ['', 'HTTP/1.1 100 Continue\r\n\r\n', 'HTTP/1.1 102 Processing\r\nX: y\r\n\r\n', 'HTTP/1.1 100 Continue\n\n\r\n', 'HTTP/1.1 101 Switching Protocols\r\n\r\n']
const HTTP_NAMES = [
  'Content-Type', 'CONTENT-TYPE', 'Server', 'SERVER', 'Date', 'EXT', 'Connection', 'Content-Length', 'content-length', 'Transfer-Encoding',
  'transfer-encoding', 'Content Length', 'Content-Length ', ' Server', 'X-Junk', '__proto__', 'constructor', 'é', '', 'a:b'
]
const HTTP_VALUES = [
  'text/xml; charset="utf-8"', 'close', 'keep-alive', 'chunked', 'Chunked', 'gzip, chunked', 'chunked, gzip', 'identity', 'chunked, chunked',
  '0', '1', '5', ' 5 ', '5, 5', '5, 6', '05', '-1', '+5', '0x5', '99999999999999999999', '', 'Router \u0001 firmware', 'OpenWRT/18.06 UPnP/1.1 MiniUPnPd/2.1',
  'Thu, 01 Jan 1970 00:00:00 GMT', '\u00ff\u00fe'
]
const HTTP_EOLS = ['\r\n', '\n']

/** A body, split into chunks at the given cuts, each chunk-size line with the given decoration. */
function chunked (body: Uint8Array, cuts: number[], decorations: string[], trailer: string): Uint8Array {
  const points = [...new Set(cuts.map((c) => c % (body.length + 1)))].sort((a, b) => a - b)
  const parts: Uint8Array[] = []
  let from = 0
  points.push(body.length)
  points.forEach((to, k) => {
    if (to <= from) return
    const decoration = decorations[k % Math.max(1, decorations.length)] ?? ''
    parts.push(utf8.encode(`${decoration.startsWith('0') ? '0' : ''}${(to - from).toString(16)}${decoration.replace(/^0/, '')}\r\n`), body.subarray(from, to), utf8.encode('\r\n'))
    from = to
  })
  parts.push(utf8.encode(`0\r\n${trailer}\r\n`))
  return concat(...parts)
}

/**
 * Whole replies in every framing: Content-Length (right or wrong), chunked (with extensions,
 * leading zeros, trailers), close-delimited; after interim responses or not; then maybe junk.
 */
const httpStructured: fc.Arbitrary<Uint8Array> = fc.record({
  interim: fc.constantFrom(...HTTP_INTERIM),
  status: fc.oneof({ weight: 4, arbitrary: fc.constantFrom(...HTTP_STATUS_LINES.slice(0, 11)) }, { weight: 1, arbitrary: fc.constantFrom(...HTTP_STATUS_LINES) }),
  fields: fc.array(fc.tuple(fc.constantFrom(...HTTP_NAMES), fc.constantFrom(': ', ':', ' : ', ':\t'), fc.oneof(fc.constantFrom(...HTTP_VALUES), fieldText(30)), fc.boolean()), { maxLength: 6 }),
  eol: fc.constantFrom(...HTTP_EOLS),
  body: fc.oneof(fc.constantFrom(...xmlFixtures.slice(0, 8)), fieldText(200)).map((text) => utf8.encode(text)),
  framing: fc.constantFrom('length', 'length', 'chunked', 'chunked', 'close', 'length-short', 'length-long'),
  cuts: fc.array(fc.nat(), { maxLength: 8 }),
  decorations: fc.array(fc.constantFrom('', ';ext', '; name="v"', ' ', '0', '\t;x=y'), { maxLength: 4 }),
  trailer: fc.constantFrom('', 'X-Trailer: t\r\n', 'Expires: 0\r\nX: y\r\n'),
  junk: fc.constantFrom('', 'TRAILING JUNK', 'HTTP/1.1 200 OK\r\n\r\n', '\u0000\u00ff')
}).map((r) => {
  const fields = r.fields.map(([name, separator, value, folded]) => `${name}${separator}${folded ? `${value}${r.eol} more` : value}${r.eol}`)
  if (r.framing === 'chunked') fields.push(`Transfer-Encoding: chunked${r.eol}`)
  else if (r.framing !== 'close') fields.push(`Content-Length: ${r.body.length + (r.framing === 'length-short' ? -1 : r.framing === 'length-long' ? 7 : 0)}${r.eol}`)
  const head = utf8.encode(`${r.interim}${r.status}${r.eol}${fields.join('')}${r.eol}`)
  const body = r.framing === 'chunked' ? chunked(r.body, r.cuts, r.decorations, r.trailer) : r.body
  return concat(head, body, utf8.encode(r.junk))
})

/** Replies as routers send them, to be mutated. */
const httpFixtures: Uint8Array[] = [
  ...xmlFixtures.slice(0, 6).map((xml) => utf8.encode(`HTTP/1.1 200 OK\r\nContent-Type: text/xml; charset="utf-8"\r\nConnection: close\r\nContent-Length: ${utf8.encode(xml).length}\r\nServer: OpenWRT/18.06 UPnP/1.1 MiniUPnPd/2.1\r\nExt:\r\n\r\n${xml}`)),
  ...xmlFixtures.slice(6, 10).map((xml) => chunked(utf8.encode(xml), [7, 100, 1000], ['', ';x'], '')).map((body) => concat(utf8.encode('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Type: text/xml\r\n\r\n'), body)),
  utf8.encode('HTTP/1.0 200 OK\nContent-Type: text/xml\n\n<root/>'),
  utf8.encode('HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 500 Internal Server Error\r\nContent-Length: 4\r\n\r\nfail'),
  utf8.encode('HTTP/1.1 200 OK\r\nServer: Router \u0001 firmware\r\nX-Fold: a\r\n b\r\nContent-Length: 2\r\n\r\nokJUNK'),
  utf8.encode('SSH-2.0-OpenSSH_9.2\r\n')
]

const httpHead = 'HTTP/1.1 200 OK\r\n'
const chunkedHead = `${httpHead}Transfer-Encoding: chunked\r\n\r\n`

/**
 * Replies for sendHttpRequest, which test/upnp/http.test.ts sends over loopback: node:http's
 * parser reads only from a socket, so it cannot be a synchronous target of fuzz/run.ts.
 */
export const httpReplies: fc.Arbitrary<Uint8Array> = fc.oneof(
  { weight: 3, arbitrary: httpStructured },
  { weight: 1, arbitrary: fc.uint8Array({ maxLength: 1200 }) },
  { weight: 1, arbitrary: fc.string({ unit: asciiChar, maxLength: 600 }).map((text) => textBytes(httpHead + text)) },
  { weight: 2, arbitrary: mutatedBytes(fc.oneof(fc.constantFrom(...httpFixtures), httpStructured), httpFixtures, MAX_HEADER_SECTION_BYTES + 16) },
  { weight: 2, arbitrary: mutatedDatagram(fc.oneof(fc.constantFrom(...httpFixtures), httpStructured)) }
)

/** Worst-case replies at a given size, for the same test: each must be read or refused in time. */
export const httpShapes: ReadonlyArray<Shape<Uint8Array>> = [
  { name: 'empty lines', build: (size) => textBytes(fill('', '\r\n', '', size)) },
  { name: 'one long field line', build: (size) => textBytes(fill(`${httpHead}X-Long: `, 'a', '\r\n\r\n', size)) },
  { name: 'many field lines', build: (size) => textBytes(fill(httpHead, 'X-Junk: yes\r\n', '\r\n', size)) },
  { name: 'one field repeated', build: (size) => textBytes(fill(httpHead, 'Content-Length: 1\r\n', '\r\n', size)) },
  { name: 'obs-fold lines', build: (size) => textBytes(fill(`${httpHead}X-Fold: a\r\n`, ' a\r\n', '\r\n', size)) },
  { name: 'interim responses', build: (size) => textBytes(fill('', 'HTTP/1.1 100 Continue\r\n\r\n', '', size)) },
  { name: 'one-byte chunks', build: (size) => textBytes(fill(chunkedHead, '1\r\na\r\n', '0\r\n\r\n', size)) },
  { name: 'one-byte chunks, LF only', build: (size) => textBytes(fill(chunkedHead, '1\na\n', '0\n\n', size)) },
  { name: 'chunk-size leading zeros', build: (size) => textBytes(fill(chunkedHead, '0', '1\r\na\r\n0\r\n\r\n', size)) },
  { name: 'long chunk extension', build: (size) => textBytes(fill(`${chunkedHead}1;`, 'x', '\r\na\r\n0\r\n\r\n', size)) },
  { name: 'many trailers', build: (size) => textBytes(fill(`${chunkedHead}1\r\na\r\n0\r\n`, 'X-T: y\r\n', '\r\n', size)) },
  { name: 'close-delimited body', build: (size) => textBytes(fill(`${httpHead}\r\n`, 'x', '', size)) },
  { name: 'Content-Length body', build: (size) => textBytes(fill(`${httpHead}Content-Length: ${HTTP_MAX_BODY}\r\n\r\n`, 'x', '', size)) },
  { name: 'one byte repeated', build: (size) => new Uint8Array(size).fill(0x48) }
]

// ---------------------------------------------------------------------------------------------
// XML: device descriptions and SOAP

const XML_NAMES = [
  'root', 'device', 'deviceList', 'serviceList', 'service', 'serviceType', 'serviceId', 'controlURL', 'eventSubURL', 'SCPDURL',
  'URLBase', 'deviceType', 'UDN', 'friendlyName', 'specVersion', 'Envelope', 's:Envelope', 'Body', 's:Body', 'SOAP-ENV:Body',
  'Fault', 's:Fault', 'detail', 'UPnPError', 'errorCode', 'errorDescription', 'faultstring', 'faultcode',
  'u:GetExternalIPAddressResponse', 'u:GetStatusInfoResponse', 'u:AddPortMappingResponse', 'u:AddAnyPortMappingResponse',
  'u:DeletePortMappingResponse', 'u:GetSpecificPortMappingEntryResponse', 'u:AddPortMapping', 'NewExternalIPAddress',
  'NewConnectionStatus', 'NewUptime', 'NewLastConnectionError', 'NewReservedPort', 'NewInternalPort', 'NewInternalClient',
  'NewEnabled', 'NewLeaseDuration', 'NewPortMappingDescription', 'NewRemoteHost', 'NewExternalPort', 'NewProtocol',
  'ROOT', 'DEVICE', 'ERRORCODE', 'a', 'x:y', 'x:y:z', '_', 'é', 'xmlns', 'xmlns:u', 'xml:lang', '__proto__', 'constructor'
]
const XML_ATTRIBUTES = [
  'xmlns="urn:schemas-upnp-org:device-1-0"', 'xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"', 'xmlns:u="urn:schemas-upnp-org:service:WANIPConnection:1"',
  'xmlns=""', 'xmlns:u=""', 'xmlns:xml="http://example/"', 'xmlns:xmlns="x"', 's:encodingStyle="http://schemas.xmlsoap.org/soap/encoding/"',
  'a="1"', 'a="1" a="2"', "a='1'", 'a=1', 'a', 'a="<"', 'a="&amp;"', 'a="&bogus;"', 'a="\u0000"', 'u:a="1" v:a="2"', '__proto__="x"'
]
const XML_ENTITIES = [
  '&amp;', '&lt;', '&gt;', '&quot;', '&apos;', '&#x41;', '&#65;', '&#0;', '&#x0;', '&#xD800;', '&#x110000;', '&#99999999999999999999;',
  '&#x;', '&#;', '&;', '&', '&amp', '&bogus;', '&constructor;', '&__proto__;', '&toString;', '&lol9;', '&%;', '&#x2028;', '&#xFFFE;'
]
const XML_MARKUP = [
  '<!-- c -->', '<!--', '-->', '<!-- -- -->', '<![CDATA[ <x> & ]]>', '<![CDATA[', ']]>', '<?pi x?>', '<?xml version="1.0"?>', '<?', '?>',
  '<!DOCTYPE root>', '<!ENTITY x "y">', '<', '>', '</', '/>', '<>', '</>', '<a', '<a/>', '<a>', '</a>', '<:a/>', '<a:/>', '\u0000', '\ufeff',
  '\ud800', '\uffff', '\r', '\r\n', '\t', ' '
]
const DOCTYPES = [
  '<!DOCTYPE root>',
  '<!DOCTYPE root [<!ENTITY e "ee">]>',
  '<!DOCTYPE root [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>',
  '<!DOCTYPE root [<!ENTITY x SYSTEM "http://192.0.2.1/x">]>',
  '<!DOCTYPE root [<!ENTITY % p SYSTEM "http://192.0.2.1/p.dtd"> %p;]>',
  '<!DOCTYPE root SYSTEM "http://192.0.2.1/root.dtd">',
  '<!DOCTYPE root [<!ELEMENT root ANY><!ATTLIST root a CDATA "default">]>',
  '<!DOCTYPE root [',
  '<!DOCTYPE'
]
const XML_VALUES = [
  '', ' ', '0', '1', '-1', '+1', '714', '718', '725', '606', '402', '501', ' 718 ', '0x2CA', '7.18e2', '99999999999999999999', '9007199254740993',
  '65535', '65536', '4294967295', '4294967296', '0000000080', '1 2', 'true', 'FALSE', 'yes', 'No', 'Connected', 'Up', 'Disconnected',
  '203.0.113.5', '0.0.0.0', '127.0.0.1', '169.254.1.1', '224.0.0.1', '255.255.255.255', '100.64.0.1', '1.2.3', '01.2.3.4', '::1', ' 1.2.3.4 ',
  '/ctl/IPConn', 'ctl', 'http://192.168.1.1:5000/ctl', 'https://[fe80::1]/x', 'ftp://x/', 'javascript:alert(1)', '//192.0.2.66/x',
  'http://', 'http://[', '../../x', 'http://169.254.169.254/', 'file:///etc/passwd',
  ServiceType.WANIPConnection1, ServiceType.WANIPConnection2, ServiceType.WANPPPConnection1, ServiceType.DslForumWANIPConnection1,
  'urn:schemas-upnp-org:service:WANIPConnection:99', 'urn:schemas-upnp-org:service:WANIPConnection:', 'urn:schemas-upnp-org:service:WANIPConnection:x',
  DeviceType.InternetGatewayDevice1, DeviceType.InternetGatewayDevice2, 'urn:schemas-upnp-org:device:InternetGatewayDevice:0',
  'a'.repeat(5000), '<x>', '&', '\u0000'
]

type XmlEdit = {
  op: 'rename' | 'recase' | 'drop' | 'dup' | 'swap' | 'attr' | 'attrs' | 'entity' | 'content' | 'doctype' | 'markup' | 'wrap' | 'nest' | 'run'
  at: number
  pick: number
  count: number
}

const xmlEdit: fc.Arbitrary<XmlEdit> = fc.record({
  op: fc.constantFrom('rename', 'recase', 'drop', 'dup', 'swap', 'attr', 'attrs', 'entity', 'content', 'doctype', 'markup', 'wrap', 'nest', 'run'),
  at: fc.nat(),
  pick: fc.nat(),
  count: fc.oneof({ weight: 6, arbitrary: fc.integer({ min: 1, max: 8 }) }, { weight: 1, arbitrary: fc.integer({ min: 9, max: 200 }) })
})

/** Where each tag (`<...>`, not crossing another `<`) starts and ends. */
function tagsOf (xml: string): Array<[number, number]> {
  const tags: Array<[number, number]> = []
  const pattern = /<[^<>]*>/g
  for (let m = pattern.exec(xml); m !== null; m = pattern.exec(xml)) tags.push([m.index, m.index + m[0].length])
  return tags
}

function applyXmlEdit (xml: string, edit: XmlEdit): string {
  const tags = tagsOf(xml)
  const pick = <T>(list: readonly T[]): T => list[edit.pick % list.length]!
  const insertAt = (at: number, text: string): string => xml.slice(0, at) + text + xml.slice(at)
  // A position just after some tag, i.e. in element content.
  const contentAt = tags.length === 0 ? edit.at % (xml.length + 1) : tags[edit.at % tags.length]![1]
  if (tags.length === 0 && edit.op !== 'doctype' && edit.op !== 'markup' && edit.op !== 'entity' && edit.op !== 'nest' && edit.op !== 'run') return xml
  const [start, end] = tags[edit.at % Math.max(1, tags.length)] ?? [0, 0]
  const tag = xml.slice(start, end)
  const name = /^<\/?([^\s/>]*)/.exec(tag)?.[1] ?? ''
  const nameAt = start + (tag.startsWith('</') ? 2 : 1)
  switch (edit.op) {
    case 'rename':
      return xml.slice(0, nameAt) + pick(XML_NAMES) + xml.slice(nameAt + name.length)
    case 'recase':
      return xml.slice(0, nameAt) + (edit.pick % 2 === 0 ? name.toUpperCase() : name.toLowerCase()) + xml.slice(nameAt + name.length)
    case 'drop':
      return xml.slice(0, start) + xml.slice(end)
    case 'dup':
      return xml.slice(0, end) + tag.repeat(Math.min(edit.count, 20)) + xml.slice(end)
    case 'swap': {
      const [s2, e2] = tags[edit.pick % tags.length]!
      if (s2 === start) return xml
      const [a, b] = s2 < start ? [[s2, e2], [start, end]] : [[start, end], [s2, e2]]
      return xml.slice(0, a[0]) + xml.slice(b[0], b[1]) + xml.slice(a[1], b[0]) + xml.slice(a[0], a[1]) + xml.slice(b[1])
    }
    case 'attr':
    case 'attrs': {
      if (tag.startsWith('</') || tag.startsWith('<?') || tag.startsWith('<!')) return xml
      const at = tag.endsWith('/>') ? end - 2 : end - 1
      const text = edit.op === 'attr'
        ? ` ${pick(XML_ATTRIBUTES)}`
        : Array.from({ length: edit.count }, (_, k) => edit.pick % 2 === 0 ? ` a${k}="v"` : ` xmlns:p${k}="urn:x:${k}"`).join('')
      return insertAt(at, text)
    }
    case 'entity':
      return insertAt(contentAt, pick(XML_ENTITIES).repeat(Math.min(edit.count, 50)))
    case 'content': {
      const next = xml.indexOf('<', contentAt)
      return xml.slice(0, contentAt) + escapeSome(pick(XML_VALUES), edit.count) + xml.slice(next === -1 ? xml.length : next)
    }
    case 'doctype': {
      const declEnd = xml.startsWith('<?xml') ? xml.indexOf('?>') + 2 : 0
      return insertAt(declEnd, pick(DOCTYPES))
    }
    case 'markup':
      return insertAt(edit.count % 2 === 0 ? contentAt : edit.at % (xml.length + 1), pick(XML_MARKUP))
    case 'wrap': {
      const [s2, e2] = tags[edit.pick % tags.length]!
      const [from, to] = s2 < start ? [s2, end] : [start, e2]
      const open = Array.from({ length: edit.count }, () => '<w>').join('')
      return xml.slice(0, from) + open + xml.slice(from, to) + '</w>'.repeat(edit.count) + xml.slice(to)
    }
    case 'nest':
      return insertAt(contentAt, `<${pick(XML_NAMES)}>`.repeat(edit.count))
    case 'run':
      return insertAt(edit.at % (xml.length + 1), pick(['a', ' ', '<', '&', '\u0000', '>', '"', '-', '\u00e9', '\ud83d\ude00']).repeat(edit.count * 40))
  }
}

/** Some values go in escaped (as an honest device sends them), some raw. */
function escapeSome (value: string, choice: number): string {
  return choice % 3 === 0 ? value : escapeXml(xmlSafe(value))
}

/** Tag, attribute, entity and markup edits; then, for half, byte edits on the UTF-8 encoding. */
function mutatedXml (seeds: fc.Arbitrary<string>, donors: readonly Uint8Array[], maxRun: number): fc.Arbitrary<string> {
  const markupLevel = fc.tuple(seeds, fc.array(xmlEdit, { minLength: 1, maxLength: 5 })).map(([seed, edits]) => edits.reduce(applyXmlEdit, seed))
  return fc.oneof(
    { weight: 4, arbitrary: markupLevel },
    { weight: 2, arbitrary: mutatedText(seeds, donors, maxRun) },
    { weight: 2, arbitrary: mutatedText(markupLevel, donors, maxRun) }
  )
}

/** Random strings: arbitrary UTF-16, bytes read as UTF-8, and soups of XML tokens. */
const randomXml: fc.Arbitrary<string> = fc.oneof(
  fc.string({ unit: fc.oneof(utf16Unit, nonAscii), maxLength: 400 }),
  fc.uint8Array({ maxLength: 600 }).map((bytes) => fromUtf8.decode(bytes)),
  fc.array(fc.oneof(fc.constantFrom(...XML_MARKUP, ...XML_ENTITIES, ...XML_NAMES.map((n) => `<${n}>`), ...XML_NAMES.map((n) => `</${n}>`)), fc.string({ maxLength: 6 })), { maxLength: 60 })
    .map((parts) => parts.join(''))
)

/** Prologue and epilogue variations real devices send: declaration or not, BOM, whitespace, trailing NULs. */
const framing = fc.record({
  decl: fc.constantFrom('', '<?xml version="1.0"?>\r\n', '<?xml version="1.0" encoding="utf-8" standalone="yes"?>\n', '\ufeff<?xml version="1.0"?>'),
  lead: fc.constantFrom('', '\n', '  \r\n', '\ufeff'),
  trail: fc.constantFrom('', '\r\n', '\u0000', '\n\u0000\u0000')
})

// Device descriptions ------------------------------------------------------------------------

interface TreeService { serviceType: string, serviceId: string, controlURL: string, eventSubURL: string, SCPDURL: string }
interface TreeDevice { deviceType: string, UDN: string, friendlyName: string, services: TreeService[], devices: TreeDevice[] }

const serviceType = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom(...Object.values(ServiceType), 'urn:schemas-upnp-org:service:WANIPConnection:2', 'urn:schemas-upnp-org:service:WANPPPConnection:2',
    'urn:schemas-upnp-org:service:WANIPConnection:99', 'urn:schemas-upnp-org:service:WANIPConnection:', 'urn:schemas-upnp-org:service:WANIPConnection:1000000',
    'urn:schemas-upnp-org:service:WANIPConnection:x', 'urn:schemas-upnp-org:service:Layer3Forwarding:1', '') },
  { weight: 1, arbitrary: fieldText(40) }
)
const deviceType = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom(...Object.values(DeviceType), 'urn:schemas-upnp-org:device:InternetGatewayDevice:3', 'urn:schemas-upnp-org:device:InternetGatewayDevice:',
    'urn:dslforum-org:device:InternetGatewayDevice:1', '') },
  { weight: 1, arbitrary: fieldText(40) }
)
const url = fc.oneof({ weight: 4, arbitrary: fc.constantFrom(...XML_VALUES.slice(XML_VALUES.indexOf('/ctl/IPConn'), XML_VALUES.indexOf(ServiceType.WANIPConnection1))) }, { weight: 1, arbitrary: fieldText(30) })

const treeService: fc.Arbitrary<TreeService> = fc.record({ serviceType, serviceId: fieldText(20), controlURL: url, eventSubURL: url, SCPDURL: url })
const { device: treeDevice } = fc.letrec<{ device: TreeDevice }>((tie) => ({
  device: fc.record({
    deviceType,
    UDN: fieldText(20),
    friendlyName: fieldText(20),
    services: fc.array(treeService, { maxLength: 3 }),
    devices: fc.oneof({ depthSize: 'small' }, fc.constant<TreeDevice[]>([]), fc.array(tie('device'), { maxLength: 2 }))
  })
}))

interface XmlStyle { prefix: string, indent: string, mangle: boolean, escape: boolean }

function element (name: string, content: string, style: XmlStyle): string {
  const n = style.prefix + (style.mangle ? name.toUpperCase() : name)
  return `${style.indent}<${n}>${content}</${n}>`
}

function text (value: string, style: XmlStyle): string {
  return style.escape ? escapeXml(xmlSafe(value)) : value
}

function deviceXml (device: TreeDevice, style: XmlStyle): string {
  const services = device.services.map((s) => element('service',
    element('serviceType', text(s.serviceType, style), style) + element('serviceId', text(s.serviceId, style), style) +
    element('controlURL', text(s.controlURL, style), style) + element('eventSubURL', text(s.eventSubURL, style), style) +
    element('SCPDURL', text(s.SCPDURL, style), style), style)).join('')
  const devices = device.devices.map((d) => deviceXml(d, style)).join('')
  return element('device',
    element('deviceType', text(device.deviceType, style), style) + element('friendlyName', text(device.friendlyName, style), style) +
    element('UDN', text(device.UDN, style), style) + element('serviceList', services, style) +
    (devices === '' ? '' : element('deviceList', devices, style)), style)
}

const xmlStyle: fc.Arbitrary<XmlStyle> = fc.record({
  prefix: fc.constantFrom('', '', 'd:'),
  indent: fc.constantFrom('', '\n  ', '\r\n\t'),
  // Element names are matched without regard to case; some firmware writes them oddly.
  mangle: fc.oneof({ weight: 9, arbitrary: fc.constant(false) }, { weight: 1, arbitrary: fc.constant(true) }),
  escape: fc.oneof({ weight: 9, arbitrary: fc.constant(true) }, { weight: 1, arbitrary: fc.constant(false) })
})

const descriptionStructured: fc.Arbitrary<string> = fc.tuple(treeDevice, xmlStyle, fc.option(url, { nil: undefined }), framing)
  .map(([device, style, urlBase, { decl, lead, trail }]) => {
    const ns = style.prefix === '' ? ' xmlns="urn:schemas-upnp-org:device-1-0"' : ` xmlns:${style.prefix.slice(0, -1)}="urn:schemas-upnp-org:device-1-0"`
    const base = urlBase === undefined ? '' : element('URLBase', text(urlBase, style), style)
    const spec = element('specVersion', element('major', '1', style) + element('minor', '0', style), style)
    return `${lead}${decl}<${style.prefix}root${ns}>${spec}${base}${deviceXml(device, style)}</${style.prefix}root>${trail}`
  })

const BASE_URL = 'http://192.168.1.1:5000/rootDesc.xml'

function checkDescription (value: unknown): void {
  const { root, candidates } = value as { root: ReturnType<typeof parseDescription>, candidates: ReturnType<typeof findWanServices> }
  assert.ok(isHttpUrl(root.baseUrl), `baseUrl ${root.baseUrl}`)
  const walk = (device: UpnpDevice): void => {
    for (const service of device.services) {
      for (const u of [service.controlURL, service.eventSubURL, service.SCPDURL]) assert.ok(u === undefined || /^https?:$/.test(new URL(u).protocol), `URL ${String(u)}`)
    }
    device.devices.forEach(walk)
  }
  walk(root)
  let rank = -1
  for (const c of candidates) {
    assert.ok(/^https?:$/.test(new URL(c.controlURL).protocol), `controlURL ${c.controlURL}`)
    assert.ok(c.igdVersion === 1 || c.igdVersion === 2)
    assert.ok(Number.isSafeInteger(c.serviceVersion) && c.serviceVersion >= 1, `serviceVersion ${c.serviceVersion}`)
    assert.ok(c.kind === 'WANIPConnection' || c.kind === 'WANPPPConnection')
    const r = (c.legacy ? 2 : 0) + (c.kind === 'WANPPPConnection' ? 1 : 0)
    assert.ok(r >= rank, 'candidates out of order')
    rank = r
  }
}

// SOAP ---------------------------------------------------------------------------------------

const SERVICE = ServiceType.WANIPConnection1
const soapServiceType = fc.constantFrom<string>(SERVICE, ServiceType.WANIPConnection2, ServiceType.WANPPPConnection1, ServiceType.DslForumWANIPConnection1)
/** What goes through the encoders' escaping; raw markup and unescaped text come from the mutations. */
const xmlValue = fc.oneof({ weight: 3, arbitrary: fc.constantFrom(...XML_VALUES.filter((v) => v.length < 100)) }, { weight: 1, arbitrary: fieldText(30) }).map(xmlSafe)

/** The out-arguments each action's response carries (WANIPConnection:1 §2.4), in order. */
const RESPONSE_ARGS: Record<string, readonly string[]> = {
  GetExternalIPAddress: ['NewExternalIPAddress'],
  GetStatusInfo: ['NewConnectionStatus', 'NewLastConnectionError', 'NewUptime'],
  AddPortMapping: [],
  AddAnyPortMapping: ['NewReservedPort'],
  DeletePortMapping: [],
  GetSpecificPortMappingEntry: ['NewInternalPort', 'NewInternalClient', 'NewEnabled', 'NewPortMappingDescription', 'NewLeaseDuration'],
  GetGenericPortMappingEntry: ['NewRemoteHost', 'NewExternalPort', 'NewProtocol', 'NewInternalPort', 'NewInternalClient', 'NewEnabled', 'NewPortMappingDescription', 'NewLeaseDuration'],
  // WANIPv6FirewallControl:1
  GetFirewallStatus: ['FirewallEnabled', 'InboundPinholeAllowed'],
  GetOutboundPinholeTimeout: ['OutboundPinholeTimeout'],
  AddPinhole: ['UniqueID'],
  UpdatePinhole: [],
  DeletePinhole: [],
  GetPinholePackets: ['PinholePackets'],
  CheckPinholeWorking: ['IsWorking']
}
const ALL_ARGS = [...new Set(Object.values(RESPONSE_ARGS).flat())]

/** Mostly what the argument should hold, sometimes what routers have sent instead, sometimes anything. */
function argumentValue (name: string): fc.Arbitrary<string> {
  const decimal = (max: number): fc.Arbitrary<string> => fc.oneof(fc.integer({ min: 0, max }), fc.constantFrom(1, max)).map(String)
  const odd = ['', ' ', '0', '-1', '+80', ' 80 ', '0080', '1e3', '0x50', '65536', '4294967296', '99999999999', '1.5', 'NaN']
  const pools: Record<string, fc.Arbitrary<string>> = {
    NewReservedPort: decimal(65535),
    NewInternalPort: decimal(65535),
    NewExternalPort: decimal(65535),
    NewProtocol: fc.constantFrom('TCP', 'UDP', 'tcp', 'udp', ' TCP '),
    NewUptime: decimal(0xffffffff),
    NewLeaseDuration: decimal(0xffffffff),
    NewEnabled: fc.constantFrom('1', '0', 'true', 'false', 'yes', 'no', 'TRUE', ' No ', '2', ''),
    NewExternalIPAddress: fc.oneof(ipv4, fc.constantFrom(...XML_VALUES.slice(XML_VALUES.indexOf('203.0.113.5'), XML_VALUES.indexOf('/ctl/IPConn')))),
    NewInternalClient: ipv4,
    UniqueID: decimal(65535),
    PinholePackets: decimal(0xffffffff),
    OutboundPinholeTimeout: decimal(0xffffffff),
    FirewallEnabled: fc.constantFrom('1', '0', 'true', 'no', ' 1 '),
    InboundPinholeAllowed: fc.constantFrom('1', '0', 'false', 'yes', 'TRUE'),
    IsWorking: fc.constantFrom('1', '0', 'true', 'false', ''),
    NewConnectionStatus: fc.constantFrom('Connected', 'Up', 'Disconnected', 'Connecting', 'PendingDisconnect', 'connected', ' Connected ', '')
  }
  const own = pools[name]
  if (own === undefined) return xmlValue
  return fc.oneof({ weight: 6, arbitrary: own }, { weight: 1, arbitrary: fc.constantFrom(...odd) }, { weight: 1, arbitrary: xmlValue })
}

/** An action's response with its arguments, some dropped, some doubled, some foreign, in any order. */
function responseArgs (action: string): fc.Arbitrary<Array<[string, string]>> {
  const own = RESPONSE_ARGS[action]!
  return fc.tuple(
    fc.tuple(...own.map((name) => fc.option(argumentValue(name), { nil: undefined, freq: 8 }))),
    fc.array(fc.tuple(fc.constantFrom(...ALL_ARGS, 'X'), xmlValue), { maxLength: 2 }),
    fc.boolean()
  ).map(([values, extra, reverse]) => {
    const args: Array<[string, string]> = []
    own.forEach((name, k) => { if (values[k] !== undefined) args.push([name, values[k]]) })
    args.push(...extra)
    return reverse ? args.reverse() : args
  })
}

/** UPnP faults with codes real IGDs send and codes nobody should. */
const faultCode = fc.oneof(fc.constantFrom(401, 402, 501, 606, 701, 702, 703, 704, 705, 709, 714, 715, 716, 718, 724, 725, 726, 727, 728, 729, 0, -1, -718), fc.integer(), fc.constant(Number.MAX_SAFE_INTEGER))
const soapFault = fc.tuple(faultCode, fc.option(fieldText(60).map(xmlSafe), { nil: undefined })).map(([code, description]) => encodeSoapFault(code, description))

/** Envelopes in other dress: another prefix, pretty-printed, no encodingStyle, the way some firmware writes them. */
function redress (xml: string, choice: number): string {
  switch (choice % 4) {
    case 0: return xml
    case 1: return xml.replace(/<(\/?)s:/g, '<$1SOAP-ENV:').replace('xmlns:s=', 'xmlns:SOAP-ENV=').replace('s:encodingStyle', 'SOAP-ENV:encodingStyle')
    case 2: return xml.replace(/></g, '>\r\n  <')
    default: return xml.replace(/ s:encodingStyle="[^"]*"/, '').replace(/<\?xml[^>]*\?>\s*/, '')
  }
}

function soapResponse (action: string): fc.Arbitrary<string> {
  return fc.tuple(soapServiceType, responseArgs(action), fc.nat(), framing)
    .map(([type, args, dress, { lead, trail }]) => lead + redress(encodeSoapResponse(type, action, args), dress) + trail)
}

const anyAction = fc.constantFrom(...Object.keys(RESPONSE_ARGS))
const soapStructured: fc.Arbitrary<string> = fc.oneof(
  { weight: 3, arbitrary: anyAction.chain(soapResponse) },
  { weight: 2, arbitrary: fc.tuple(soapFault, fc.nat()).map(([xml, dress]) => redress(xml, dress)) }
)

const mappingArgs = fc.record({
  remoteHost: fc.option(ipv4, { nil: undefined }),
  externalPort: fc.integer({ min: 1, max: 65535 }),
  protocol: transport,
  internalPort: fc.integer({ min: 1, max: 65535 }),
  internalClient: ipv4,
  enabled: fc.option(fc.boolean(), { nil: undefined }),
  description: fc.option(fieldText(40).map(xmlSafe), { nil: undefined }),
  leaseDurationSeconds: uint32
})
const soapRequestStructured: fc.Arbitrary<string> = fc.oneof(
  soapServiceType.map((type) => encodeGetExternalIPAddress(type).body),
  soapServiceType.map((type) => encodeGetStatusInfo(type).body),
  fc.tuple(soapServiceType, mappingArgs).map(([type, args]) => encodeAddPortMapping(type, args).body),
  fc.tuple(soapServiceType, mappingArgs).map(([type, args]) => encodeAddAnyPortMapping(type, args).body),
  fc.tuple(soapServiceType, mappingArgs).map(([type, args]) => encodeDeletePortMapping(type, args).body),
  fc.tuple(soapServiceType, mappingArgs).map(([type, args]) => encodeGetSpecificPortMappingEntry(type, args).body),
  fc.tuple(soapServiceType, fc.constantFrom('X', 'AddPortMapping', 'A-b.c_d'), fc.array(fc.tuple(fc.constantFrom('NewA', 'b', '_c'), xmlValue), { maxLength: 4 }))
    .map(([type, action, args]) => encodeSoapRequest(type, action, args).body)
)

const xmlDonors = [...xmlFixtures, ...htmlFixtures].map((x) => utf8.encode(x))

function xmlShapes (open: string, close: string): Array<Shape<string>> {
  const inside = (unit: string, tail = ''): Shape<string>['build'] => (size) => fill(open, unit, tail + close, size)
  return [
    { name: 'deep nesting', build: inside('<a>') },
    { name: 'deep nesting, closed', build: (size) => { const k = Math.floor((size - open.length - close.length) / 7); return open + '<a>'.repeat(k) + '</a>'.repeat(k) + close } },
    { name: 'many elements', build: inside('<a/>') },
    { name: 'many attributes', build: (size) => `${open}<a${distinct((k) => ` a${k}="v"`, size - open.length - close.length - 4)}/>${close}` },
    { name: 'many namespace declarations', build: (size) => `${open}<a${distinct((k) => ` xmlns:p${k}="urn:x"`, size - open.length - close.length - 4)}/>${close}` },
    { name: 'namespace declarations at every level', build: (size) => fill(open, `<a${distinct((k) => ` xmlns:p${k}="urn:x"`, 4000)}>`, close, size) },
    { name: 'long text', build: inside('a') },
    { name: 'long run of <', build: inside('<') },
    { name: 'long run of &', build: inside('&') },
    { name: 'many entity references', build: inside('&amp;') },
    { name: 'many character references', build: inside('&#x41;') },
    { name: 'entity declarations', build: (size) => fill('<!DOCTYPE root [', '<!ENTITY e "&e;&e;&e;&e;">', `]>${open}&e;${close}`, size) },
    { name: 'long comment', build: (size) => fill(`${open}<!--`, 'c', `-->${close}`, size) },
    { name: 'long CDATA', build: (size) => fill(`${open}<![CDATA[`, 'c', `]]>${close}`, size) },
    { name: 'long tag name', build: (size) => fill(`${open}<`, 'a', `>${close}`, size) },
    { name: 'long close tag name', build: (size) => fill(`${open}</`, 'a', `>${close}`, size) },
    { name: 'duplicate attributes with long names', build: (size) => { const n = 'd'.repeat(Math.max(1, Math.floor((size - open.length - close.length) / 2) - 20)); return `${open}<a ${n}="1" ${n}="2"/>${close}` } },
    { name: 'long attribute value', build: (size) => fill(`${open}<a v="`, 'v', `"/>${close}`, size) },
    { name: 'stray close tags', build: inside('</x>') },
    { name: 'NUL run', build: (size) => fill(open + close, '\u0000', '', size) },
    { name: 'whitespace run', build: (size) => fill('', ' ', open + close, size) }
  ]
}

/** Items `item(0)`, `item(1)`, ... (names in base 36) joined, at most `size` long. */
function distinct (item: (name: string) => string, size: number): string {
  let out = ''
  for (let k = 0; ; k++) {
    const next = item(k.toString(36))
    if (out.length + next.length > size) return out
    out += next
  }
}

const MiB = 1024 * 1024

function xmlTarget (options: {
  name: string
  parser: string
  allowed: readonly ErrorClass[]
  structured: fc.Arbitrary<string>
  seeds: readonly string[]
  limit: number
  open: string
  close: string
  parse: (xml: string) => unknown
  check: (value: unknown) => void
}): FuzzTarget<string> {
  const seeds = fc.oneof({ weight: 3, arbitrary: fc.constantFrom(...options.seeds) }, { weight: 1, arbitrary: options.structured })
  return {
    name: options.name,
    parser: options.parser,
    allowed: options.allowed,
    input: fc.oneof(
      { weight: 3, arbitrary: options.structured },
      { weight: 1, arbitrary: randomXml },
      { weight: 6, arbitrary: mutatedXml(seeds, xmlDonors, options.limit + 16) }
    ),
    limit: options.limit,
    shapes: xmlShapes(options.open, options.close),
    parse: options.parse,
    check: options.check,
    size: (xml) => xml.length,
    show: showText
  }
}

const ENVELOPE = '<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body>'
const END_ENVELOPE = '</s:Body></s:Envelope>'

const descriptionTarget = xmlTarget({
  name: 'description',
  parser: 'parseDescription + findWanServices',
  allowed: [RemoteProtocolError],
  structured: descriptionStructured,
  seeds: descriptionFixtures,
  limit: MAX_DESCRIPTION_CHARS,
  open: '<root xmlns="urn:schemas-upnp-org:device-1-0"><device><friendlyName>',
  close: '</friendlyName></device></root>',
  parse: (xml) => {
    const root = parseDescription(xml, BASE_URL)
    return { root, candidates: findWanServices(root) }
  },
  check: checkDescription
})

const soapResponseTarget = xmlTarget({
  name: 'soap-response',
  parser: 'parseSoapResponse',
  allowed: [RemoteProtocolError, GatewayRefusedError],
  structured: fc.oneof(soapResponse('GetExternalIPAddress'), soapStructured),
  seeds: soapFixtures,
  limit: MAX_SOAP_CHARS,
  open: `${ENVELOPE}<u:GetExternalIPAddressResponse xmlns:u="${SERVICE}"><NewExternalIPAddress>`,
  close: `</NewExternalIPAddress></u:GetExternalIPAddressResponse>${END_ENVELOPE}`,
  parse: (xml) => parseSoapResponse(xml, SERVICE, 'GetExternalIPAddress'),
  check: (value) => {
    // Names may be '' (`<a:/>`, a prefix without a local name, reads as local name ''): harmless, as callers look names up.
    for (const arg of Object.values(value as Record<string, string>)) assert.equal(typeof arg, 'string')
  }
})

const FAULT_OPEN = `${ENVELOPE}<s:Fault><faultcode>s:Client</faultcode><faultstring>UPnPError</faultstring><detail><UPnPError xmlns="urn:schemas-upnp-org:control-1-0"><errorCode>718</errorCode><errorDescription>`
const FAULT_CLOSE = `</errorDescription></UPnPError></detail></s:Fault>${END_ENVELOPE}`

const soapFaultTarget = xmlTarget({
  name: 'soap-fault',
  parser: 'parseSoapFault',
  allowed: [RemoteProtocolError],
  structured: soapStructured,
  seeds: soapFixtures,
  limit: MAX_SOAP_CHARS,
  open: FAULT_OPEN,
  close: FAULT_CLOSE,
  parse: parseSoapFault,
  check: (value) => {
    if (value === undefined) return
    const fault = value as { errorCode: number, errorDescription: string }
    assert.ok(Number.isSafeInteger(fault.errorCode), `errorCode ${fault.errorCode}`)
    assert.equal(fault.errorDescription, fault.errorDescription.trim())
  }
})

const soapRequestTarget = xmlTarget({
  name: 'soap-request',
  parser: 'parseSoapRequest',
  allowed: [RemoteProtocolError],
  structured: soapRequestStructured,
  seeds: [...soapFixtures, ...xmlFixtures.filter((x) => x.includes('<u:Add'))],
  limit: MAX_SOAP_CHARS,
  open: `${ENVELOPE}<u:AddPortMapping xmlns:u="${SERVICE}"><NewPortMappingDescription>`,
  close: `</NewPortMappingDescription></u:AddPortMapping>${END_ENVELOPE}`,
  parse: parseSoapRequest,
  check: (value) => {
    const request = value as ReturnType<typeof parseSoapRequest>
    assert.ok(request.serviceType !== '' && request.action !== '')
  }
})

function validPort (port: unknown): void {
  assert.ok(Number.isInteger(port) && (port as number) >= 1 && (port as number) <= 65535, `port ${String(port)}`)
}

/** One target per typed IGD action decoder; each is fed replies to its own action and to the others. */
function actionTarget (action: string, decode: (xml: string, serviceType: string) => unknown, check: (value: unknown) => void): FuzzTarget<string> {
  const argument = RESPONSE_ARGS[action]![0] ?? 'X'
  return xmlTarget({
    name: `igd-${action}`,
    parser: `decode${action}`,
    allowed: [RemoteProtocolError, GatewayRefusedError],
    structured: fc.oneof({ weight: 4, arbitrary: soapResponse(action) }, { weight: 1, arbitrary: soapStructured }),
    seeds: soapFixtures,
    limit: MAX_SOAP_CHARS,
    open: `${ENVELOPE}<u:${action}Response xmlns:u="${SERVICE}"><${argument}>`,
    close: `</${argument}></u:${action}Response>${END_ENVELOPE}`,
    parse: (xml) => decode(xml, SERVICE),
    check
  })
}

const REASONS = ['missing', 'empty', 'not-ipv4', 'unspecified', 'loopback', 'link-local', 'multicast', 'reserved']

const actionTargets = [
  actionTarget('GetExternalIPAddress', decodeGetExternalIPAddress, (value) => {
    const result = value as ReturnType<typeof decodeGetExternalIPAddress>
    if (result.ok) assert.ok(isIPv4(result.address) && !/^(0|127|22[4-9]|23\d|24\d|25\d)\./.test(result.address), `address ${result.address}`)
    else assert.ok(REASONS.includes(result.reason), result.reason)
  }),
  actionTarget('GetStatusInfo', decodeGetStatusInfo, (value) => {
    const info = value as ReturnType<typeof decodeGetStatusInfo>
    assert.equal(info.connected, info.connectionStatus === 'Connected' || info.connectionStatus === 'Up')
    checkOptionalUint(info.uptimeSeconds, 0xffffffff, 'uptime')
  }),
  actionTarget('AddPortMapping', decodeAddPortMapping, (value) => { assert.equal(value, undefined) }),
  actionTarget('AddAnyPortMapping', decodeAddAnyPortMapping, validPort),
  actionTarget('DeletePortMapping', decodeDeletePortMapping, (value) => { assert.equal(value, undefined) }),
  actionTarget('GetSpecificPortMappingEntry', decodeGetSpecificPortMappingEntry, (value) => {
    if (value === undefined) return
    const entry = value as NonNullable<ReturnType<typeof decodeGetSpecificPortMappingEntry>>
    validPort(entry.internalPort)
    checkOptionalUint(entry.leaseDurationSeconds, 0xffffffff, 'lease')
    assert.ok(entry.enabled === undefined || typeof entry.enabled === 'boolean')
  }),
  // natmapper list reads the router's whole table with it.
  actionTarget('GetGenericPortMappingEntry', decodeGetGenericPortMappingEntry, (value) => {
    if (value === undefined) return
    const entry = value as NonNullable<ReturnType<typeof decodeGetGenericPortMappingEntry>>
    validPort(entry.externalPort)
    validPort(entry.internalPort)
    assert.ok(entry.protocol === 'tcp' || entry.protocol === 'udp', entry.protocol)
    checkOptionalUint(entry.leaseDurationSeconds, 0xffffffff, 'lease')
    assert.ok(entry.enabled === undefined || typeof entry.enabled === 'boolean')
  }),
  actionTarget('GetFirewallStatus', decodeGetFirewallStatus, (value) => {
    const status = value as ReturnType<typeof decodeGetFirewallStatus>
    assert.ok(typeof status.firewallEnabled === 'boolean' && typeof status.inboundPinholeAllowed === 'boolean')
  }),
  actionTarget('AddPinhole', decodeAddPinhole, (value) => { assert.ok(Number.isInteger(value) && (value as number) >= 0 && (value as number) <= 65535, `UniqueID ${String(value)}`) }),
  actionTarget('UpdatePinhole', decodeUpdatePinhole, (value) => { assert.equal(value, undefined) }),
  actionTarget('DeletePinhole', decodeDeletePinhole, (value) => { assert.equal(value, undefined) }),
  actionTarget('CheckPinholeWorking', decodeCheckPinholeWorking, (value) => { assert.equal(typeof value, 'boolean') }),
  actionTarget('GetPinholePackets', decodeGetPinholePackets, (value) => { checkOptionalUint(value, 0xffffffff, 'packets') }),
  actionTarget('GetOutboundPinholeTimeout', decodeGetOutboundPinholeTimeout, (value) => { checkOptionalUint(value, 0xffffffff, 'timeout') })
]

/** Every target, in the order the report lists them. */
export const targets: ReadonlyArray<FuzzTarget<unknown>> = [
  natPmpRequestTarget,
  natPmpResponseTarget,
  pcpRequestTarget,
  pcpResponseTarget,
  ssdpTarget,
  descriptionTarget,
  soapResponseTarget,
  soapFaultTarget,
  soapRequestTarget,
  ...actionTargets,
  ...routeTargets
]

/** The size of the blow-up check's inputs. */
export const BLOW_UP_SIZE = MiB
