import type { Clock } from '../clock.js'
import type { TransportProtocol } from '../gateway.js'

/**
 * What a test configures and sees of a SimulatedPmpGateway: its options, the entries of its
 * table, its request log and its fault switches. Here, apart from pmp-gateway.ts, so that its
 * request handlers (pmp-answers.ts) can share them without importing it.
 */

export interface SimulatedPmpGatewayOptions {
  /** Address to bind; default 127.0.0.1. */
  address?: string
  /** Port to bind; default 0 (any free port). */
  port?: number
  /** The WAN address the gateway reports. Default 11.0.0.1, a public address as the lab uses (never contacted). */
  externalAddress?: string
  /** Answer PCP (version 2). When off, PCP requests get NAT-PMP's UNSUPPORTED_VERSION. Default true. */
  pcp?: boolean
  /** Answer NAT-PMP (version 0). When off, NAT-PMP requests get PCP's UNSUPP_VERSION. Default true. */
  natpmp?: boolean
  /** PCP lifetime clamp; miniupnpd's defaults are 120 and 86400. */
  minLifetimeSeconds?: number
  maxLifetimeSeconds?: number
  /** External ports the gateway may hand out; miniupnpd's sample config allows 1024-65535. */
  minExternalPort?: number
  maxExternalPort?: number
  /**
   * The table holds at most this many mappings (all clients): a new one beyond it is refused
   * with PCP NO_RESOURCES (8) or NAT-PMP OUT_OF_RESOURCES (4), as a router out of room answers.
   * Default: no limit.
   */
  maxMappings?: number
  /** Internal ports below this are refused (NOT_AUTHORIZED), as miniupnpd's sample rule does. Default 1024. */
  minInternalPort?: number
  /**
   * Refuse PCP renewals that carry another nonce (NOT_AUTHORIZED). Default false: miniupnpd
   * checks the nonce on delete only, and a MAP with another nonce takes the mapping over.
   */
  enforceNonceOnRenew?: boolean
  /**
   * A second address to bind, for `faults.wrongSourceAddress`: answers then come from another
   * host, as a LAN host spoofing the gateway would send them (e.g. 127.0.0.2; Linux has all of
   * 127.0.0.0/8 on loopback). Default: none.
   */
  spoofAddress?: string
  clock?: Clock
}

export interface SimulatedMapping {
  protocol: TransportProtocol
  clientAddress: string
  internalPort: number
  externalPort: number
  lifetimeSeconds: number
  expiresAtMs: number
  /** Hex of the PCP nonce, or undefined for a NAT-PMP mapping. */
  nonce: string | undefined
  via: 'natpmp' | 'pcp'
}

export interface ReceivedRequest {
  via: 'natpmp' | 'pcp' | 'garbage'
  from: string
  atMs: number
  /** A short description, e.g. "MAP tcp 7001 lifetime 7200". */
  summary: string
}

/** Switches a test flips to make the gateway misbehave. All off by default. */
export interface PmpFaults {
  /** Answer nothing at all. */
  silent: boolean
  /** Drop this many incoming requests before answering again (lost packets). */
  dropNext: number
  /** Answer after this delay, on the gateway's clock. */
  delayMs: number
  /** Send a garbage datagram before every real answer. */
  garbageFirst: boolean
  /** Answer from another socket (another source port), as a spoofer or a confused router would. */
  wrongSource: boolean
  /** Refuse every mapping request with this result code (PCP or NAT-PMP code space by request). */
  refuseWith: { pcp?: number, natpmp?: number, lifetimeSeconds?: number } | undefined
  /** Grant at most this lifetime, whatever was asked. */
  capLifetimeSeconds: number | undefined
  /**
   * Answer NAT-PMP external-address requests with this result code, as miniupnpd answers
   * NETWORK_FAILURE (3) when its WAN address is private or reserved (double NAT).
   */
  externalAddressResult: number | undefined
  /** Answer from `spoofAddress` (another host) instead of the gateway's address. Needs that option. */
  wrongSourceAddress: boolean
  /**
   * Answer every PCP request with ADDRESS_MISMATCH, as a server does when another NAT between
   * client and server rewrote the source address (RFC 6887 §8.3; quirk 24: tailscale PR #3397).
   */
  addressMismatch: boolean
  /**
   * Replaces each answer with what this returns: one datagram, several, or none (undefined). It
   * sees the request and the answer the gateway would have sent (undefined when it would send
   * none), so a test can send garbage, a wrong opcode, another nonce, absurd lifetimes, floods.
   * The gateway's table is updated as for the real answer.
   */
  mangle: ((answer: Uint8Array | undefined, request: Uint8Array) => Uint8Array | Uint8Array[] | undefined) | undefined
}

/** The options as the handlers apply them, defaults filled in. */
export type PmpRules = Required<Omit<SimulatedPmpGatewayOptions, 'clock' | 'address' | 'port' | 'externalAddress' | 'spoofAddress'>>
