import type { RemoteInfo } from 'node:dgram'
import type { Clock } from '../clock.js'
import type { TransportProtocol } from '../gateway.js'
import { decodeNatPmpRequest, encodeNatPmpResponse, type NatPmpResponse } from '../natpmp/codec.js'
import { NatPmpResultCode } from '../natpmp/codes.js'
import { decodePcpRequest, encodePcpResponse, type PcpRequest, type PcpResponse } from '../pcp/codec.js'
import { IanaProtocol, PCP_VERSION, PcpOpcode, PcpResultCode } from '../pcp/codes.js'
import type { PmpFaults, PmpRules, ReceivedRequest, SimulatedMapping } from './pmp-types.js'

/**
 * SimulatedPmpGateway's answers to a NAT-PMP (version 0) or PCP request over its mapping table,
 * as miniupnpd gives them, with the faults that change an answer applied. Keyed
 * `protocol/client/internalPort`. A malformed request throws MalformedPacketError (the codecs').
 */

/** The gateway as its handlers see it: what they read, and the table and log they change. */
export interface PmpTable {
  readonly rules: PmpRules
  readonly faults: PmpFaults
  readonly clock: Clock
  readonly mappings: Map<string, SimulatedMapping>
  readonly received: ReceivedRequest[]
  externalAddress: () => string
  epochSeconds: () => number
}

export function answerNatPmp (gw: PmpTable, bytes: Uint8Array, rinfo: RemoteInfo): Uint8Array | undefined {
  const epochSeconds = gw.epochSeconds()
  if (!gw.rules.natpmp) {
    gw.received.push({ via: 'natpmp', from: rinfo.address, atMs: gw.clock.now(), summary: 'version 0 refused' })
    // RFC 6887 §9: a PCP-only server answers a NAT-PMP request with UNSUPP_VERSION.
    return encodePcpResponse({ version: PCP_VERSION, opcode: bytes[1] ?? 0, resultCode: PcpResultCode.UNSUPP_VERSION, lifetimeSeconds: 0, epochSeconds, options: [] })
  }
  const request = decodeNatPmpRequest(bytes)
  if (request.opcode === 'external-address') {
    gw.received.push({ via: 'natpmp', from: rinfo.address, atMs: gw.clock.now(), summary: 'EXTERNAL_ADDRESS' })
    const result = gw.faults.externalAddressResult
    if (result !== undefined) return encodeNatPmpResponse({ opcode: 'error', requestOpcode: 0, resultCode: result, epochSeconds }, { length: 12 })
    return encodeNatPmpResponse({ opcode: 'external-address', resultCode: 0, epochSeconds, externalAddress: gw.externalAddress() })
  }
  const { protocol, internalPort, suggestedExternalPort, lifetimeSeconds } = request
  gw.received.push({ via: 'natpmp', from: rinfo.address, atMs: gw.clock.now(), summary: `MAP ${protocol} ${internalPort} lifetime ${lifetimeSeconds}` })
  const requestOpcode = protocol === 'udp' ? 1 : 2
  const refused = gw.faults.refuseWith?.natpmp
  if (refused !== undefined) {
    return encodeNatPmpResponse({ opcode: 'error', requestOpcode, resultCode: refused, epochSeconds }, { length: 16 })
  }
  const key = mappingKey(protocol, rinfo.address, internalPort)
  if (lifetimeSeconds === 0) {
    gw.mappings.delete(key)
    return encodeNatPmpResponse({ opcode: 'map', resultCode: 0, protocol, epochSeconds, internalPort, externalPort: 0, lifetimeSeconds: 0 })
  }
  const externalPort = allocate(gw, key, protocol, suggestedExternalPort === 0 ? internalPort : suggestedExternalPort)
  if (externalPort === undefined) {
    return encodeNatPmpResponse({ opcode: 'error', requestOpcode, resultCode: NatPmpResultCode.OUT_OF_RESOURCES, epochSeconds }, { length: 16 })
  }
  const granted = grantLifetime(gw, lifetimeSeconds, false)
  gw.mappings.set(key, {
    protocol, clientAddress: rinfo.address, internalPort, externalPort, lifetimeSeconds: granted,
    expiresAtMs: gw.clock.now() + granted * 1000, nonce: undefined, via: 'natpmp'
  })
  const response: NatPmpResponse = { opcode: 'map', resultCode: 0, protocol, epochSeconds, internalPort, externalPort, lifetimeSeconds: granted }
  return encodeNatPmpResponse(response)
}

export function answerPcp (gw: PmpTable, bytes: Uint8Array, rinfo: RemoteInfo): Uint8Array | undefined {
  const epochSeconds = gw.epochSeconds()
  if (!gw.rules.pcp) {
    gw.received.push({ via: 'pcp', from: rinfo.address, atMs: gw.clock.now(), summary: 'version refused (NAT-PMP only)' })
    // A NAT-PMP-only server answers any other version with its 8-byte UNSUPPORTED_VERSION reply.
    return encodeNatPmpResponse({ opcode: 'error', requestOpcode: (bytes[1] ?? 0) & 0x7f, resultCode: NatPmpResultCode.UNSUPPORTED_VERSION, epochSeconds })
  }
  const request = decodePcpRequest(bytes)
  gw.received.push({ via: 'pcp', from: rinfo.address, atMs: gw.clock.now(), summary: describePcp(request) })
  const reply = (resultCode: number, lifetimeSeconds: number, map?: PcpResponse['map']): Uint8Array =>
    encodePcpResponse({ version: PCP_VERSION, opcode: request.opcode, resultCode, lifetimeSeconds, epochSeconds, ...(map === undefined ? {} : { map }), options: [] })
  if (request.version !== PCP_VERSION) return reply(PcpResultCode.UNSUPP_VERSION, 0)
  if (request.clientAddress !== rinfo.address || gw.faults.addressMismatch) return reply(PcpResultCode.ADDRESS_MISMATCH, 0, request.map)
  if (request.opcode === PcpOpcode.ANNOUNCE) return reply(PcpResultCode.SUCCESS, 0)
  if (request.opcode !== PcpOpcode.MAP || request.map === undefined) return reply(PcpResultCode.UNSUPP_OPCODE, 0)
  const map = request.map
  const refused = gw.faults.refuseWith?.pcp
  if (refused !== undefined) return reply(refused, gw.faults.refuseWith?.lifetimeSeconds ?? 0, map)
  const protocol = map.protocol === IanaProtocol.tcp ? 'tcp' : map.protocol === IanaProtocol.udp ? 'udp' : undefined
  if (protocol === undefined) return reply(PcpResultCode.UNSUPP_PROTOCOL, 0, map)
  const key = mappingKey(protocol, rinfo.address, map.internalPort)
  purgeExpired(gw)
  const existing = gw.mappings.get(key)
  const nonce = hex(map.nonce)
  if (existing?.nonce !== undefined && existing.nonce !== nonce &&
      (request.lifetimeSeconds === 0 || gw.rules.enforceNonceOnRenew)) {
    return reply(PcpResultCode.NOT_AUTHORIZED, 0, map)
  }
  if (request.lifetimeSeconds === 0) {
    gw.mappings.delete(key)
    return reply(PcpResultCode.SUCCESS, 0, { ...map, externalAddress: gw.externalAddress() })
  }
  const externalPort = allocate(gw, key, protocol, map.externalPort === 0 ? map.internalPort : map.externalPort)
  if (externalPort === undefined) return reply(PcpResultCode.NO_RESOURCES, 30, map)
  const granted = grantLifetime(gw, request.lifetimeSeconds, true)
  gw.mappings.set(key, {
    protocol, clientAddress: rinfo.address, internalPort: map.internalPort, externalPort, lifetimeSeconds: granted,
    expiresAtMs: gw.clock.now() + granted * 1000, nonce, via: 'pcp'
  })
  return reply(PcpResultCode.SUCCESS, granted, { ...map, externalPort, externalAddress: gw.externalAddress() })
}

function grantLifetime (gw: PmpTable, requested: number, clamp: boolean): number {
  let granted = requested
  if (clamp) granted = Math.min(Math.max(granted, gw.rules.minLifetimeSeconds), gw.rules.maxLifetimeSeconds)
  const cap = gw.faults.capLifetimeSeconds
  return cap === undefined ? granted : Math.min(granted, cap)
}

/** The suggested port if free for this key, else the next free one upward (miniupnpd's search). */
function allocate (gw: PmpTable, key: string, protocol: TransportProtocol, suggested: number): number | undefined {
  purgeExpired(gw)
  if (!gw.mappings.has(key) && gw.mappings.size >= gw.rules.maxMappings) return undefined
  const { minExternalPort, maxExternalPort } = gw.rules
  const taken = new Set<number>()
  for (const [k, m] of gw.mappings) if (k !== key && m.protocol === protocol) taken.add(m.externalPort)
  const start = Math.min(Math.max(suggested, minExternalPort), maxExternalPort)
  for (let i = 0; i <= maxExternalPort - minExternalPort; i++) {
    const port = minExternalPort + ((start - minExternalPort + i) % (maxExternalPort - minExternalPort + 1))
    if (!taken.has(port)) return port
  }
  return undefined
}

/** Drops the entries whose lifetime is over. */
export function purgeExpired (gw: PmpTable): void {
  const now = gw.clock.now()
  for (const [key, m] of gw.mappings) if (m.expiresAtMs <= now) gw.mappings.delete(key)
}

function mappingKey (protocol: TransportProtocol, client: string, internalPort: number): string {
  return `${protocol}/${client}/${internalPort}`
}

function hex (bytes: Uint8Array): string {
  return Buffer.from(bytes).toString('hex')
}

function describePcp (request: PcpRequest): string {
  if (request.opcode === PcpOpcode.ANNOUNCE) return 'ANNOUNCE'
  if (request.map === undefined) return `opcode ${request.opcode}`
  return `MAP ${request.map.protocol} ${request.map.internalPort} lifetime ${request.lifetimeSeconds}`
}
