import type { RemoteInfo } from 'node:dgram'
import type { Clock } from '../clock.js'
import type { TransportProtocol } from '../gateway.js'
import { encodePcpResponse } from '../pcp/codec.js'
import { PCP_VERSION, PcpResultCode } from '../pcp/codes.js'
import { NatPmpResultCode } from '../natpmp/codes.js'
import type { PmpFaults, PmpRules, ReceivedRequest, SimulatedMapping } from './pmp-types.js'

/**
 * SimulatedPmpGateway's NAT-PMP answers (RFC 6886) over its mapping table, as miniupnpd 2.3.1
 * gives them (natpmp.c, ProcessIncomingNATPMPPacket), with the faults that change an answer
 * applied; the PCP answers are pmp-pcp.ts. The table is keyed `protocol/externalPort`, as a
 * router's NAT is: one external port, one mapping, whoever asked for it. `undefined`: no answer.
 */

/** The gateway as its handlers see it: what they read, and the table and log they change. */
export interface PmpTable {
  readonly rules: PmpRules
  readonly faults: PmpFaults
  readonly clock: Clock
  /** In the order made; routers list (and search) the newest first. */
  readonly mappings: Map<string, SimulatedMapping>
  readonly received: ReceivedRequest[]
  externalAddress: () => string
  epochSeconds: () => number
}

export function answerNatPmp (gw: PmpTable, bytes: Uint8Array, rinfo: RemoteInfo): Uint8Array | undefined {
  const epochSeconds = gw.epochSeconds()
  const log = (summary: string, via: ReceivedRequest['via'] = 'natpmp'): void => { gw.received.push({ via, from: rinfo.address, atMs: gw.clock.now(), summary }) }
  const opcode = bytes[1] ?? 0
  // natpmp.c: shorter than 2 bytes, or a mapping request shorter than 12, is dropped; so are responses.
  if (bytes.length < 2 || ((opcode === 1 || opcode === 2) && bytes.length < 12)) {
    log(`too short (${bytes.length} bytes)`, 'garbage')
    return undefined
  }
  if ((opcode & 0x80) !== 0) {
    log(`a response (opcode ${opcode})`, 'garbage')
    return undefined
  }
  if (!gw.rules.natpmp) {
    log('version 0 refused')
    // RFC 6887 §9: a PCP-only server answers a NAT-PMP request with UNSUPP_VERSION.
    return encodePcpResponse({ version: PCP_VERSION, opcode, resultCode: PcpResultCode.UNSUPP_VERSION, lifetimeSeconds: 0, epochSeconds, options: [] })
  }
  if (opcode === 0) {
    log('EXTERNAL_ADDRESS')
    const fault = gw.faults.externalAddressResult
    const address = gw.externalAddress()
    const result = fault ?? (address === '' || address === '0.0.0.0' ? NatPmpResultCode.NETWORK_FAILURE : 0)
    return natPmpAnswer(opcode, result, epochSeconds, 12, (view) => { if (result === 0) view.setUint32(8, ipv4Number(address)) })
  }
  if (opcode !== 1 && opcode !== 2) {
    log(`opcode ${opcode}`)
    return natPmpAnswer(opcode, NatPmpResultCode.UNSUPPORTED_OPCODE, epochSeconds, 8)
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  const protocol: TransportProtocol = opcode === 1 ? 'udp' : 'tcp'
  const internalPort = view.getUint16(4)
  let externalPort = view.getUint16(6)
  const lifetimeSeconds = view.getUint32(8)
  log(`MAP ${protocol} ${internalPort} lifetime ${lifetimeSeconds}`)
  const reply = (result: number, lifetime: number): Uint8Array => natPmpAnswer(opcode, result, epochSeconds, 16, (v) => {
    v.setUint16(8, internalPort)
    v.setUint16(10, externalPort)
    v.setUint32(12, lifetime)
  })
  const refused = gw.faults.refuseWith?.natpmp
  if (refused !== undefined) return reply(refused, lifetimeSeconds)
  purgeExpired(gw)
  if (lifetimeSeconds === 0) {
    // RFC 6886 §3.4; miniupnpd takes only what NAT-PMP made for this host, all of it for internal port 0.
    externalPort = 0
    for (const [key, m] of gw.mappings) {
      if (m.via === 'natpmp' && m.clientAddress === rinfo.address && (internalPort === 0 || (m.internalPort === internalPort && m.protocol === protocol))) gw.mappings.delete(key)
    }
    return reply(0, 0)
  }
  if (internalPort === 0) return reply(NatPmpResultCode.NOT_AUTHORIZED, lifetimeSeconds)
  const found = searchExternalPort(gw, protocol, rinfo.address, internalPort, externalPort === 0 ? internalPort : externalPort, false)
  if (typeof found === 'string') {
    externalPort = externalPort === 0 ? internalPort : externalPort
    return reply(found === 'none permitted' ? NatPmpResultCode.NOT_AUTHORIZED : NatPmpResultCode.OUT_OF_RESOURCES, lifetimeSeconds)
  }
  externalPort = found
  const granted = capped(gw, lifetimeSeconds)
  // miniupnpd adds the lifetime to its clock (seconds since boot) in 32 bits: near 2^32 the sum
  // wraps into the past and the mapping expires at once, though SUCCESS was answered.
  const wraps = ROUTER_UPTIME_SECONDS + epochSeconds + granted > 0xffffffff
  const expiresAtMs = wraps ? gw.clock.now() : gw.clock.now() + granted * 1000
  setMapping(gw, { protocol, clientAddress: rinfo.address, internalPort, externalPort, lifetimeSeconds: granted, expiresAtMs, nonce: undefined, via: 'natpmp' })
  return reply(0, granted)
}

/** How long the router had been up when its NAT-PMP epoch began, for miniupnpd's 32-bit expiry: a day. */
const ROUTER_UPTIME_SECONDS = 86_400

/** miniupnpd's NAT-PMP answer: version 0, opcode + 128, the result, the epoch, then the fields. */
function natPmpAnswer (opcode: number, result: number, epochSeconds: number, length: number, fill?: (view: DataView) => void): Uint8Array {
  const out = new Uint8Array(length)
  const view = new DataView(out.buffer)
  out[1] = 128 + opcode
  view.setUint16(2, result)
  view.setUint32(4, epochSeconds)
  fill?.(view)
  return out
}

/** The lifetime granted once `faults.capLifetimeSeconds` is applied. */
export function capped (gw: PmpTable, lifetimeSeconds: number): number {
  const cap = gw.faults.capLifetimeSeconds
  return cap === undefined ? lifetimeSeconds : Math.min(lifetimeSeconds, cap)
}

/** Whether the router's permission rule allows this pair (miniupnpd's sample: allow 1024-65535 ... 1024-65535). */
function permitted (gw: PmpTable, externalPort: number, internalPort: number): boolean {
  const { minExternalPort, maxExternalPort, minInternalPort } = gw.rules
  return externalPort >= minExternalPort && externalPort <= maxExternalPort && internalPort >= minInternalPort && internalPort <= 65535
}

/**
 * miniupnpd's search for an external port (natpmp.c, pcpserver.c CreatePCPMap_NAT): the port
 * asked, then upward (65535 wraps to 1), past ports the rules refuse and ports held by another
 * host or another internal port; the same host's entry for this internal port is replaced.
 * `preferFailure` (PCP's PREFER_FAILURE) gives up at the first refused or taken-by-us port.
 */
export function searchExternalPort (gw: PmpTable, protocol: TransportProtocol, client: string, internalPort: number, first: number,
  preferFailure: boolean): number | 'none permitted' | 'none free' | 'not the one asked' {
  // A full table (maxMappings) has no room for a new entry; the host's own one may be replaced.
  const own = [...gw.mappings.values()].some((m) => m.protocol === protocol && m.clientAddress === client && m.internalPort === internalPort)
  if (!own && gw.mappings.size >= gw.rules.maxMappings) return 'none free'
  let anyPermitted = false
  for (let port = first, tries = 0; tries < 65535; tries++, port = port === 65535 ? 1 : port + 1) {
    if (!permitted(gw, port, internalPort)) {
      if (preferFailure) return 'not the one asked'
      continue
    }
    anyPermitted = true
    const held = gw.mappings.get(mappingKey(protocol, port))
    if (held === undefined || (held.clientAddress === client && held.internalPort === internalPort)) return port
    // miniupnpd's port_in_use() passes over another host's port before PREFER_FAILURE is looked at.
    if (held.clientAddress === client && preferFailure) return 'not the one asked'
  }
  return anyPermitted ? 'none free' : 'none permitted'
}

/** Stores `m`, as the newest entry (a replaced one is deleted and made again, as miniupnpd does). */
export function setMapping (gw: PmpTable, m: SimulatedMapping): void {
  const key = mappingKey(m.protocol, m.externalPort)
  gw.mappings.delete(key)
  gw.mappings.set(key, m)
}

/** Drops the entries whose lifetime is over. */
export function purgeExpired (gw: PmpTable): void {
  const now = gw.clock.now()
  for (const [key, m] of gw.mappings) if (m.expiresAtMs <= now) gw.mappings.delete(key)
}

export function mappingKey (protocol: TransportProtocol, externalPort: number): string {
  return `${protocol}/${externalPort}`
}

export function ipv4Number (address: string): number {
  return address.split('.').reduce((n, octet) => n * 256 + Number(octet), 0)
}
