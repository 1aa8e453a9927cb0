import type { RemoteInfo } from 'node:dgram'
import type { TransportProtocol } from '../gateway.js'
import { encodeNatPmpResponse } from '../natpmp/codec.js'
import { NatPmpResultCode } from '../natpmp/codes.js'
import { IanaProtocol, PCP_MAX_PACKET, PcpOpcode, PcpOptionCode, PcpResultCode } from '../pcp/codes.js'
import { ipToBytes16 } from '../net/address.js'
import { capped, purgeExpired, searchExternalPort, setMapping, type PmpTable } from './pmp-answers.js'

/**
 * SimulatedPmpGateway's PCP answers (RFC 6887) as miniupnpd 2.3.1 gives them (pcpserver.c):
 * the answer is the request itself with the header rewritten (so options come back, and the
 * length is the request's rounded up to 4), MAP of version 2 and of version 1 (the draft that
 * had no nonce, which miniupnpd still serves), PEER answered but kept nowhere, the lifetime
 * clamped for every opcode, the nonce checked on delete only. `undefined`: no answer.
 */

/** Lengths of the common header and of each opcode's fields (RFC 6887 §7.1, §11.1, §12.1; MAP v1 from the draft). */
const HEADER = 24
const [MAP_V2, MAP_V1, PEER_V2] = [36, 24, 56]
const { THIRD_PARTY, PREFER_FAILURE, FILTER } = PcpOptionCode

/** Errors answered with lifetime 0 ("long lifetime errors"), the others with 30 (pcpserver.c createPCPResponse). */
const SHORT_LIFETIME_ERRORS: readonly number[] = [PcpResultCode.NETWORK_FAILURE, PcpResultCode.NO_RESOURCES, PcpResultCode.USER_EX_QUOTA]

interface Parsed {
  version: number
  opcode: number
  result: number
  lifetime: number
  protocol: number
  internalPort: number
  externalPort: number
  /** Where the external address field is, when the opcode has one, and whether the answer rewrites it. */
  externalAddressAt: number | undefined
  writeExternalAddress: boolean
  preferFailure: boolean
  nonce: string
  /** An IPv6 client's own address, answered for its pinhole. */
  pinholeAddress?: string
}

export function answerPcp (gw: PmpTable, bytes: Uint8Array, rinfo: RemoteInfo): Uint8Array | undefined {
  const log = (summary: string, via: 'pcp' | 'garbage' = 'pcp'): void => { gw.received.push({ via, from: rinfo.address, atMs: gw.clock.now(), summary }) }
  if (bytes.length < 3) {
    log(`too short (${bytes.length} bytes)`, 'garbage')
    return undefined
  }
  if (((bytes[1] ?? 0) & 0x80) !== 0) {
    log(`a response (opcode ${bytes[1] ?? 0})`, 'garbage')
    return undefined
  }
  if (!gw.rules.pcp) {
    log('version refused (NAT-PMP only)')
    // A NAT-PMP-only server answers any other version with its 8-byte UNSUPPORTED_VERSION reply.
    return encodeNatPmpResponse({ opcode: 'error', requestOpcode: (bytes[1] ?? 0) & 0x7f, resultCode: NatPmpResultCode.UNSUPPORTED_VERSION, epochSeconds: gw.epochSeconds() })
  }
  const p = parse(gw, bytes, rinfo.address)
  log(describe(p, bytes))
  if (p.result === PcpResultCode.SUCCESS) apply(gw, p, rinfo)
  return answer(gw, p, bytes)
}

function parse (gw: PmpTable, bytes: Uint8Array, sender: string): Parsed {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  const p: Parsed = { version: 0, opcode: 0, result: 0, lifetime: 0, protocol: 0, internalPort: 0, externalPort: 0, externalAddressAt: undefined, writeExternalAddress: false, preferFailure: false, nonce: '' }
  // RFC 6887 §8.1 (silently dropped there); miniupnpd answers MALFORMED_REQUEST with version 0.
  if (bytes.length < HEADER || bytes.length > PCP_MAX_PACKET || bytes.length % 4 !== 0) return { ...p, result: PcpResultCode.MALFORMED_REQUEST }
  p.version = bytes[0]!
  p.opcode = bytes[1]! & 0x7f
  if (p.version > 2) return { ...p, result: PcpResultCode.UNSUPP_VERSION }
  p.lifetime = Math.min(view.getUint32(4), gw.rules.maxLifetimeSeconds)
  if (p.lifetime !== 0) p.lifetime = Math.max(p.lifetime, gw.rules.minLifetimeSeconds)
  const map = p.opcode === PcpOpcode.MAP
  const peer = p.opcode === PcpOpcode.PEER && p.version === 2
  // miniupnpd checks no client address on ANNOUNCE; the fault stands for a server that does.
  if (p.opcode === PcpOpcode.ANNOUNCE && p.version === 2) return gw.faults.addressMismatch ? { ...p, result: PcpResultCode.ADDRESS_MISMATCH } : p
  if (!map && !peer) return { ...p, result: PcpResultCode.UNSUPP_OPCODE }
  const size = p.version === 1 ? MAP_V1 : peer ? PEER_V2 : MAP_V2
  if (bytes.length < HEADER + size) return { ...p, result: PcpResultCode.MALFORMED_REQUEST }
  const at = HEADER + (p.version === 1 ? 0 : 12)
  p.nonce = p.version === 1 ? '000000000000000000000000' : Buffer.from(bytes.subarray(HEADER, HEADER + 12)).toString('hex')
  p.protocol = bytes[at]!
  p.internalPort = view.getUint16(at + 4)
  p.externalPort = view.getUint16(at + 6)
  p.externalAddressAt = at + 8
  const options = readOptions(bytes, HEADER + size, p.opcode)
  p.preferFailure = options.preferFailure
  if (options.result !== 0) return { ...p, result: options.result }
  // RFC 6887 §8.3: the client address must be the sender's.
  if (!sameAddress(bytes.subarray(8, 24), mapped(sender)) || gw.faults.addressMismatch) return { ...p, result: PcpResultCode.ADDRESS_MISMATCH }
  if (options.thirdParty) return { ...p, result: PcpResultCode.UNSUPP_OPTION }
  if (p.protocol === 0 && p.internalPort !== 0) return { ...p, result: PcpResultCode.MALFORMED_REQUEST }
  const suggested = bytes.subarray(p.externalAddressAt, p.externalAddressAt + 16)
  const unspecified = isUnspecified(suggested)
  if (p.preferFailure && unspecified && p.externalPort === 0) return { ...p, result: PcpResultCode.MALFORMED_OPTION }
  const external = gw.externalAddress()
  if (external === '' || external === '0.0.0.0') return { ...p, result: PcpResultCode.NETWORK_FAILURE }
  // §11.3: a suggested address that is not ours is ignored, unless PREFER_FAILURE asks to fail.
  if (unspecified || !sameAddress(suggested, mapped(external))) {
    if (!unspecified && p.preferFailure) return { ...p, result: PcpResultCode.CANNOT_PROVIDE_EXTERNAL }
    p.writeExternalAddress = true
  }
  return p
}

/** Options after the opcode's fields, as miniupnpd checks them (pcpserver.c parsePCPOption). */
function readOptions (bytes: Uint8Array, from: number, opcode: number): { result: number, thirdParty: boolean, preferFailure: boolean } {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  let result = 0
  let thirdParty = false
  let preferFailure = false
  for (let at = from; at < bytes.length;) {
    if (bytes.length - at < 4) return { result: PcpResultCode.MALFORMED_OPTION, thirdParty, preferFailure }
    const code = bytes[at]!
    const length = view.getUint16(at + 2) + 4
    if (bytes.length - at < length) return { result: PcpResultCode.MALFORMED_OPTION, thirdParty, preferFailure }
    if (code === THIRD_PARTY) {
      if (length !== 20 || thirdParty) return { result: PcpResultCode.MALFORMED_OPTION, thirdParty, preferFailure }
      thirdParty = true
    } else if (code === PREFER_FAILURE) {
      if (length !== 4 || preferFailure) return { result: PcpResultCode.MALFORMED_OPTION, thirdParty, preferFailure }
      if (opcode !== PcpOpcode.MAP) result = PcpResultCode.MALFORMED_REQUEST
      preferFailure = true
    } else if (code === FILTER) {
      if (length !== 24) return { result: PcpResultCode.MALFORMED_OPTION, thirdParty, preferFailure }
      if (opcode !== PcpOpcode.MAP) return { result: PcpResultCode.MALFORMED_REQUEST, thirdParty, preferFailure }
    } else if (code < 128) {
      // §7.3: an unknown option in the mandatory range (0-127) is refused.
      return { result: PcpResultCode.UNSUPP_OPTION, thirdParty, preferFailure }
    }
    at += length
  }
  return { result, thirdParty, preferFailure }
}

/** Creates or deletes the mapping a valid MAP asks for; sets the result and the external port. */
function apply (gw: PmpTable, p: Parsed, rinfo: RemoteInfo): void {
  if (p.opcode === PcpOpcode.ANNOUNCE) return
  const refused = gw.faults.refuseWith?.pcp
  if (refused !== undefined) {
    p.result = refused
    return
  }
  if (p.opcode === PcpOpcode.PEER) {
    // A PEER is an outbound flow's mapping: answered, not listed (miniupnpd keeps it in its peer chain).
    if (p.externalPort === 0) p.externalPort = p.internalPort
    return
  }
  const protocol: TransportProtocol | undefined = p.protocol === IanaProtocol.tcp ? 'tcp' : p.protocol === IanaProtocol.udp ? 'udp' : undefined
  // Deliberate (docs/testing.md): miniupnpd 2.3.1 "maps" other protocols into a rule that forwards nothing.
  if (protocol === undefined && p.protocol !== 0) {
    p.result = PcpResultCode.UNSUPP_PROTOCOL
    return
  }
  purgeExpired(gw)
  if (p.lifetime === 0) {
    p.result = remove(gw, protocol, rinfo.address, p.internalPort, p.nonce)
    return
  }
  if (p.externalPort === 0) p.externalPort = p.internalPort
  if (p.externalPort === 0 || protocol === undefined) {
    p.result = PcpResultCode.MALFORMED_REQUEST
    return
  }
  if (gw.rules.enforceNonceOnRenew) {
    for (const m of gw.mappings.values()) {
      if (m.protocol === protocol && m.clientAddress === rinfo.address && m.internalPort === p.internalPort && m.nonce !== p.nonce) {
        p.result = PcpResultCode.NOT_AUTHORIZED
        return
      }
    }
  }
  if (rinfo.address.includes(':') && !rinfo.address.toLowerCase().startsWith('::ffff:')) {
    // An IPv6 client gets a firewall pinhole, not a translation: its own address and port (miniupnpd pcpserver.c CreatePCPMap_FW).
    p.externalPort = p.internalPort
    p.pinholeAddress = rinfo.address
    p.writeExternalAddress = true
    p.lifetime = capped(gw, p.lifetime)
    gw.mappings.set(`${protocol} [${rinfo.address}]:${p.internalPort}`, { protocol, clientAddress: rinfo.address, internalPort: p.internalPort, externalPort: p.internalPort, lifetimeSeconds: p.lifetime, expiresAtMs: gw.clock.now() + p.lifetime * 1000, nonce: p.nonce, via: 'pcp' })
    return
  }
  const found = searchExternalPort(gw, protocol, rinfo.address, p.internalPort, p.externalPort, p.preferFailure)
  if (typeof found === 'string') {
    p.result = found === 'none permitted' ? PcpResultCode.NOT_AUTHORIZED : found === 'none free' ? PcpResultCode.NO_RESOURCES : PcpResultCode.CANNOT_PROVIDE_EXTERNAL
    return
  }
  p.externalPort = found
  p.lifetime = capped(gw, p.lifetime)
  setMapping(gw, { protocol, clientAddress: rinfo.address, internalPort: p.internalPort, externalPort: found, lifetimeSeconds: p.lifetime, expiresAtMs: gw.clock.now() + p.lifetime * 1000, nonce: p.nonce, via: 'pcp' })
}

/**
 * miniupnpd's DeletePCPMap: the host's newest entry for this protocol and internal port (any,
 * for port 0), whoever made it; only its own nonce may delete it; none at all is NO_RESOURCES.
 */
function remove (gw: PmpTable, protocol: TransportProtocol | undefined, client: string, internalPort: number, nonce: string): number {
  for (const [key, m] of [...gw.mappings].reverse()) {
    if (m.clientAddress !== client || m.protocol !== protocol || (internalPort !== 0 && m.internalPort !== internalPort)) continue
    if (m.via !== 'pcp' || m.nonce !== nonce) return PcpResultCode.NOT_AUTHORIZED
    gw.mappings.delete(key)
    return PcpResultCode.SUCCESS
  }
  return PcpResultCode.NO_RESOURCES
}

/** The request with the answer's header and fields written over it (pcpserver.c createPCPResponse). */
function answer (gw: PmpTable, p: Parsed, bytes: Uint8Array): Uint8Array {
  const out = new Uint8Array(Math.max(HEADER, (bytes.length + 3) & ~3))
  out.set(bytes.subarray(0, out.length))
  const view = new DataView(out.buffer)
  out[0] = p.result === PcpResultCode.UNSUPP_VERSION ? 2 : p.version
  out[1] = p.opcode | 0x80
  out[2] = 0
  out[3] = p.result
  const lifetime = p.result === PcpResultCode.SUCCESS ? p.lifetime : SHORT_LIFETIME_ERRORS.includes(p.result) ? 30 : 0
  view.setUint32(4, lifetime)
  view.setUint32(8, gw.epochSeconds())
  out.fill(0, 12, 24)
  const fields = out[0] === 1 ? HEADER : HEADER + 12
  if ((out[1] === 0x81 || (out[1] === 0x82 && out[0] === 2)) && out[0] !== 0) {
    if (fields + 8 <= out.length) {
      view.setUint16(fields + 4, p.internalPort)
      view.setUint16(fields + 6, p.externalPort)
    }
    if (p.writeExternalAddress && fields + 24 <= out.length) out.set(mapped(p.pinholeAddress ?? gw.externalAddress()), fields + 8)
  }
  return out
}

function describe (p: Parsed, bytes: Uint8Array): string {
  if (p.result === PcpResultCode.MALFORMED_REQUEST && p.version === 0) return `malformed (${bytes.length} bytes)`
  if (p.opcode === PcpOpcode.ANNOUNCE) return 'ANNOUNCE'
  if (p.opcode !== PcpOpcode.MAP) return `opcode ${p.opcode}`
  return `MAP ${p.protocol} ${p.internalPort} lifetime ${new DataView(bytes.buffer, bytes.byteOffset).getUint32(4)}`
}

/** An address as PCP writes it: IPv6, or IPv4-mapped IPv6 (RFC 6887 §5). */
function mapped (address: string): Uint8Array {
  return ipToBytes16(address.replace(/^::ffff:/i, ''))
}

function sameAddress (a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i])
}

/** All zero, or IPv4-mapped 0.0.0.0. */
function isUnspecified (a: Uint8Array): boolean {
  return a.every((x, i) => x === 0 || ((i === 10 || i === 11) && x === 0xff))
}
