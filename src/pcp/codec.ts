import { MalformedPacketError, UsageError } from '../errors.js'
import { bytes16ToIp, ipToBytes16 } from '../net/address.js'
import { PCP_MAX_PACKET, PCP_VERSION, PcpOpcode, PcpResultCode } from './codes.js'

/**
 * PCP (RFC 6887) packets <-> typed values. Pure: no clock, no randomness (the caller supplies the
 * nonce), no sockets; inputs are never modified and decoded byte fields are copies. Decoders
 * throw MalformedPacketError and nothing else; encoders throw UsageError for values that do not
 * fit their fields. Numbers are big-endian (§7: "conventional IETF network order").
 *
 * Addresses are text. §5 carries every address in 128 bits, IPv4 as an IPv4-mapped IPv6 address
 * (::ffff:a.b.c.d); decoders give such addresses back in dotted IPv4 form.
 *
 * What the decoders can read after the 24-byte header depends on the opcode, because the RFC
 * gives options no marker of their own: they start where the opcode's data ends.
 * - ANNOUNCE has no opcode data (§14.1); options start at byte 24.
 * - MAP has 36 bytes of opcode data (§11.1); options start at byte 60.
 * - PEER and unknown opcodes: the codec does not know the data's length, so it returns no
 *   `map` and no options (`options: []`) and ignores the rest of the packet. natmapper sends
 *   only ANNOUNCE and MAP; a PEER or unknown-opcode reply only needs its header read.
 */

export interface PcpOption { code: number, data: Uint8Array }
/** MAP opcode-specific data (RFC 6887 §11.1). In a request the port/address are the suggested external ones; in a response the assigned ones. */
export interface PcpMapData { nonce: Uint8Array /* 12 bytes */, protocol: number, internalPort: number, externalPort: number, externalAddress: string }
export interface PcpRequest { version?: number /* default 2 when encoding; always set when decoded */, opcode: number, lifetimeSeconds: number, clientAddress: string, map?: PcpMapData, options: PcpOption[] }
export interface PcpResponse { version: number, opcode: number, resultCode: number, lifetimeSeconds: number, epochSeconds: number, map?: PcpMapData, options: PcpOption[] }

const HEADER_LENGTH = 24
const MAP_DATA_LENGTH = 36
const NONCE_LENGTH = 12
const OPTION_HEADER_LENGTH = 4
/** The top bit of byte 1: "R: Indicates Request (0) or Response (1)" (§7.1). */
const R_BIT = 0x80
const MAX_UINT8 = 0xff
const MAX_UINT16 = 0xffff
const MAX_UINT32 = 0xffffffff
const MAX_OPCODE = 0x7f

// ---------------------------------------------------------------------------------------------
// Encoding

function checkUint (name: string, value: number, max: number): void {
  if (!Number.isInteger(value) || value < 0 || value > max) {
    throw new UsageError(`${name} must be an integer from 0 to ${max}, got ${String(value)}`)
  }
}

function padded (length: number): number {
  return (length + 3) & ~3
}

/**
 * Checks the opcode-specific data and options against the opcode, and returns the packet length.
 * Options are only written where a decoder can find them again (after ANNOUNCE's empty data or
 * MAP's 36 bytes), so everything this codec encodes, it can decode.
 */
function bodyLength (opcode: number, map: PcpMapData | undefined, options: PcpOption[], mapMayBeMissing: boolean): number {
  if (!Array.isArray(options)) throw new UsageError('options must be an array (use [] for none)')
  let length = HEADER_LENGTH
  if (opcode === PcpOpcode.MAP) {
    if (map !== undefined) {
      checkMap(map)
      length += MAP_DATA_LENGTH
    } else if (!mapMayBeMissing) {
      throw new UsageError('a MAP request, and a MAP success response, need `map` data')
    } else if (options.length > 0) {
      // Without the 36 bytes of MAP data, the options would be read back as MAP data.
      throw new UsageError('a MAP error response without `map` data cannot carry options')
    }
  } else if (map !== undefined) {
    throw new UsageError(`\`map\` data belongs to opcode MAP (1), not ${opcode}`)
  } else if (opcode !== PcpOpcode.ANNOUNCE && options.length > 0) {
    throw new UsageError(`options can only be encoded for ANNOUNCE and MAP, whose data length is known, not opcode ${opcode}`)
  }
  for (const option of options) {
    checkUint('option code', option.code, MAX_UINT8)
    if (!(option.data instanceof Uint8Array)) throw new UsageError('option data must be a Uint8Array')
    checkUint('option data length', option.data.length, MAX_UINT16)
    length += OPTION_HEADER_LENGTH + padded(option.data.length)
  }
  if (length > PCP_MAX_PACKET) throw new UsageError(`the packet would be ${length} bytes; PCP allows at most ${PCP_MAX_PACKET}`)
  return length
}

function checkMap (map: PcpMapData): void {
  if (!(map.nonce instanceof Uint8Array) || map.nonce.length !== NONCE_LENGTH) {
    throw new UsageError(`the mapping nonce must be ${NONCE_LENGTH} bytes`)
  }
  checkUint('protocol', map.protocol, MAX_UINT8)
  checkUint('internalPort', map.internalPort, MAX_UINT16)
  checkUint('externalPort', map.externalPort, MAX_UINT16)
  ipToBytes16(map.externalAddress) // throws UsageError for bad text
}

function writeBody (out: Uint8Array, map: PcpMapData | undefined, options: PcpOption[]): void {
  const dv = new DataView(out.buffer, out.byteOffset, out.byteLength)
  let offset = HEADER_LENGTH
  if (map !== undefined) {
    out.set(map.nonce, offset)
    out[offset + 12] = map.protocol
    // Bytes 13-15 reserved: "MUST be sent as 0".
    dv.setUint16(offset + 16, map.internalPort)
    dv.setUint16(offset + 18, map.externalPort)
    out.set(ipToBytes16(map.externalAddress), offset + 20)
    offset += MAP_DATA_LENGTH
  }
  for (const option of options) {
    out[offset] = option.code
    // Byte offset+1 reserved; the length excludes the padding (§7.3), which stays zero.
    dv.setUint16(offset + 2, option.data.length)
    out.set(option.data, offset + OPTION_HEADER_LENGTH)
    offset += OPTION_HEADER_LENGTH + padded(option.data.length)
  }
}

/**
 * RFC 6887 §7.1, Figure 2: Common Request Packet Format
 *
 *      0                   1                   2                   3
 *      0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 *     +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *     |  Version = 2  |R|   Opcode    |         Reserved              |
 *     +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *     |                 Requested Lifetime (32 bits)                  |
 *     +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *     |                                                               |
 *     |            PCP Client's IP Address (128 bits)                 |
 *     |                                                               |
 *     |                                                               |
 *     +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *     :                                                               :
 *     :             (optional) Opcode-specific information            :
 *     :                                                               :
 *     +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *     :                                                               :
 *     :             (optional) PCP Options                            :
 *     :                                                               :
 *     +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *
 * RFC 6887 §11.1, Figure 9: MAP Opcode Request (the opcode-specific information for MAP)
 *
 *      0                   1                   2                   3
 *      0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 *     +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *     |                                                               |
 *     |                 Mapping Nonce (96 bits)                       |
 *     |                                                               |
 *     +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *     |   Protocol    |          Reserved (24 bits)                   |
 *     +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *     |        Internal Port          |    Suggested External Port    |
 *     +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *     |                                                               |
 *     |           Suggested External IP Address (128 bits)            |
 *     |                                                               |
 *     |                                                               |
 *     +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *
 * The client address is the source address the request leaves from (§8.1 "MUST include the
 * source IP address"); a gateway that sees another answers ADDRESS_MISMATCH. When the external
 * address is unknown the client "MUST use the address-family-specific all-zeros address"
 * (§11.1), i.e. '0.0.0.0' or '::', which also tells the gateway which family to map.
 */
export function encodePcpRequest (request: PcpRequest): Uint8Array {
  const version = request.version ?? PCP_VERSION
  checkUint('version', version, MAX_UINT8)
  checkUint('opcode', request.opcode, MAX_OPCODE)
  checkUint('lifetimeSeconds', request.lifetimeSeconds, MAX_UINT32)
  const clientAddress = ipToBytes16(request.clientAddress)
  const length = bodyLength(request.opcode, request.map, request.options, false)

  const out = new Uint8Array(length)
  const dv = new DataView(out.buffer)
  out[0] = version
  out[1] = request.opcode // R = 0
  // Bytes 2-3 reserved: "MUST be zero on transmission".
  dv.setUint32(4, request.lifetimeSeconds)
  out.set(clientAddress, 8)
  writeBody(out, request.map, request.options)
  return out
}

/**
 * RFC 6887 §7.2, Figure 3: Common Response Packet Format
 *
 *      0                   1                   2                   3
 *      0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 *     +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *     |  Version = 2  |R|   Opcode    |   Reserved    |  Result Code  |
 *     +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *     |                      Lifetime (32 bits)                       |
 *     +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *     |                     Epoch Time (32 bits)                      |
 *     +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *     |                                                               |
 *     |                      Reserved (96 bits)                       |
 *     |                                                               |
 *     +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *     :                                                               :
 *     :             (optional) Opcode-specific response data          :
 *     :                                                               :
 *     +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *     :             (optional) Options                                :
 *     +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *
 * RFC 6887 §11.1, Figure 10: MAP Opcode Response
 *
 *      0                   1                   2                   3
 *      0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 *     +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *     |                                                               |
 *     |                 Mapping Nonce (96 bits)                       |
 *     |                                                               |
 *     +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *     |   Protocol    |          Reserved (24 bits)                   |
 *     +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *     |        Internal Port          |    Assigned External Port     |
 *     +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *     |                                                               |
 *     |            Assigned External IP Address (128 bits)            |
 *     |                                                               |
 *     |                                                               |
 *     +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *
 * For simulated gateways. The 96 reserved bits are written as zeros (§7.2 says a server copies
 * the client address's last 96 bits there for requests it could not parse; a simulation that
 * needs that can patch the bytes). A MAP error response may omit `map` (a header-only reply);
 * a MAP success may not.
 */
export function encodePcpResponse (response: PcpResponse): Uint8Array {
  checkUint('version', response.version, MAX_UINT8)
  checkUint('opcode', response.opcode, MAX_OPCODE)
  checkUint('resultCode', response.resultCode, MAX_UINT8)
  checkUint('lifetimeSeconds', response.lifetimeSeconds, MAX_UINT32)
  checkUint('epochSeconds', response.epochSeconds, MAX_UINT32)
  const length = bodyLength(response.opcode, response.map, response.options, response.resultCode !== PcpResultCode.SUCCESS)

  const out = new Uint8Array(length)
  const dv = new DataView(out.buffer)
  out[0] = response.version
  out[1] = R_BIT | response.opcode
  out[3] = response.resultCode
  dv.setUint32(4, response.lifetimeSeconds)
  dv.setUint32(8, response.epochSeconds)
  writeBody(out, response.map, response.options)
  return out
}

// ---------------------------------------------------------------------------------------------
// Decoding

/**
 * §8.3 (client): "Responses shorter than 24 octets, longer than 1100 octets, or not a multiple
 * of 4 octets are invalid and ignored." §8.2 applies the same bounds to requests
 * (MALFORMED_REQUEST). Every later read is inside these bounds, which is why no DataView read
 * below can throw a RangeError.
 */
function checkPacketLength (bytes: Uint8Array, what: string): void {
  if (bytes.length < HEADER_LENGTH) {
    throw new MalformedPacketError(`a PCP ${what} needs at least ${HEADER_LENGTH} bytes, got ${bytes.length}`, bytes.length)
  }
  if (bytes.length > PCP_MAX_PACKET) {
    throw new MalformedPacketError(`a PCP ${what} has at most ${PCP_MAX_PACKET} bytes, got ${bytes.length}`, PCP_MAX_PACKET)
  }
  if (bytes.length % 4 !== 0) {
    throw new MalformedPacketError(`a PCP ${what} is a multiple of 4 bytes long, got ${bytes.length}`, bytes.length)
  }
}

/**
 * A plain Uint8Array copy. Not `bytes.slice()`: on a Node Buffer (what dgram delivers) `slice`
 * returns a view of the socket's memory, not a copy, and a Buffer besides.
 */
function copyOf (bytes: Uint8Array, start: number, end: number): Uint8Array {
  return new Uint8Array(bytes.subarray(start, end))
}

function readMap (bytes: Uint8Array, dv: DataView, offset: number): PcpMapData {
  return {
    nonce: copyOf(bytes, offset, offset + NONCE_LENGTH),
    protocol: bytes[offset + 12]!,
    internalPort: dv.getUint16(offset + 16),
    externalPort: dv.getUint16(offset + 18),
    externalAddress: bytes16ToIp(bytes, offset + 20)
  }
}

/**
 * RFC 6887 §7.3, Figure 4: Options Header
 *
 *      0                   1                   2                   3
 *      0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 *     +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *     |  Option Code  |  Reserved     |       Option Length           |
 *     +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *     :                       (optional) Data                         :
 *     +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *
 * "Options that are not a multiple of 4 octets long are followed by one, two, or three 0 octets
 * to pad their effective length in the packet to be a multiple of 4 octets. The Option Length
 * reflects the semantic length of the option, not including any padding octets."
 *
 * An option whose length runs past the packet is malformed (§7.3's example of an invalid option).
 * The padding's content is not checked. Every option is returned, known or not: §7.3 says
 * clients "MUST ignore Options that they do not understand", which is the caller's decision.
 */
function readOptions (bytes: Uint8Array, dv: DataView, start: number): PcpOption[] {
  const options: PcpOption[] = []
  let offset = start
  while (offset < bytes.length) {
    // The packet length and every step are multiples of 4, so a header always fits; checked
    // anyway so that the invariant is not load-bearing.
    if (offset + OPTION_HEADER_LENGTH > bytes.length) throw new MalformedPacketError('truncated option header', offset)
    const code = bytes[offset]!
    const length = dv.getUint16(offset + 2)
    const dataStart = offset + OPTION_HEADER_LENGTH
    if (dataStart + length > bytes.length) {
      throw new MalformedPacketError(`option ${code} claims ${length} bytes but only ${bytes.length - dataStart} remain`, offset + 2)
    }
    options.push({ code, data: copyOf(bytes, dataStart, dataStart + length) })
    offset = dataStart + padded(length)
  }
  return options
}

interface Body { map?: PcpMapData, options: PcpOption[] }

function readBody (bytes: Uint8Array, dv: DataView, opcode: number, mapMayBeMissing: boolean): Body {
  if (opcode === PcpOpcode.ANNOUNCE) return { options: readOptions(bytes, dv, HEADER_LENGTH) }
  if (opcode !== PcpOpcode.MAP) return { options: [] }
  const optionsStart = HEADER_LENGTH + MAP_DATA_LENGTH
  if (bytes.length >= optionsStart) return { map: readMap(bytes, dv, HEADER_LENGTH), options: readOptions(bytes, dv, optionsStart) }
  // An error reply is meant to copy the whole request (§8.2), but what a client needs from a
  // refusal is the header: result code and error lifetime. So a short MAP error reply (the
  // bare 24-byte header, or a truncated copy) decodes with no `map` and no options.
  if (mapMayBeMissing) return { options: [] }
  throw new MalformedPacketError(`MAP data needs ${optionsStart} bytes, got ${bytes.length}`, bytes.length)
}

/**
 * The gateway side of encodePcpRequest, for simulated gateways (diagrams above it). The R bit
 * must be 0 (§8.2: "If the R bit is set, the message is silently dropped"). The version is
 * returned as found, not checked, so a gateway can answer UNSUPP_VERSION; the rest is read in
 * the version-2 layout whatever the version says. A version-0 (NAT-PMP) request is 2 or 12 bytes
 * and so fails the length check here; a gateway reads its first byte to tell.
 */
export function decodePcpRequest (bytes: Uint8Array): PcpRequest {
  checkPacketLength(bytes, 'request')
  if ((bytes[1]! & R_BIT) !== 0) throw new MalformedPacketError('the R bit is set: this is a response, not a request', 1)
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  const opcode = bytes[1]! & MAX_OPCODE
  const body = readBody(bytes, dv, opcode, false)
  const request: PcpRequest = {
    version: bytes[0]!,
    opcode,
    lifetimeSeconds: dv.getUint32(4),
    clientAddress: bytes16ToIp(bytes, 8),
    options: body.options
  }
  if (body.map !== undefined) request.map = body.map
  return request
}

/**
 * Decodes a gateway's reply or unsolicited ANNOUNCE (diagrams above encodePcpResponse).
 *
 * - 24 to 1100 bytes, a multiple of 4, R bit 1 (§8.3: "If the R bit is clear, the message is
 *   silently dropped").
 * - The version is returned as found: a server answering UNSUPP_VERSION puts there the version
 *   it does support (§9), and 0 means a NAT-PMP server. A NAT-PMP server's own 8-byte reply is
 *   too short for this decoder; decodeNatPmpResponse reads it.
 * - MAP: a SUCCESS needs the 36 bytes of MAP data; an error may be the bare header (no `map`).
 * - The reserved bytes are ignored (§7.2 "MUST be ignored when received").
 */
export function decodePcpResponse (bytes: Uint8Array): PcpResponse {
  checkPacketLength(bytes, 'response')
  if ((bytes[1]! & R_BIT) === 0) throw new MalformedPacketError('the R bit is clear: this is a request, not a response', 1)
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  const opcode = bytes[1]! & MAX_OPCODE
  const resultCode = bytes[3]!
  const body = readBody(bytes, dv, opcode, resultCode !== PcpResultCode.SUCCESS)
  const response: PcpResponse = {
    version: bytes[0]!,
    opcode,
    resultCode,
    lifetimeSeconds: dv.getUint32(4),
    epochSeconds: dv.getUint32(8),
    options: body.options
  }
  if (body.map !== undefined) response.map = body.map
  return response
}
