/**
 * The protocol-neutral view of a NAT gateway. The PCP, NAT-PMP and UPnP clients each implement
 * `Gateway`, so the mapping manager and the CLI never need protocol-specific code.
 */

export type TransportProtocol = 'tcp' | 'udp'
/** 'upnp-pinhole': an IPv6 pinhole over WANIPv6FirewallControl:1 (src/upnp/pinhole-gateway.ts). */
export type MappingMethod = 'pcp' | 'natpmp' | 'upnp' | 'upnp-pinhole'
/** The IP version of a mapping: 4 (NAT mapping) or 6 (firewall pinhole on the host's own address). */
export type AddressFamily = 4 | 6

export interface CallOptions {
  signal?: AbortSignal | undefined
  /** Upper bound for the whole call, retransmissions included. */
  timeoutMs?: number | undefined
}

export interface MapRequest {
  protocol: TransportProtocol
  internalPort: number
  /** The external port to ask for; the gateway may grant another. Defaults to the internal port. */
  suggestedExternalPort?: number | undefined
  /** Requested lease; the gateway may shorten it. 0 asks UPnP for a permanent lease. */
  lifetimeSeconds: number
  /** Shown in the router's table where the protocol carries it (UPnP). */
  description?: string | undefined
}

/** One granted mapping, immutable: a renewal returns a new one. Times are on the client's clock (ms). */
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
  /** What a renewal or release needs (the PCP nonce, the UPnP lease asked); each client checks its own. */
  readonly session: unknown
}

export interface MapResult {
  /** What the gateway granted. */
  mapping: PortMapping
  /**
   * A follow-up check already running, where the client makes one (UPnP reads a new mapping
   * back: some routers lie about it). Resolves with the mapping as the gateway really holds it
   * (`mapping` itself, or one the client had to make again another way); rejects when it could
   * not be made to work, after removing whatever was wrong.
   */
  check?: Promise<PortMapping> | undefined
}

/** The gateway lost its mappings (it rebooted), or changed its address: seen in an epoch, or announced. */
export interface GatewayReset {
  /** For logs: what showed it. */
  reason: string
  /** What showed it: an epoch in a reply, or something the gateway multicast. */
  source: 'epoch' | 'announcement'
  /** The mappings are gone (a restart), rather than only worth refreshing (a new external address). */
  lost: boolean
  /** RFC 6886 §3.7 and RFC 6887 §14.1.3: wait a random moment before re-mapping, so a rebooted gateway is not flooded. */
  spread: boolean
  /** The external address the announcement carried (NAT-PMP), if any. */
  externalAddress?: string | undefined
}

export interface Gateway {
  readonly method: MappingMethod
  /** The gateway's address as the client talks to it. */
  readonly address: string
  /** The host's address requests are sent from, where the client was given one (an IPv6 pinhole's). */
  readonly localAddress?: string | undefined
  /** The gateway's external (WAN-side) address. */
  externalAddress(options?: CallOptions): Promise<string>
  map(request: MapRequest, options?: CallOptions): Promise<MapResult>
  /** Refreshes a mapping, asking for the same external port. */
  renew(mapping: PortMapping, options?: CallOptions): Promise<PortMapping>
  /** Deletes the mapping on the gateway. */
  unmap(mapping: PortMapping, options?: CallOptions): Promise<void>
  /** Calls `listener` at each reset the client sees; returns the function that unsubscribes. */
  onReset(listener: (reset: GatewayReset) => void): () => void
  /** What this gateway can do beyond the calls above. */
  describe(): GatewayAbilities
  /** Releases sockets and listeners; does not delete mappings. Idempotent. */
  close(): void
  /**
   * The same router, for another of the host's addresses (an IPv6 pinhole is for one address,
   * and a privacy address is replaced: see nat/ipv6-follow.ts). A new client: close it apart.
   */
  forAddress?(localAddress: string): Gateway
}

/** A gateway's optional abilities. */
export interface GatewayAbilities {
  /** For people: what the gateway is ("MiniUPnPd, IGD v2, WANIPConnection:2"). */
  detail?: string | undefined
  /** The gateway's whole table, whoever made each entry, where the protocol can list it (UPnP). */
  list?: ((options?: CallOptions) => Promise<ListedTable>) | undefined
  /**
   * Whether the gateway still holds a mapping as made, asked without re-making it (UPnP).
   * Some routers drop entries long before their lease ends (ASUS purges its table every 600 s:
   * quirk 26), so the manager asks every `intervalMs` and makes a missing one again.
   */
  verify?: { intervalMs: number, check: (mapping: PortMapping, options?: CallOptions) => Promise<boolean> } | undefined
  /**
   * Starts listening for what the gateway multicasts when it restarts (PCP ANNOUNCE, NAT-PMP
   * address packets, SSDP alive and byebye); what it hears comes as resets. Resolves to where it
   * listens, or to undefined, with a log line, when it cannot: recovery then relies on renewals.
   */
  listen?: ((options?: ListenOptions) => Promise<{ address: string, port: number } | undefined>) | undefined
  /**
   * Deletes mappings on contiguous external ports of one protocol in one request where the
   * protocol can (UPnP IGD v2 DeletePortMappingRange), once each is seen to be ours. Resolves
   * true when they are gone, false (nothing deleted) when they must be deleted one by one.
   */
  unmapRange?: ((mappings: readonly PortMapping[], options?: CallOptions) => Promise<boolean>) | undefined
  /** What the client counted of its requests so far, per protocol (see counters.ts). */
  counters?: (() => Partial<Record<MappingMethod, ProtocolCounters>>) | undefined
}

/** One protocol's requests to a gateway, counted: what tells a router that misbehaves from one that works. */
export interface ProtocolCounters {
  /** Requests sent (first transmissions). */
  requests: number
  retransmissions: number
  /** Requests the gateway answered, whatever the answer. */
  answers: number
  /** Requests that got no answer in time. */
  timeouts: number
  /** Answers that refused, by result: "NOT_AUTHORIZED (2)", "ConflictInMappingEntry (718)". */
  refusals: Record<string, number>
}

/** Where a gateway's listener binds; defaults are the real groups and ports. */
export interface ListenOptions {
  /** PCP and NAT-PMP announcements: default 0.0.0.0:5350 joined to 224.0.0.1; undefined group joins none; false: none. */
  portControl?: { port?: number, bindAddress?: string, multicastGroup?: string | undefined } | false | undefined
  /** SSDP NOTIFY: default 239.255.255.250:1900 (none for a gateway on loopback); a unicast group binds that address; false: none. */
  ssdp?: { group?: string, port?: number } | false | undefined
}

/** A gateway's table as listed: what could be read, and where the router's answer could not be. */
export interface ListedTable {
  entries: ListedMapping[]
  /** Indexes whose entry the router answered with something unreadable (a description cut mid-entity). */
  unreadable: Array<{ index: number, reason: string }>
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

/** What one protocol's probe of a gateway found, for reports (natmapper discover, doctor). */
export interface ProbeResult {
  method: MappingMethod
  ok: boolean
  durationMs: number
  /** The external address, where the probe learnt it. */
  externalAddress?: string
  notPublicReason?: string
  /** What else the probe learnt, for people (e.g. the UPnP device's name and IGD version). */
  detail?: string
  error?: Error
}

/** Renew at half the granted lifetime, as RFC 6886 §3.3 and RFC 6887 §11.2.1 ask. */
export function renewAtMs (mapping: PortMapping): number {
  if (mapping.lifetimeSeconds === 0) return Infinity
  return mapping.grantedAtMs + mapping.lifetimeSeconds * 500
}

/**
 * When to renew, with `random` in [0, 1): a random moment between 1/2 and 5/8 of the granted
 * lifetime, so that many mappings made together are not renewed in one burst; at most one
 * renewal per half lifetime, so the steady state stays at <= 1 request per mapping-hour for the
 * 2 h lease asked.
 */
// RFC 6887 §11.2.1: renew "at a time chosen with uniform random distribution in the range 1/2 to 5/8 of expiration time".
export function renewalAtMs (mapping: PortMapping, random: number): number {
  if (mapping.lifetimeSeconds === 0) return Infinity
  const fraction = 0.5 + Math.min(Math.max(random, 0), 1) / 8
  return mapping.grantedAtMs + Math.floor(mapping.lifetimeSeconds * 1000 * fraction)
}

/** map() and, where the client checks its work, the mapping as checked: for callers that keep no mapping alive. */
export async function mapChecked (gateway: Gateway, request: MapRequest, options?: CallOptions): Promise<PortMapping> {
  const { mapping, check } = await gateway.map(request, options)
  return check === undefined ? mapping : await check
}
