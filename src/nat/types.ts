import type { Clock } from '../clock.js'
import type { AddressFamily, Gateway, ListenOptions, MappingMethod, PortMapping, ProtocolCounters, TransportProtocol } from '../gateway.js'
import type { Logger } from '../log.js'
import type { AddressClass } from '../net/address-class.js'
import type { Ipv6FollowOptions } from './ipv6-follow.js'

/** The NAT manager's options, events and the shapes they carry (the class is in nat.ts). */

export interface NatOptions {
  /** Lease to ask for; RFC 6886 §3.3 recommends 7200 s. */
  lifetimeSeconds?: number
  clock?: Clock
  logger?: Logger
  /** Upper bound for each router request. */
  requestTimeoutMs?: number
  /** Upper bound for each delete of close(): once one goes unanswered, the router is taken for gone and the rest are given up. */
  closeTimeoutMs?: number
  /**
   * Keep the mappings alive (the default): renew them, make them again after a reset, retry a
   * failed first attempt in the background, and delete them all on close(). `false` maps once:
   * addMapping rejects when the first attempt fails, nothing is renewed, and close() leaves the
   * mappings on the gateway for their lifetime (natmapper map --once).
   */
  keep?: boolean
  /** Requests in flight to the gateway at most; more wait their turn before they are sent. Default 8 (4 for UPnP). */
  maxConcurrentRequests?: number
  /** Finds the gateway again after repeated refusals or a route change; discoverNAT passes it. */
  rediscover?: (signal: AbortSignal) => Promise<Gateway>
  /** The gateway's external address, if discovery already learnt it. */
  externalAddress?: string
  /** Why the gateway cannot give a public mapping, if discovery already knows (e.g. no external address). */
  notPublicReason?: string
  /**
   * Ask the gateway for its external address in the background, after the first mapping
   * attempts, when discovery did not learn it (discoverNAT leaves it to the NAT on PCP and UPnP
   * gateways: see DiscoverOptions.deferExternalAddress).
   */
  askExternalAddress?: boolean
  /**
   * Listen for what the gateway multicasts when it restarts (Gateway.describe().listen), for the
   * gateway and for each one rediscovery finds; discoverNAT passes it. Off by default.
   */
  listen?: ListenOptions | false
  /** Returns the current default gateway; when it changes, the gateway is discovered again. */
  watchRoute?: {
    lookup: () => Promise<string | undefined>
    intervalMs: number
    /** The gateway the default route went through at discovery: the first look-up is then one interval later. */
    initialGateway?: string
  }
  /** Random numbers in [0, 1) for the RFCs' random wait; tests pass a fixed one. */
  random?: () => number
  /**
   * How often to check that the gateway still holds each mapping, where the protocol can ask
   * cheaply (UPnP GetSpecificPortMappingEntry: one request per mapping each time); a missing one
   * is made again. Default: the gateway's own `verifyIntervalMs` (30 min for UPnP). 0 turns it
   * off. See Gateway.verify.
   */
  verifyIntervalMs?: number
  /**
   * The IPv6 side (src/nat/family.ts): the Gateway that opens pinholes for the host's global IPv6
   * address (a PcpClient with that localAddress, or a PinholeGateway; see openIpv6Gateway). Asked
   * for with addMapping's `family: 6 | 'both'`.
   */
  ipv6?: { gateway: Gateway } | undefined
  /** The family of `gateway`: 4 unless the NAT is made on an IPv6 gateway alone. */
  family?: AddressFamily
  /**
   * The IPv6 side follows the host's address (ipv6-follow.ts): polls the host's addresses and,
   * when the one the pinholes open is deprecated or gone, moves them to the preferred one (an
   * `address-changed` event, then `mapped` for each). On by default where the gateway opens a
   * global address and can be made for another (Gateway.forAddress); `false` turns it off.
   */
  followAddress?: Ipv6FollowOptions | false | undefined
}

export interface AddMappingOptions {
  /** External port to ask for; the gateway may grant another. */
  externalPort?: number
  description?: string
  signal?: AbortSignal
  /**
   * Which IP version to open the port on: 4 (a NAT mapping), 6 (a firewall pinhole on the host's
   * global IPv6 address, NatOptions.ipv6) or 'both'. Default: the NAT's own family, 4 unless the NAT
   * was made on an IPv6 gateway: existing callers see no change, and the host is not opened to
   * inbound IPv6 (no NAT in front of it there) unless asked.
   */
  family?: AddressFamily | 'both'
}

export interface MappingEvent {
  family: AddressFamily
  protocol: TransportProtocol
  internalPort: number
  /** For IPv6 the host's own address opened (the pinhole's). */
  externalAddress: string | undefined
  externalPort: number
  method: MappingMethod
  lifetimeSeconds: number
}

/** A mapping close() could not delete: it stays on the gateway until its lease ends. */
export interface LeftMapping {
  mapping: PortMapping
  error: Error
}

/** Where an event or error belongs: one mapping. */
export interface MappingKey {
  family: AddressFamily
  protocol: TransportProtocol
  internalPort: number
}

export interface NatEvents {
  mapped: [MappingEvent]
  renewed: [MappingEvent]
  /** The mapping is gone (the gateway restarted, a renewal failed until expiry, a check found it broken); it is made again if it can be. */
  lost: [{ family: AddressFamily, protocol: TransportProtocol, internalPort: number, reason: Error }]
  unmapped: [{ family: AddressFamily, protocol: TransportProtocol, internalPort: number }]
  'external-address': [{ address: string, previous: string | undefined, addressClass: AddressClass }]
  'gateway-changed': [{ previous: string, address: string, method: MappingMethod, reason: string }]
  /** The host's address the pinholes open changed (deprecated or removed): they are being moved from `previous` to `address`. */
  'address-changed': [{ family: 6, previous: string, address: string }]
  /**
   * The gateway has no public external address (double NAT, carrier-grade NAT, no WAN address):
   * mappings on it will not be reachable from the internet. `notPublicReason` says the same. What
   * discovery already knew (this and `external-address`) is emitted in the turn after the NAT is
   * made, so that listeners added at once hear it.
   */
  'not-public': [{ reason: string }]
  /** A failure; the second argument names the mapping it concerns, when it concerns one. */
  error: [Error, MappingKey | undefined]
}

/** What a NAT has done so far (nat.stats()): its requests per protocol, on every gateway it used, and its own work. */
export interface NatStats {
  method: MappingMethod
  gateway: string
  protocols: Partial<Record<MappingMethod, ProtocolCounters>>
  mappingsHeld: number
  /** `mapped` events: first grants, and mappings made again after a loss. */
  mapped: number
  renewals: number
  lost: number
  /** Rounds of re-mapping after the gateway lost its state. */
  recoveries: number
  /** Attempts to find the gateway again, and the times it was replaced. */
  rediscoveries: number
  gatewayChanges: number
  errors: number
}
