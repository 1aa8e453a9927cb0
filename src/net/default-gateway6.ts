import { requireBuiltin } from '../builtin.js'
import { NoDefaultGatewayError } from '../errors.js'
import { bytes16ToIp, isIpv6Literal } from './address.js'
import { run } from './default-gateway.js'

/**
 * Finds the IPv6 default gateway: the next hop of the ::/0 route. PCP servers live there
 * (RFC 6887 §8.1) and UPnP pinhole requests go there. On most links that next hop is the
 * router's link-local address (it is the source of its Router Advertisements, RFC 4861 §6.1.2),
 * which means nothing without the interface it was learned on, so the route carries the
 * interface and `scoped` is the address to connect to (fe80::1%eth0; Windows: fe80::1%12).
 * Linux reads /proc/net/ipv6_route; macOS and the BSDs ask `route -n get -inet6 default`;
 * Windows asks `route print -6 ::/0`. The parsers are pure, like those of default-gateway.ts.
 */

export interface DefaultRoute6 {
  /** The next hop without a zone: fe80::1, 2001:db8::1. */
  gateway: string
  /** The interface the route leaves by: a name (eth0, en0), or Windows' interface index. */
  interface?: string
  /** The gateway with its zone when it is link-local (fe80::1%eth0), the gateway otherwise. */
  scoped: string
}

/** A route for `gateway` (zone stripped) out of `iface`, with the zone a link-local address needs. */
function route6 (gateway: string, iface: string | undefined): DefaultRoute6 | undefined {
  // 45 characters of address, a % and an interface name (IFNAMSIZ 16; Windows: an index).
  if (gateway.length > 64 || (iface?.length ?? 0) > 64) return undefined
  const zoneAt = gateway.indexOf('%')
  const bare = zoneAt === -1 ? gateway : gateway.slice(0, zoneAt)
  const zone = zoneAt === -1 ? iface : gateway.slice(zoneAt + 1) || iface
  if (!isIpv6Literal(bare) || bare === '::') return undefined
  const linkLocal = /^fe[89ab]/i.test(bare)
  // A link-local next hop with no interface cannot be reached: no route.
  if (linkLocal && zone === undefined) return undefined
  const out: DefaultRoute6 = { gateway: bare.toLowerCase(), scoped: linkLocal ? `${bare.toLowerCase()}%${zone!}` : bare.toLowerCase() }
  if (iface !== undefined) out.interface = iface
  else if (zone !== undefined) out.interface = zone
  return out
}

/**
 * Linux /proc/net/ipv6_route: destination, its prefix length, source, its prefix length, next
 * hop (32 hex digits each, network byte order; lengths 2 hex digits), metric, reference count,
 * use, flags (8 hex digits each), device. The default route has destination :: and length 0,
 * flags RTF_UP | RTF_GATEWAY; the kernel's own ::/0 on lo (RTF_REJECT, no gateway) is no route.
 * Among several (two routers, or a multipath route listed hop by hop) the lowest metric wins.
 */
export function parseProcNetIpv6Route (text: string): DefaultRoute6 | undefined {
  const RTF_UP = 0x1
  const RTF_GATEWAY = 0x2
  const RTF_REJECT = 0x200
  let best: { route: DefaultRoute6, metric: number } | undefined
  for (const line of linesOf(text, 32 * 3 + 8 * 4 + 2 * 2)) {
    const cols = line.trim().split(/\s+/)
    if (cols.length < 10) continue
    const [destination, destinationLength, , , nextHop, metricHex, , , flagsHex, device] = cols as [string, string, string, string, string, string, string, string, string, string]
    if (destination !== '0'.repeat(32) || destinationLength !== '00') continue
    if (!/^[0-9a-f]{32}$/i.test(nextHop) || !/^[0-9a-f]{8}$/i.test(flagsHex) || !/^[0-9a-f]{8}$/i.test(metricHex)) continue
    const flags = parseInt(flagsHex, 16)
    if ((flags & RTF_UP) === 0 || (flags & RTF_GATEWAY) === 0 || (flags & RTF_REJECT) !== 0) continue
    const bytes = new Uint8Array(16)
    for (let i = 0; i < 16; i++) bytes[i] = parseInt(nextHop.slice(i * 2, i * 2 + 2), 16)
    const route = route6(bytes16ToIp(bytes), device)
    if (route === undefined) continue
    const metric = parseInt(metricHex, 16)
    if (best === undefined || metric < best.metric) best = { route, metric }
  }
  return best?.route
}

/**
 * `route -n get -inet6 default` on macOS and the BSDs: a "gateway: fe80::1%en0" line (the zone
 * is written by the kernel for link-local next hops), and "interface: en0".
 */
export function parseBsdRouteGet6 (text: string): DefaultRoute6 | undefined {
  // Line by line, not one multi-line expression: a line-anchored \s* backtracks quadratically over blank lines.
  let gateway: string | undefined
  let iface: string | undefined
  for (const line of linesOf(text, 'gateway: ::'.length)) {
    const [name, value, extra] = line.trim().split(/\s+/)
    if (extra !== undefined || value === undefined) continue
    if (name === 'gateway:') gateway ??= value
    else if (name === 'interface:') iface ??= value
  }
  return gateway === undefined || !/^[0-9a-fA-F:.]+(?:%[\w.-]+)?$/.test(gateway) ? undefined : route6(gateway, iface)
}

/**
 * `route print -6 ::/0` on Windows: rows "If Metric Destination Gateway" under "Active Routes:",
 * where If is the interface index, which is also the zone of a link-local gateway (fe80::1%12).
 * A row too long for the console continues on the next line, the gateway alone there.
 * Persistent routes (listed after "Persistent Routes:") are not active routes and are skipped.
 */
export function parseWindowsRoutePrint6 (text: string): DefaultRoute6 | undefined {
  let best: { route: DefaultRoute6, metric: number } | undefined
  const lines = [...linesOf(text, 'None'.length)]
  let active = false
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.trim()
    if (/^Active Routes:/i.test(line)) { active = true; continue }
    if (/^Persistent Routes:/i.test(line)) { active = false; continue }
    if (!active) continue
    let cols = line.split(/\s+/)
    if (cols.length === 3 && cols[2] === '::/0') cols = [...cols, ...(lines[i + 1]?.trim().split(/\s+/) ?? [])]
    if (cols.length < 4 || cols[2] !== '::/0' || !/^\d+$/.test(cols[0]!) || !/^\d+$/.test(cols[1]!)) continue
    const route = route6(cols[3]!, cols[0])
    if (route === undefined) continue
    const metric = Number(cols[1])
    if (best === undefined || metric < best.metric) best = { route, metric }
  }
  return best?.route
}

/**
 * The lines of `text` at least `minLength` long (shorter ones cannot be a route), without a
 * trailing CR. Skipping them before any split keeps a file of blank lines cheap.
 */
export function * linesOf (text: string, minLength: number): Generator<string> {
  let start = 0
  while (start < text.length) {
    let end = text.indexOf('\n', start)
    if (end === -1) end = text.length
    if (end - start >= minLength) yield text.charCodeAt(end - 1) === 13 ? text.slice(start, end - 1) : text.slice(start, end)
    start = end + 1
  }
}

export async function findDefaultGateway6 (platform: NodeJS.Platform = process.platform): Promise<DefaultRoute6> {
  let route: DefaultRoute6 | undefined
  if (platform === 'linux' || platform === 'android') {
    route = parseProcNetIpv6Route(readProcFile('/proc/net/ipv6_route'))
  } else if (platform === 'win32') {
    route = parseWindowsRoutePrint6(await run('route', ['print', '-6', '::/0']))
  } else {
    route = parseBsdRouteGet6(await run('route', ['-n', 'get', '-inet6', 'default']))
  }
  if (route === undefined) throw new NoDefaultGatewayError(`no IPv6 default route on ${platform}`)
  return route
}

/** A procfs file as text, '' when it cannot be read (no IPv6 in the kernel, no procfs). */
export function readProcFile (path: string): string {
  try {
    return requireBuiltin<typeof import('node:fs')>('node:fs').readFileSync(path, 'latin1')
  } catch {
    return ''
  }
}
