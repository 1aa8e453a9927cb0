import type { Clock } from './clock.js'
import type { Gateway, MappingMethod, TransportProtocol } from './gateway.js'
import type { Logger } from './log.js'
import type { AddressClass } from './net/address-class.js'
import type { Announcement } from './net/announcements.js'

/** The NAT manager's options, events and the shapes they carry (the class is in nat.ts). */

export interface NatOptions {
  /** Lease to ask for; RFC 6886 §3.3 recommends 7200 s. */
  lifetimeSeconds?: number
  clock?: Clock
  logger?: Logger
  /** Upper bound for each router request. */
  requestTimeoutMs?: number
  /** Upper bound for close(): it gives up on a router that stopped answering. */
  closeTimeoutMs?: number
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
  /** Gateway announcements (PCP ANNOUNCE, NAT-PMP address packets, SSDP alive); the NAT closes it. */
  announcements?: AnnouncementSource
  /**
   * Opens the announcement source for a gateway found by rediscovery (which may have another
   * address or protocol); the NAT closes the previous one. discoverNAT passes it.
   */
  announcementsFor?: (gateway: Gateway) => AnnouncementSource | undefined
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
}

export interface AnnouncementSource {
  on(event: 'announcement', listener: (announcement: Announcement) => void): unknown
  close(): void
}

export interface AddMappingOptions {
  /** External port to ask for; the gateway may grant another. */
  externalPort?: number
  description?: string
  signal?: AbortSignal
}

export interface MappingEvent {
  protocol: TransportProtocol
  internalPort: number
  externalAddress: string | undefined
  externalPort: number
  method: MappingMethod
  lifetimeSeconds: number
}

export interface NatEvents {
  mapped: [MappingEvent]
  renewed: [MappingEvent]
  lost: [{ protocol: TransportProtocol, internalPort: number, reason: Error }]
  unmapped: [{ protocol: TransportProtocol, internalPort: number }]
  'external-address': [{ address: string, previous: string | undefined, addressClass: AddressClass }]
  'gateway-changed': [{ previous: string, address: string, method: MappingMethod, reason: string }]
  /**
   * The gateway turned out to have no public external address (double NAT, carrier-grade NAT, no
   * WAN address): mappings on it will not be reachable from the internet. `notPublicReason` says
   * the same; a reason discovery already knew is not emitted again.
   */
  'not-public': [{ reason: string }]
  error: [Error]
}
