import type { NetworkInterfaceInfo } from 'node:os'
import { UnsafeUrlError } from '../errors.js'
import { ipFamily, ipToBytes16, isIpv4Literal, isIpv6Literal } from '../net/address.js'
import { inIpv4Subnet, ipv4Number, prefixLengthOf, type Ipv4Subnet } from '../net/ipv4.js'

export type { Ipv4Subnet } from '../net/ipv4.js'
/** Re-exported under their earlier names (src/net/ipv4.ts holds them). */
export { ipv4Number as parseIpv4, inIpv4Subnet as inSubnet }

/**
 * Where a UPnP client may connect. SSDP is unauthenticated UDP: anyone on the LAN (or a spoofer)
 * can answer an M-SEARCH with a LOCATION of their choosing, and a description can name control
 * URLs anywhere. Followed blindly, that turns the client into a request forger against hosts
 * the attacker cannot reach (an internal web admin page, a cloud metadata address). So every
 * description and control URL must name, by IP literal, the gateway itself, or the host that
 * answered SSDP when that host is on the gateway's subnet (an OPNsense/pfSense CARP pair answers
 * from its static address rather than the gateway VIP: tailscale#5502). Anything else is refused
 * before any connection. Pure functions: the caller passes the interface list.
 *
 * IPv6: the gateway is often its link-local next hop (fe80::1%eth0) while its LOCATION names its
 * LAN address (http://[2001:db8:1::1]:5000/), so a URL may name the gateway or any address of the
 * gateway's on-link prefixes (`prefixes6`): the description must come from the gateway's link. A
 * link-local URL host is refused with its own reason: it needs a zone, which a URL cannot carry.
 */

/** An IPv6 prefix on the gateway's link (an address of the local interface and its prefix length). */
export interface Ipv6Prefix {
  readonly address: string
  readonly prefixLength: number
}

export interface UrlPolicy {
  /** The gateway's address (the default route's next hop). */
  readonly gateway: string
  /** The source address of the SSDP answer that led to this URL, if any. */
  readonly responder?: string | undefined
  /** The LAN the gateway is on; without it, only the gateway itself is allowed. */
  readonly subnet?: Ipv4Subnet | undefined
  /** The IPv6 prefixes on the gateway's link (localPrefixes6For); without them, only the gateway itself. */
  readonly prefixes6?: readonly Ipv6Prefix[] | undefined
}

/**
 * The URL, parsed, when it may be connected to under `policy`; UnsafeUrlError otherwise. Only
 * `http:` (IGDs do not speak TLS, and https would hide nothing from this check anyway), no
 * user:password, an IP literal host (no DNS: a name could resolve anywhere), a real port.
 */
export function checkUpnpUrl (url: string, policy: UrlPolicy): URL {
  let parsed: URL
  try {
    parsed = new URL(url)
  } catch {
    if (/^http:\/\/\[[^\]]*%/i.test(url)) throw new UnsafeUrlError(url, 'link-local', LINK_LOCAL_WHY)
    throw new UnsafeUrlError(url, 'not-a-url', 'not an absolute URL')
  }
  if (parsed.protocol !== 'http:') throw new UnsafeUrlError(url, 'not-http', `scheme ${parsed.protocol} is not http:`)
  if (parsed.username !== '' || parsed.password !== '') throw new UnsafeUrlError(url, 'credentials', 'it carries a user name or password')
  const host = hostOf(parsed)
  if (ipFamily(host) === 0) throw new UnsafeUrlError(url, 'not-ip-literal', `host ${JSON.stringify(host)} is not an IP address (no DNS look-ups)`)
  // WHATWG URL drops the default port, and refuses ports above 65535; port 0 still parses.
  if (parsed.port === '0') throw new UnsafeUrlError(url, 'bad-port', 'port 0')
  if (isLinkLocal6(host)) throw new UnsafeUrlError(url, 'link-local', LINK_LOCAL_WHY)
  if (!isAllowedHost(host, policy)) {
    if (isIpv6Literal(host)) {
      const prefixes = (policy.prefixes6 ?? []).map((p) => `${p.address}/${p.prefixLength}`)
      throw new UnsafeUrlError(url, 'foreign-host', `host ${host} is not the gateway ${policy.gateway}${prefixes.length === 0 ? '' : ` nor on its link (${prefixes.join(', ')})`}`)
    }
    const allowed = policy.responder !== undefined && policy.responder !== policy.gateway && isLocalResponder(policy.responder, policy)
      ? `the gateway ${policy.gateway} or the SSDP responder ${policy.responder}`
      : `the gateway ${policy.gateway}`
    throw new UnsafeUrlError(url, 'foreign-host', `host ${host} is not ${allowed}`)
  }
  return parsed
}

/** The host of a parsed URL without IPv6 brackets. */
export function hostOf (url: URL): string {
  const host = url.hostname
  return host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host
}

const LINK_LOCAL_WHY = 'a link-local address (fe80::/10) needs its interface (a zone such as %eth0), which a URL cannot carry: natmapper cannot reach a UPnP router that announces only a link-local LOCATION (give the router a global or ULA address on the LAN)'

/** fe80::/10, with or without a zone. */
export function isLinkLocal6 (address: string): boolean {
  if (!isIpv6Literal(address)) return false
  const b = ipToBytes16(address)
  return b[0] === 0xfe && (b[1]! & 0xc0) === 0x80
}

/** Whether `address` is in `prefix` (IPv6, zones ignored). */
export function inIpv6Prefix (address: string, prefix: Ipv6Prefix): boolean {
  if (!isIpv6Literal(address) || !isIpv6Literal(prefix.address)) return false
  const a = ipToBytes16(address)
  const p = ipToBytes16(prefix.address)
  for (let bit = 0; bit < prefix.prefixLength; bit++) {
    const mask = 0x80 >> (bit % 8)
    if ((a[bit >> 3]! & mask) !== (p[bit >> 3]! & mask)) return false
  }
  return true
}

function isAllowedHost (host: string, policy: UrlPolicy): boolean {
  if (sameAddress(host, policy.gateway)) return true
  if (isIpv6Literal(host)) return (policy.prefixes6 ?? []).some((p) => inIpv6Prefix(host, p))
  return policy.responder !== undefined && sameAddress(host, policy.responder) && isLocalResponder(policy.responder, policy)
}

/**
 * Whether an SSDP answer from `address` may be believed at all: it is the gateway, or a host of
 * the gateway's subnet. Replies from any source port are fine (TP-Link ER605 and others answer
 * from an ephemeral port: tailscale#7377, #10771).
 */
export function isLocalResponder (address: string, policy: Pick<UrlPolicy, 'gateway' | 'subnet' | 'prefixes6'>): boolean {
  if (sameAddress(address, policy.gateway)) return true
  if (isIpv6Literal(address)) {
    // A link-local source cannot have been routed: it is on the link it arrived on (the gateway's, when the zones agree).
    if (isLinkLocal6(address)) return policy.prefixes6 !== undefined && zoneOf(address) === zoneOf(policy.gateway)
    return (policy.prefixes6 ?? []).some((p) => inIpv6Prefix(address, p))
  }
  return policy.subnet !== undefined && inIpv4Subnet(address, policy.subnet)
}

/**
 * `url` with its host replaced by `host`, port and path kept. For a LOCATION that names an
 * unusable address (a HONOR router announces a 169.254.x address: home-assistant#63745) while
 * the answer came from the gateway: tailscale re-points such a URL at the gateway (tailscale#5502).
 */
export function repointUrl (url: string, host: string): string {
  const parsed = new URL(url)
  parsed.hostname = isIpv6Literal(host) ? `[${host}]` : host
  return parsed.href
}

const zoneOf = (address: string): string | undefined => address.includes('%') ? address.slice(address.indexOf('%') + 1) : undefined

function sameAddress (a: string, b: string): boolean {
  if (a === b) return true
  if (isIpv6Literal(a) && isIpv6Literal(b)) {
    // Zones apart: a URL never has one, the gateway's next hop may (fe80::1%eth0).
    const x = ipToBytes16(a)
    const y = ipToBytes16(b)
    return x.every((v, i) => v === y[i]) && (zoneOf(a) === undefined || zoneOf(b) === undefined || zoneOf(a) === zoneOf(b))
  }
  const x = ipv4Number(a)
  return x !== undefined && x === ipv4Number(b)
}

/**
 * The subnet of the local interface through which `gateway` is reached directly: the one whose
 * network contains it (the longest prefix wins). Undefined for an IPv6 gateway or one outside
 * every local network (a point-to-point link), where only the gateway itself can be trusted.
 * Pass `os.networkInterfaces()`.
 */
export function localSubnetFor (gateway: string, interfaces: NodeJS.Dict<NetworkInterfaceInfo[]>): Ipv4Subnet | undefined {
  if (!isIpv4Literal(gateway)) return undefined
  let best: Ipv4Subnet | undefined
  for (const infos of Object.values(interfaces)) {
    for (const info of infos ?? []) {
      if (info.family !== 'IPv4') continue
      const prefixLength = prefixLengthOf(info)
      if (prefixLength === undefined) continue
      const subnet = { address: info.address, prefixLength }
      if (inIpv4Subnet(gateway, subnet) && (best === undefined || prefixLength > best.prefixLength)) best = subnet
    }
  }
  return best
}

/**
 * The IPv6 prefixes on the gateway's link: those of the interface named by the gateway's zone
 * (fe80::1%eth0), or of the interface with an address in the same prefix as a global gateway.
 * Link-local addresses are left out (a URL cannot reach them). Pass `os.networkInterfaces()`.
 */
export function localPrefixes6For (gateway: string, interfaces: NodeJS.Dict<NetworkInterfaceInfo[]>): Ipv6Prefix[] {
  if (!isIpv6Literal(gateway)) return []
  const zone = zoneOf(gateway)
  const prefixesOf = (infos: NetworkInterfaceInfo[]): Ipv6Prefix[] => infos.flatMap((info) => {
    const prefixLength = info.family === 'IPv6' ? prefixLengthOf(info) : undefined
    return prefixLength === undefined || isLinkLocal6(info.address) ? [] : [{ address: info.address, prefixLength }]
  })
  for (const [name, infos] of Object.entries(interfaces)) {
    const prefixes = prefixesOf(infos ?? [])
    if (zone !== undefined ? name === zone : prefixes.some((p) => inIpv6Prefix(gateway, p))) return prefixes
  }
  return []
}

/**
 * Ranges no public WAN address can be in, after miniupnpc's addr_is_reserved.c (which follows
 * the IANA special-purpose registry): a gateway reporting one is behind another NAT (double NAT,
 * CGNAT 100.64/10), so its mappings do not reach the internet.
 */
const RESERVED_V4: ReadonlyArray<readonly [string, number]> = [
  ['0.0.0.0', 8], ['10.0.0.0', 8], ['100.64.0.0', 10], ['127.0.0.0', 8], ['169.254.0.0', 16],
  ['172.16.0.0', 12], ['192.0.0.0', 24], ['192.0.2.0', 24], ['192.31.196.0', 24], ['192.52.193.0', 24],
  ['192.88.99.0', 24], ['192.168.0.0', 16], ['192.175.48.0', 24], ['198.18.0.0', 15], ['198.51.100.0', 24],
  ['203.0.113.0', 24], ['224.0.0.0', 4], ['240.0.0.0', 4]
]

/** True for an IPv4 address outside every reserved range; false for reserved ones and non-IPv4 text. */
export function isPublicIpv4 (address: string): boolean {
  if (!isIpv4Literal(address)) return false
  return !RESERVED_V4.some(([network, prefixLength]) => inIpv4Subnet(address, { address: network, prefixLength }))
}
