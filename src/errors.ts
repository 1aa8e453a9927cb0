import type { MappingMethod, PortMapping, ProbeResult, TransportProtocol } from './gateway.js'

/**
 * Every error natmapper throws is a NatmapperError with a stable `code`, so callers branch on
 * `err.code` (or `instanceof`) instead of parsing messages. The subclass says whose fault it
 * was: the caller (UsageError), the gateway (MalformedPacketError, GatewayRefusedError), or
 * the network (TimeoutError, NoResponseError).
 */
export class NatmapperError extends Error {
  readonly code: string

  constructor (code: string, message: string, options?: ErrorOptions) {
    super(message, options)
    this.code = code
    this.name = new.target.name
  }
}

/** The caller passed something invalid (a bad port, an unknown protocol name). */
export class UsageError extends NatmapperError {
  constructor (message: string, options?: ErrorOptions, code = 'NATMAPPER_USAGE') {
    super(code, message, options)
  }
}

/** Why the network the caller chose (`interface`, `localAddress`) cannot be used. */
export type InterfaceErrorReason =
  | 'unknown-interface' // no interface of that name
  | 'no-ipv4' // the interface has no IPv4 address (down, or IPv6 only)
  | 'not-ipv4' // localAddress is not IPv4 text
  | 'address-not-local' // no interface of this host has that address
  | 'mismatch' // interface and localAddress name different interfaces

/** The interface or local address the caller chose does not exist here or cannot be used; nothing was sent. */
export class InterfaceError extends UsageError {
  readonly reason: InterfaceErrorReason

  constructor (reason: InterfaceErrorReason, message: string) {
    super(message, undefined, 'NATMAPPER_BAD_INTERFACE')
    this.reason = reason
  }
}

/** A codec was given bytes it cannot decode. `offset` is where decoding stopped. */
export class MalformedPacketError extends NatmapperError {
  readonly offset: number
  readonly reason: string

  constructor (reason: string, offset: number) {
    super('NATMAPPER_MALFORMED_PACKET', `malformed packet at byte ${offset}: ${reason}`)
    this.offset = offset
    this.reason = reason
  }
}

export type GatewayProtocolName = 'natpmp' | 'pcp' | 'upnp'

/**
 * The gateway understood the request and said no. `resultCode`/`resultName` are the
 * protocol's own (PCP NOT_AUTHORIZED = 2, UPnP 718 ConflictInMappingEntry, ...).
 * `lifetimeSeconds` is how long the gateway says the refusal holds, where the protocol
 * carries it (PCP short-lifetime errors such as NO_RESOURCES).
 */
export class GatewayRefusedError extends NatmapperError {
  readonly protocol: GatewayProtocolName
  readonly resultCode: number
  readonly resultName: string
  readonly lifetimeSeconds: number | undefined

  constructor (protocol: GatewayProtocolName, resultCode: number, resultName: string, detail?: string, lifetimeSeconds?: number) {
    super('NATMAPPER_GATEWAY_REFUSED',
      `${protocol} gateway refused the request: ${resultName} (${resultCode})${detail === undefined ? '' : `: ${detail}`}`)
    this.protocol = protocol
    this.resultCode = resultCode
    this.resultName = resultName
    this.lifetimeSeconds = lifetimeSeconds
  }
}

/** The gateway answered with something well-formed that makes no sense for the request. */
export class RemoteProtocolError extends NatmapperError {
  constructor (message: string, options?: ErrorOptions) {
    super('NATMAPPER_REMOTE_PROTOCOL', message, options)
  }
}

/** Nobody answered before the deadline. */
export class TimeoutError extends NatmapperError {
  constructor (message: string, options?: ErrorOptions) {
    super('NATMAPPER_TIMEOUT', message, options)
  }
}

/**
 * The gateway host said nothing listens there (ICMP port unreachable, seen as ECONNREFUSED on a
 * connected UDP socket, or a refused TCP connection). RFC 6886 §3.1 lets a client conclude at
 * once that the service is absent instead of waiting out its retransmissions.
 */
export class NoResponseError extends NatmapperError {
  constructor (message: string, options?: ErrorOptions) {
    super('NATMAPPER_NO_SERVICE', message, options)
  }
}

/** The object was closed; no new work is accepted. */
export class ClosedError extends NatmapperError {
  constructor (what: string) {
    super('NATMAPPER_CLOSED', `${what} is closed`)
  }
}

/** The caller's AbortSignal fired. Named AbortError like the platform's, so generic code recognises it. */
export class AbortError extends NatmapperError {
  constructor (reason?: unknown) {
    super('ABORT_ERR', 'the operation was aborted', reason === undefined ? undefined : { cause: reason })
    this.name = 'AbortError'
  }
}

/**
 * No default route to find the gateway by (no network, a host without an IPv4 default route, an
 * interface without one). `hint` says why and what to do when the route table shows a known trap
 * (a VPN that took the default route: src/net/network-hints.ts).
 */
export class NoDefaultGatewayError extends NatmapperError {
  readonly hint: string | undefined

  constructor (detail: string, hint?: string) {
    super('NATMAPPER_NO_ROUTE', `no default gateway found: ${detail}; pass the gateway address explicitly${hint === undefined ? '' : `. ${hint}`}`)
    this.hint = hint
  }
}

/**
 * Discovery found no port-mapping protocol at the gateway. `causes` keeps each protocol's own
 * reason (refused, silent, garbage, refused URL...), `probes` what each probe did and how long it
 * took, `hint` why no router answers when the host's network shows it (a Docker bridge, a VPN
 * default route: src/net/network-hints.ts).
 */
export class NoGatewayError extends NatmapperError {
  readonly gateway: string
  readonly probes: readonly ProbeResult[]
  readonly causes: Readonly<Partial<Record<MappingMethod, Error>>>
  /** Nothing answered before the deadline (as opposed to answers that ruled every protocol out). */
  readonly timedOut: boolean
  readonly hint: string | undefined

  constructor (gateway: string, probes: readonly ProbeResult[], timedOut: boolean, timeoutMs: number, hint?: string) {
    const causes = probes.map((r) => `${r.method}: ${r.error?.message ?? 'no answer'}`).join('; ')
    super('NATMAPPER_NO_GATEWAY', (timedOut
      ? `no gateway answered at ${gateway} within ${timeoutMs} ms${causes === '' ? '' : ` (${causes})`}`
      : `no port-mapping protocol answered at ${gateway}: ${causes}`) + (hint === undefined ? '' : `. ${hint}`))
    this.hint = hint
    this.gateway = gateway
    this.probes = probes
    this.causes = Object.fromEntries(probes.flatMap((r) => r.error === undefined ? [] : [[r.method, r.error]]))
    this.timedOut = timedOut
  }
}

/**
 * A map() or renew() that failed without an answer (no reply in time, a reset connection, an
 * abort after sending) may have been applied by the gateway all the same. `mapping` is what was
 * asked for, so that the manager can delete it when it gives up on the port: a permanent UPnP
 * lease otherwise stays on the router for good (MikroTik routers filled up with such leftovers:
 * tailscale#10602, quirk 11), and a PCP lease for its lifetime. `cause` is the failure itself.
 */
export class UncertainMappingError extends NatmapperError {
  readonly mapping: PortMapping

  constructor (mapping: PortMapping, cause: Error) {
    super('NATMAPPER_UNCERTAIN_MAPPING', `${cause.message} (the gateway may have made external port ${mapping.externalPort} all the same)`, { cause })
    this.mapping = mapping
  }

  /** The failure itself. */
  get reason (): Error { return this.cause as Error }
}

/** A mapping is gone because the gateway lost its state (it rebooted); `message` says what showed it. */
export class GatewayResetError extends NatmapperError {
  constructor (message: string) {
    super('NATMAPPER_GATEWAY_RESET', message)
  }
}

/** A discovery probe that was not sent: a better protocol answered, or its refusal rules this one out too. */
export class NotAskedError extends NatmapperError {
  constructor (message: string, options?: ErrorOptions) {
    super('NATMAPPER_NOT_ASKED', message, options)
  }
}

// UPnP. Here, not in src/upnp/, so that every error and its code is in one file; natmapper/upnp re-exports them.

export type UnsafeUrlReason =
  | 'not-a-url' | 'not-http' | 'credentials' | 'not-ip-literal' | 'bad-port' | 'foreign-host' | 'link-local'

/** A description or control URL the guard refused (upnp/guard.ts); nothing was sent to it. */
export class UnsafeUrlError extends NatmapperError {
  readonly url: string
  readonly reason: UnsafeUrlReason

  constructor (url: string, reason: UnsafeUrlReason, detail: string) {
    super('NATMAPPER_UPNP_URL_REFUSED', `refusing UPnP URL ${JSON.stringify(url.length > 200 ? `${url.slice(0, 200)}...` : url)}: ${detail}`)
    this.url = url
    this.reason = reason
  }
}

/** The connection was reset or closed before a whole reply arrived. */
export class ConnectionResetError extends NatmapperError {
  constructor (message: string, options?: ErrorOptions) {
    super('NATMAPPER_CONNECTION_RESET', message, options)
  }
}

/** Why an external address is unusable: absent, empty, not IPv4 text, or in a range no WAN address can be in. */
export type NoExternalAddressReason =
  | 'missing' | 'empty' | 'not-ipv4' | 'unspecified' | 'loopback' | 'link-local' | 'multicast' | 'reserved'

/** The gateway answered GetExternalIPAddress with no usable address. */
export class NoExternalAddressError extends NatmapperError {
  readonly reason: NoExternalAddressReason
  /** What the router sent, trimmed. */
  readonly text: string

  constructor (reason: NoExternalAddressReason, text: string) {
    super('NATMAPPER_NO_EXTERNAL_ADDRESS', `the UPnP gateway has no public external address (GetExternalIPAddress gave ${JSON.stringify(text.slice(0, 60))}: ${reason}): ` +
      'its WAN link is down, or another NAT is upstream (double NAT, CGNAT)')
    this.reason = reason
    this.text = text
  }
}

/** A GetSpecificPortMappingEntry answer (decoded in upnp/actions.ts); here because EntryNotOursError carries one. */
export interface PortMappingEntry {
  readonly internalPort: number
  readonly internalClient: string
  /** Undefined when the router sent something that is not a UPnP boolean. */
  readonly enabled: boolean | undefined
  readonly description: string
  /** Remaining (v2) or granted lease; 0 = permanent; undefined when unreadable. */
  readonly leaseDurationSeconds: number | undefined
}

/**
 * The router holds an entry at this external port that is not ours (upnp/ownership.ts):
 * natmapper neither overwrites nor deletes it. `entry` is undefined when the router's answer
 * could not be read.
 */
export class EntryNotOursError extends NatmapperError {
  readonly protocol: TransportProtocol
  readonly externalPort: number
  readonly entry: PortMappingEntry | undefined

  constructor (what: 'delete' | 'map', protocol: TransportProtocol, externalPort: number, entry: PortMappingEntry | undefined, why: string) {
    super('NATMAPPER_UPNP_NOT_OURS', what === 'delete'
      ? `not deleting UPnP ${protocol.toUpperCase()} external port ${externalPort}: the router's entry there is not natmapper's: ${why}`
      : `not mapping over UPnP ${protocol.toUpperCase()} external port ${externalPort}: the router's entry there is not natmapper's: ${why}`)
    this.protocol = protocol
    this.externalPort = externalPort
    this.entry = entry
  }
}

/**
 * The router's IPv6 firewall is off (WANIPv6FirewallControl 702 FirewallDisabled, or
 * GetFirewallStatus FirewallEnabled 0): every inbound connection already passes, or the router
 * filters without letting a control point open anything. Nothing to retry; the router's setting.
 */
export class FirewallDisabledError extends GatewayRefusedError {
  constructor (detail: string) {
    super('upnp', 702, 'FirewallDisabled', detail)
    ;(this as { code: string }).code = 'NATMAPPER_FIREWALL_DISABLED'
  }
}

/**
 * The router does not let control points open inbound pinholes (WANIPv6FirewallControl 703
 * InboundPinholeNotAllowed, or GetFirewallStatus InboundPinholeAllowed 0). The router's setting:
 * asking again changes nothing until its owner allows it.
 */
export class InboundPinholeNotAllowedError extends GatewayRefusedError {
  constructor (detail: string) {
    super('upnp', 703, 'InboundPinholeNotAllowed', detail)
    ;(this as { code: string }).code = 'NATMAPPER_PINHOLE_NOT_ALLOWED'
  }
}

/** Throws an AbortError if the signal has fired. */
export function throwIfAborted (signal: AbortSignal | undefined): void {
  if (signal?.aborted === true) throw new AbortError(signal.reason)
}

/**
 * Nothing to open an IPv6 port with: the NAT was given no IPv6 gateway (NatOptions.ipv6), the host
 * has no IPv6 default route, or no global unicast address toward it (a pinhole for a link-local
 * or ULA address is not reachable from the internet). `reason` says which.
 */
export class NoIpv6Error extends NatmapperError {
  readonly reason: 'no-gateway' | 'no-route' | 'no-global-address'

  constructor (reason: NoIpv6Error['reason'], detail: string) {
    super('NATMAPPER_NO_IPV6', `cannot open a port on IPv6: ${detail}`)
    this.reason = reason
  }
}
