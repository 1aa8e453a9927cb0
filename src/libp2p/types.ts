import type { DiscoverNatOptions } from '../nat/discover-nat.js'
import type { Clock } from '../clock.js'

/**
 * What the service uses of a libp2p node, written as the few members it calls rather than
 * imported from @libp2p/interface: libp2p's own Components satisfy these, and natmapper/libp2p
 * then loads nothing of libp2p and needs none of its packages to type-check.
 */

/** A multiaddr as the node hands it out: only its string form is read. */
export interface MultiaddrLike {
  toString(): string
}

/** @libp2p/interface Logger: a debug-style function with `error`. */
export interface Libp2pLogger {
  (formatter: any, ...args: any[]): void
  error(formatter: any, ...args: any[]): void
}

/** @libp2p/interface-internal AddressManager, the calls the service makes. */
export interface AddressManagerLike {
  getAddressesWithMetadata(): Array<{ multiaddr: MultiaddrLike, type: string, verified: boolean }>
  addPublicAddressMapping(internalIp: string, internalPort: number, externalIp: string, externalPort?: number, protocol?: 'tcp' | 'udp'): void
  removePublicAddressMapping(internalIp: string, internalPort: number, externalIp: string, externalPort?: number, protocol?: 'tcp' | 'udp'): void
  confirmObservedAddr(addr: any, options?: { ttl?: number, type?: any }): void
}

/** The node events the service follows: its listeners opening and closing, its addresses changing. */
export type NodeEventName = 'transport:listening' | 'transport:close' | 'self:peer:update'

export interface NatmapperNatComponents {
  logger: { forComponent(name: string): Libp2pLogger }
  addressManager: AddressManagerLike
  events: {
    addEventListener(type: NodeEventName, listener: (event: any) => void): void
    removeEventListener(type: NodeEventName, listener: (event: any) => void): void
  }
  /** For the default mapping description, as @libp2p/upnp-nat writes it. */
  nodeInfo?: { name: string, version: string }
  peerId?: { toString(): string }
}

/**
 * The options. Those of @libp2p/upnp-nat's UPnPNATInit that still make sense keep their names
 * and units (milliseconds); the rest are natmapper's own. See the README section "With
 * js-libp2p" for what differs.
 */
export interface NatmapperNatInit {
  /**
   * Lease to ask for, in milliseconds (as @libp2p/upnp-nat's `portMappingTTL`). Default 2 h
   * (RFC 6886 §3.3). Renewed at half of what the router granted, whatever this is; routers
   * that accept only permanent UPnP leases get one.
   */
  portMappingTTL?: number
  /** Shown in the router's table where the protocol carries it (UPnP). Default `<name>@<version> <peer id>` as upnp-nat. */
  portMappingDescription?: string
  /**
   * Trust each mapped address at once instead of leaving it to @libp2p/autonat (which the
   * service then requires, as upnp-nat does). Default false.
   */
  autoConfirmAddress?: boolean
  /** The gateway's IP address; found from the default route when absent. */
  gateway?: string
  /**
   * upnp-nat's UPnP description URLs: natmapper keeps one gateway, so the host of the first
   * one is taken as `gateway` and every protocol is asked there (PCP, NAT-PMP, UPnP).
   */
  gateways?: string[]
  /**
   * The address to announce instead of the one the router reports (upnp-nat's option of the
   * same name). It must be public: a private or CGNAT one announces nothing.
   */
  externalAddress?: string
  /** Upper bound for each discovery of the gateway, in milliseconds. Default 10 000. */
  gatewaySearchTimeout?: number
  /**
   * When no gateway answered, wait this long before the next search, then twice as long
   * each time, up to `gatewaySearchInterval`. Default 10 000 ms.
   */
  initialGatewaySearchInterval?: number
  /** The longest wait between searches while none answers. Default 300 000 ms (upnp-nat's). */
  gatewaySearchInterval?: number
  /**
   * How long an announced address stays after its mapping was lost (a router reboot), waiting
   * for the mapping to come back on the same port, so that AutoNAT's confirmation is not thrown
   * away for a few seconds of recovery. Default 30 000 ms.
   */
  lostMappingGraceMs?: number
  /**
   * natmapper's own discovery options (protocols, ports, announcement listeners, a clock):
   * for tests against natmapper/testing's simulated gateways, and for special networks.
   */
  natmapper?: DiscoverNatOptions
  /** The clock of every wait of the service (natmapper/testing's FakeClock in tests). Default: natmapper's, if given, else the system's. */
  clock?: Clock
}
