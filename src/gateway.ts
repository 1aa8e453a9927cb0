/**
 * The protocol-neutral view of a NAT gateway. The PCP, NAT-PMP and UPnP clients each implement
 * `Gateway`, so the mapping manager and the CLI never need protocol-specific code.
 */

export type TransportProtocol = 'tcp' | 'udp'
export type MappingMethod = 'pcp' | 'natpmp' | 'upnp'

export interface CallOptions {
  signal?: AbortSignal
  /** Upper bound for the whole call, retransmissions included. */
  timeoutMs?: number
}

export interface MapRequest {
  protocol: TransportProtocol
  internalPort: number
  /** The external port to ask for; the gateway may grant another. Defaults to the internal port. */
  suggestedExternalPort?: number
  /** Requested lease; the gateway may shorten it. 0 asks UPnP for a permanent lease. */
  lifetimeSeconds: number
  /** Shown in the router's table where the protocol carries it (UPnP). */
  description?: string
  /**
   * Resolve as soon as the gateway has granted the mapping, and run the follow-up check some
   * clients make (UPnP reads a new mapping back, where routers are known to lie about it) in
   * the background: pendingCheckOf() then gives its outcome. For callers that keep the mapping
   * and can act on that outcome later, as the manager does; others get the checked mapping.
   */
  deferCheck?: boolean
}

/**
 * One granted mapping, immutable: a renewal returns a new PortMapping. Times are on the
 * gateway client's clock (milliseconds, see Clock.now()).
 */
export interface PortMapping {
  readonly method: MappingMethod
  readonly protocol: TransportProtocol
  readonly internalPort: number
  readonly externalPort: number
  /** Undefined when the protocol's reply does not carry it and it is not yet known. */
  readonly externalAddress: string | undefined
  /** What the gateway granted; 0 means permanent (UPnP only). */
  readonly lifetimeSeconds: number
  readonly grantedAtMs: number
  /** When the lease runs out (Infinity for a permanent lease). */
  readonly expiresAtMs: number
  /** Protocol state a renewal or release needs (the PCP nonce, the UPnP lease quirk). Opaque to callers. */
  readonly session?: unknown
}

export interface Gateway {
  readonly method: MappingMethod
  /** The gateway's address as the client talks to it. */
  readonly address: string
  /** The gateway's external (WAN-side) address. */
  externalAddress(options?: CallOptions): Promise<string>
  map(request: MapRequest, options?: CallOptions): Promise<PortMapping>
  /** Refreshes a mapping, asking for the same external port. */
  renew(mapping: PortMapping, options?: CallOptions): Promise<PortMapping>
  /** Deletes the mapping on the gateway. */
  unmap(mapping: PortMapping, options?: CallOptions): Promise<void>
  /** Releases sockets; does not delete mappings. Idempotent. */
  close(): void
  /**
   * Our address on the link to the gateway, where the client already has a socket connected to
   * it (PCP, NAT-PMP): the announcement listener joins its group there without opening another.
   */
  localAddress?: () => Promise<string>
  /**
   * The gateway's whole mapping table, where the protocol can list it (UPnP
   * GetGenericPortMappingEntry); PCP and NAT-PMP cannot, and leave it undefined.
   */
  list?: (options?: CallOptions) => Promise<ListedMapping[]>
  /**
   * Whether the gateway still holds `mapping` as made (same internal client and port), where
   * the protocol can ask without re-making it (UPnP GetSpecificPortMappingEntry); PCP and
   * NAT-PMP cannot, and leave it undefined. Some routers drop entries long before their lease
   * ends (ASUS purges its table every 600 s: quirk 26, tailscale#10597), so the manager asks
   * every `verifyIntervalMs` and makes a missing mapping again.
   */
  verify?: (mapping: PortMapping, options?: CallOptions) => Promise<boolean>
  /** How often the manager should call verify(); see there. */
  readonly verifyIntervalMs?: number
  /**
   * Called when the client sees that the gateway lost its state (a PCP or NAT-PMP epoch that
   * went backwards): every mapping must be made again. The manager sets it.
   */
  onReset?: (() => void) | undefined
}

/** One entry of a gateway's table, whoever made it. */
export interface ListedMapping {
  protocol: TransportProtocol
  externalPort: number
  internalClient: string
  internalPort: number
  description: string
  /** Remaining or granted lease in seconds (routers differ); 0 permanent; undefined unreadable. */
  leaseSeconds: number | undefined
  enabled: boolean | undefined
}

/**
 * A map() or renew() that failed without an answer (no reply in time, a reset connection, an
 * abort after sending) may have been applied by the gateway all the same. The client attaches
 * the mapping it asked for, so that the manager can delete it when it gives up on the port: a
 * permanent UPnP lease otherwise stays on the router for good (MikroTik routers filled up with
 * such leftovers: tailscale#10602, quirk 11). Lease-bound PCP and NAT-PMP mappings expire anyway.
 */
export function attachUncertainMapping<E> (err: E, mapping: PortMapping): E {
  if (err instanceof Error && !Object.hasOwn(err, 'uncertainMapping')) {
    Object.defineProperty(err, 'uncertainMapping', { value: mapping, enumerable: false })
  }
  return err
}

/** The mapping an error from map() or renew() may have left behind (see attachUncertainMapping). */
export function uncertainMappingOf (err: unknown): PortMapping | undefined {
  return err instanceof Error ? (err as { uncertainMapping?: PortMapping }).uncertainMapping : undefined
}

const pendingChecks = new WeakMap<PortMapping, Promise<PortMapping>>()

/** Marks `mapping` as granted but still being checked (see MapRequest.deferCheck). */
export function attachPendingCheck (mapping: PortMapping, check: Promise<PortMapping>): PortMapping {
  check.catch(() => {})
  pendingChecks.set(mapping, check)
  return mapping
}

/**
 * The background check of a mapping returned under MapRequest.deferCheck, if one runs: it
 * resolves with the mapping as the gateway really holds it (`mapping` itself when it was found
 * as made, a new one when the client had to make it again another way) and rejects when it
 * could not be made to work (whatever the check found wrong has then been removed).
 */
export function pendingCheckOf (mapping: PortMapping): Promise<PortMapping> | undefined {
  return pendingChecks.get(mapping)
}

/** Renew at half the granted lifetime, as RFC 6886 §3.3 and RFC 6887 §11.2.1 ask. */
export function renewAtMs (mapping: PortMapping): number {
  if (mapping.lifetimeSeconds === 0) return Infinity
  return mapping.grantedAtMs + mapping.lifetimeSeconds * 500
}
