import { MalformedPacketError, UsageError } from '../errors.js'
import { bytesToIpv4, ipv4ToBytes } from '../net/address.js'
import { NATPMP_VERSION, NatPmpOpcode, NatPmpResultCode } from './codes.js'

/**
 * NAT-PMP (RFC 6886) packets <-> typed values. Pure: no clock, no sockets, inputs never
 * modified. Decoders throw MalformedPacketError and nothing else; encoders throw UsageError for
 * values that do not fit their fields. All multi-byte fields are big-endian (RFC 6886 §3.3:
 * "the traditional network byte order").
 */

export type NatPmpRequest =
  | { opcode: 'external-address' }
  | { opcode: 'map', protocol: 'tcp' | 'udp', internalPort: number, suggestedExternalPort: number, lifetimeSeconds: number }

export type NatPmpResponse =
  | { opcode: 'external-address', resultCode: 0, epochSeconds: number, externalAddress: string }
  | { opcode: 'map', resultCode: 0, protocol: 'tcp' | 'udp', epochSeconds: number, internalPort: number, externalPort: number, lifetimeSeconds: number }
  | { opcode: 'error', requestOpcode: number, resultCode: number, epochSeconds: number }

/**
 * RFC 6886 §3: "Opcodes between 0 and 127 are client requests. Opcodes from 128 to 255 are
 * corresponding server responses."
 */
const RESPONSE_BIT = 0x80
const EXTERNAL_ADDRESS_REQUEST_LENGTH = 2
const MAP_REQUEST_LENGTH = 12
/** Version, opcode, result code, SSSoE: what every response carries, errors included. */
const RESPONSE_HEADER_LENGTH = 8
const EXTERNAL_ADDRESS_RESPONSE_LENGTH = 12
const MAP_RESPONSE_LENGTH = 16

function mapOpcode (protocol: 'tcp' | 'udp'): number {
  if (protocol === 'udp') return NatPmpOpcode.MAP_UDP
  if (protocol === 'tcp') return NatPmpOpcode.MAP_TCP
  throw new UsageError(`NAT-PMP maps only 'tcp' or 'udp', not ${JSON.stringify(protocol)}`)
}

function protocolOf (opcode: number): 'tcp' | 'udp' | undefined {
  if (opcode === NatPmpOpcode.MAP_UDP) return 'udp'
  if (opcode === NatPmpOpcode.MAP_TCP) return 'tcp'
  return undefined
}

function checkUint (name: string, value: number, max: number): void {
  if (!Number.isInteger(value) || value < 0 || value > max) {
    throw new UsageError(`${name} must be an integer from 0 to ${max}, got ${String(value)}`)
  }
}

const MAX_PORT = 0xffff
const MAX_UINT32 = 0xffffffff

function view (bytes: Uint8Array): DataView {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
}

/**
 * RFC 6886 §3.2, external address request:
 *
 *     0                   1
 *     0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5
 *    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *    | Vers = 0      | OP = 0        |
 *    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *
 * RFC 6886 §3.3, mapping request (OP 1 = UDP, 2 = TCP):
 *
 *     0                   1                   2                   3
 *     0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 *    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *    | Vers = 0      | OP = x        | Reserved                      |
 *    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *    | Internal Port                 | Suggested External Port       |
 *    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *    | Requested Port Mapping Lifetime in Seconds                    |
 *    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *
 * A delete is a mapping request with lifetime 0; §3.4 says its suggested external port "MUST be
 * set to zero by the client", which is the caller's job (the codec writes what it is given).
 */
export function encodeNatPmpRequest (request: NatPmpRequest): Uint8Array {
  if (request.opcode === 'external-address') return Uint8Array.of(NATPMP_VERSION, NatPmpOpcode.EXTERNAL_ADDRESS)
  if (request.opcode !== 'map') throw new UsageError(`unknown NAT-PMP request opcode ${JSON.stringify((request as { opcode: unknown }).opcode)}`)
  const opcode = mapOpcode(request.protocol)
  checkUint('internalPort', request.internalPort, MAX_PORT)
  checkUint('suggestedExternalPort', request.suggestedExternalPort, MAX_PORT)
  checkUint('lifetimeSeconds', request.lifetimeSeconds, MAX_UINT32)
  const out = new Uint8Array(MAP_REQUEST_LENGTH)
  const dv = view(out)
  out[0] = NATPMP_VERSION
  out[1] = opcode
  // Bytes 2-3 reserved: "MUST be set to zero on transmission".
  dv.setUint16(4, request.internalPort)
  dv.setUint16(6, request.suggestedExternalPort)
  dv.setUint32(8, request.lifetimeSeconds)
  return out
}

/**
 * The gateway side of encodeNatPmpRequest, for simulated gateways. Only version-0 requests with a
 * known opcode decode; anything else is malformed here, and a gateway that wants to answer it
 * (UNSUPPORTED_VERSION, UNSUPPORTED_OPCODE, as RFC 6886 §3.5 asks) reads bytes 0 and 1 itself.
 * The reserved field and bytes past the opcode's length are ignored.
 */
export function decodeNatPmpRequest (bytes: Uint8Array): NatPmpRequest {
  if (bytes.length < EXTERNAL_ADDRESS_REQUEST_LENGTH) {
    throw new MalformedPacketError(`NAT-PMP request needs at least ${EXTERNAL_ADDRESS_REQUEST_LENGTH} bytes, got ${bytes.length}`, bytes.length)
  }
  if (bytes[0] !== NATPMP_VERSION) throw new MalformedPacketError(`NAT-PMP version must be 0, got ${bytes[0]}`, 0)
  const opcode = bytes[1]!
  if ((opcode & RESPONSE_BIT) !== 0) throw new MalformedPacketError(`opcode ${opcode} is a response, not a request`, 1)
  if (opcode === NatPmpOpcode.EXTERNAL_ADDRESS) return { opcode: 'external-address' }
  const protocol = protocolOf(opcode)
  if (protocol === undefined) throw new MalformedPacketError(`unknown NAT-PMP request opcode ${opcode}`, 1)
  if (bytes.length < MAP_REQUEST_LENGTH) {
    throw new MalformedPacketError(`NAT-PMP mapping request needs ${MAP_REQUEST_LENGTH} bytes, got ${bytes.length}`, bytes.length)
  }
  const dv = view(bytes)
  return {
    opcode: 'map',
    protocol,
    internalPort: dv.getUint16(4),
    suggestedExternalPort: dv.getUint16(6),
    lifetimeSeconds: dv.getUint32(8)
  }
}

/**
 * For simulated gateways. RFC 6886 §3.2, external address response (12 bytes):
 *
 *     0                   1                   2                   3
 *     0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 *    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *    | Vers = 0      | OP = 128 + 0  | Result Code (net byte order)  |
 *    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *    | Seconds Since Start of Epoch (in network byte order)          |
 *    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *    | External IPv4 Address (a.b.c.d)                               |
 *    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *
 * RFC 6886 §3.3, mapping response (16 bytes):
 *
 *     0                   1                   2                   3
 *     0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 *    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *    | Vers = 0      | OP = 128 + x  | Result Code                   |
 *    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *    | Seconds Since Start of Epoch                                  |
 *    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *    | Internal Port                 | Mapped External Port          |
 *    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *    | Port Mapping Lifetime in Seconds                              |
 *    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *
 * An error reply is the first 8 bytes. miniupnpd sends exactly that for an unsupported version
 * or opcode (natpmp.c, `resplen = 8`) and the full 12 or 16 bytes for other failures;
 * `options.length` pads with zeros to the longer forms. The zeros are a simplification: RFC
 * 6886 §3.5 wants a failed mapping reply to carry the requested internal port (miniupnpd echoes
 * both ports and the lifetime), which the `error` variant does not hold. Padding a success reply
 * is allowed too (decoders ignore trailing bytes); shortening one is not.
 */
export function encodeNatPmpResponse (response: NatPmpResponse, options?: { length?: 8 | 12 | 16 }): Uint8Array {
  checkUint('epochSeconds', response.epochSeconds, MAX_UINT32)
  let natural: number
  let opcode: number
  let resultCode: number
  if (response.opcode === 'external-address' || response.opcode === 'map') {
    // The success variants are typed `resultCode: 0`; a failure belongs in the 'error' variant.
    if ((response.resultCode as number) !== NatPmpResultCode.SUCCESS) {
      throw new UsageError(`a ${response.opcode} response has resultCode 0; use the 'error' variant for failures`)
    }
    resultCode = NatPmpResultCode.SUCCESS
    if (response.opcode === 'external-address') {
      natural = EXTERNAL_ADDRESS_RESPONSE_LENGTH
      opcode = NatPmpOpcode.EXTERNAL_ADDRESS
      ipv4ToBytes(response.externalAddress) // validates before anything is built
    } else {
      natural = MAP_RESPONSE_LENGTH
      opcode = mapOpcode(response.protocol)
      checkUint('internalPort', response.internalPort, MAX_PORT)
      checkUint('externalPort', response.externalPort, MAX_PORT)
      checkUint('lifetimeSeconds', response.lifetimeSeconds, MAX_UINT32)
    }
  } else if (response.opcode === 'error') {
    natural = RESPONSE_HEADER_LENGTH
    checkUint('requestOpcode', response.requestOpcode, 0x7f)
    opcode = response.requestOpcode
    // A zero result code would decode as a success (or as malformed), never as this error.
    if (response.resultCode === NatPmpResultCode.SUCCESS) throw new UsageError('an error response needs a non-zero resultCode')
    checkUint('resultCode', response.resultCode, 0xffff)
    resultCode = response.resultCode
  } else {
    throw new UsageError(`unknown NAT-PMP response opcode ${JSON.stringify((response as { opcode: unknown }).opcode)}`)
  }
  const length = options?.length ?? natural
  if (length !== 8 && length !== 12 && length !== 16) throw new UsageError(`length must be 8, 12 or 16, got ${String(length)}`)
  if (length < natural) throw new UsageError(`a ${response.opcode} response needs ${natural} bytes, not ${length}`)

  const out = new Uint8Array(length)
  const dv = view(out)
  out[0] = NATPMP_VERSION
  out[1] = RESPONSE_BIT | opcode
  dv.setUint16(2, resultCode)
  dv.setUint32(4, response.epochSeconds)
  if (response.opcode === 'external-address') {
    out.set(ipv4ToBytes(response.externalAddress), 8)
  } else if (response.opcode === 'map') {
    dv.setUint16(8, response.internalPort)
    dv.setUint16(10, response.externalPort)
    dv.setUint32(12, response.lifetimeSeconds)
  }
  return out
}

/**
 * Decodes a gateway's reply or announcement (the diagrams above encodeNatPmpResponse).
 *
 * - At least 8 bytes, version 0, and the opcode's top bit set (a request is not a reply), with
 *   one exception: the "OP = 0" Unsupported Version reply of RFC 6886 erratum 3618, below.
 * - A non-zero result code gives the `error` variant at any length: 8-byte error replies are
 *   real (miniupnpd, for an unsupported version or opcode) and clients that insisted on 16
 *   bytes crashed on them (nicotine-plus#3487). RFC 6886 §3.5: undefined result codes "MUST be
 *   treated as fatal errors of the request", so they come back as errors, number intact.
 * - A success needs the opcode's full length (12 or 16); trailing bytes are ignored.
 * - A success for an opcode NAT-PMP does not define is malformed: there is no layout to read.
 */
export function decodeNatPmpResponse (bytes: Uint8Array): NatPmpResponse {
  if (bytes.length < RESPONSE_HEADER_LENGTH) {
    throw new MalformedPacketError(`NAT-PMP response needs at least ${RESPONSE_HEADER_LENGTH} bytes, got ${bytes.length}`, bytes.length)
  }
  if (bytes[0] !== NATPMP_VERSION) throw new MalformedPacketError(`NAT-PMP version must be 0, got ${bytes[0]}`, 0)
  const opcodeByte = bytes[1]!
  const dv = view(bytes)
  const resultCode = dv.getUint16(2)
  const epochSeconds = dv.getUint32(4)
  if ((opcodeByte & RESPONSE_BIT) === 0) {
    // RFC 6886 as published drew the Unsupported Version reply with "OP = 0". Verified erratum
    // 3618 corrects it to 128 and notes that "some implementations have the same mistake as the
    // document". Such a reply is how a NAT-PMP-only gateway answers a PCP request, so reading it
    // as malformed would leave a PCP client retransmitting instead of falling back to NAT-PMP.
    // Only that exact case is accepted; any other opcode below 128 is a request, not a reply.
    if (opcodeByte === NatPmpOpcode.EXTERNAL_ADDRESS && resultCode === NatPmpResultCode.UNSUPPORTED_VERSION) {
      return { opcode: 'error', requestOpcode: NatPmpOpcode.EXTERNAL_ADDRESS, resultCode, epochSeconds }
    }
    throw new MalformedPacketError(`opcode ${opcodeByte} is a request, not a response`, 1)
  }
  const requestOpcode = opcodeByte - RESPONSE_BIT
  if (resultCode !== NatPmpResultCode.SUCCESS) return { opcode: 'error', requestOpcode, resultCode, epochSeconds }

  if (requestOpcode === NatPmpOpcode.EXTERNAL_ADDRESS) {
    if (bytes.length < EXTERNAL_ADDRESS_RESPONSE_LENGTH) {
      throw new MalformedPacketError(`external address response needs ${EXTERNAL_ADDRESS_RESPONSE_LENGTH} bytes, got ${bytes.length}`, bytes.length)
    }
    return { opcode: 'external-address', resultCode: 0, epochSeconds, externalAddress: bytesToIpv4(bytes, 8) }
  }
  const protocol = protocolOf(requestOpcode)
  if (protocol === undefined) throw new MalformedPacketError(`success response for unknown NAT-PMP opcode ${requestOpcode}`, 1)
  if (bytes.length < MAP_RESPONSE_LENGTH) {
    throw new MalformedPacketError(`mapping response needs ${MAP_RESPONSE_LENGTH} bytes, got ${bytes.length}`, bytes.length)
  }
  return {
    opcode: 'map',
    resultCode: 0,
    protocol,
    epochSeconds,
    internalPort: dv.getUint16(8),
    externalPort: dv.getUint16(10),
    lifetimeSeconds: dv.getUint32(12)
  }
}
