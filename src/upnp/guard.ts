import type { NetworkInterfaceInfo } from 'node:os'
import { UnsafeUrlError } from '../errors.js'
import { ipFamily, isIpv4Literal, isIpv6Literal } from '../net/address.js'
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
 */

export interface UrlPolicy {
  /** The gateway's address (the default route's next hop). */
  readonly gateway: string
  /** The source address of the SSDP answer that led to this URL, if any. */
  readonly responder?: string | undefined
  /** The LAN the gateway is on; without it, only the gateway itself is allowed. */
  readonly subnet?: Ipv4Subnet | undefined
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
    throw new UnsafeUrlError(url, 'not-a-url', 'not an absolute URL')
  }
  if (parsed.protocol !== 'http:') throw new UnsafeUrlError(url, 'not-http', `scheme ${parsed.protocol} is not http:`)
  if (parsed.username !== '' || parsed.password !== '') throw new UnsafeUrlError(url, 'credentials', 'it carries a user name or password')
  const host = hostOf(parsed)
  if (ipFamily(host) === 0) throw new UnsafeUrlError(url, 'not-ip-literal', `host ${JSON.stringify(host)} is not an IP address (no DNS look-ups)`)
  // WHATWG URL drops the default port, and refuses ports above 65535; port 0 still parses.
  if (parsed.port === '0') throw new UnsafeUrlError(url, 'bad-port', 'port 0')
  if (!isAllowedHost(host, policy)) {
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

function isAllowedHost (host: string, policy: UrlPolicy): boolean {
  if (sameAddress(host, policy.gateway)) return true
  return policy.responder !== undefined && sameAddress(host, policy.responder) && isLocalResponder(policy.responder, policy)
}

/**
 * Whether an SSDP answer from `address` may be believed at all: it is the gateway, or a host of
 * the gateway's subnet. Replies from any source port are fine (TP-Link ER605 and others answer
 * from an ephemeral port: tailscale#7377, #10771).
 */
export function isLocalResponder (address: string, policy: Pick<UrlPolicy, 'gateway' | 'subnet'>): boolean {
  if (sameAddress(address, policy.gateway)) return true
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

function sameAddress (a: string, b: string): boolean {
  if (a === b) return true
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
