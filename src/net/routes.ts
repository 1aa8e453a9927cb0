import { ipv4Text, maskPrefixLength } from './ipv4.js'

/**
 * The IPv4 route table, as each platform prints it, read into one shape. Pure parsers: the
 * caller reads the text (default-gateway.ts), so every format is tested on any machine.
 */

export interface Ipv4Route {
  /** The network, e.g. 0.0.0.0 for a default route. */
  destination: string
  prefixLength: number
  /** The next hop; undefined for a route straight onto a link (a LAN, or a VPN's `default dev wg0`). */
  gateway: string | undefined
  /**
   * The interface the route leaves by: its name on Linux and macOS, its local IPv4 address on
   * Windows (`route print` names interfaces by address).
   */
  interface: string | undefined
  metric: number
}

/**
 * Linux /proc/net/route (the main table; policy-routing tables are not in it): whitespace-separated,
 * addresses and masks as 8 hex digits in host (little-endian) byte order. Routes that are not up
 * are left out.
 */
export function parseProcNetRoutes (text: string): Ipv4Route[] {
  const RTF_UP = 0x1
  const RTF_GATEWAY = 0x2
  const routes: Ipv4Route[] = []
  for (const line of text.split('\n').slice(1)) {
    const cols = line.trim().split(/\s+/)
    if (cols.length < 8) continue
    const [iface, destinationHex, gatewayHex, flagsHex, , , metricText, maskHex] = cols as [string, string, string, string, string, string, string, string]
    if (![destinationHex, gatewayHex, maskHex].every((hex) => /^[0-9a-f]{8}$/i.test(hex)) || !/^[0-9a-f]+$/i.test(flagsHex)) continue
    const flags = parseInt(flagsHex, 16)
    if ((flags & RTF_UP) === 0) continue
    const prefixLength = maskPrefixLength(hostOrderText(maskHex))
    if (prefixLength === undefined) continue
    routes.push({
      destination: hostOrderText(destinationHex),
      prefixLength,
      gateway: (flags & RTF_GATEWAY) === 0 ? undefined : hostOrderText(gatewayHex),
      interface: iface,
      metric: Number(metricText)
    })
  }
  return routes
}

/** 8 hex digits in little-endian byte order as dotted-quad text. */
function hostOrderText (hex: string): string {
  const value = parseInt(hex, 16)
  return ipv4Text((((value & 0xff) << 24) | (((value >>> 8) & 0xff) << 16) | (((value >>> 16) & 0xff) << 8) | (value >>> 24)) >>> 0)
}

/**
 * `route -n get default` on macOS/BSD: the one default route the kernel would use, as a
 * "gateway: a.b.c.d" line and "interface: en0". Other interfaces' default routes (macOS keeps
 * one per interface, scoped) are not in it.
 */
export function parseBsdRouteGetRoutes (text: string): Ipv4Route[] {
  const gateway = /^\s*gateway:\s*(\d+\.\d+\.\d+\.\d+)\s*$/m.exec(text)?.[1]
  const iface = /^\s*interface:\s*(\S+)\s*$/m.exec(text)?.[1]
  if (gateway === undefined) return []
  return [{ destination: '0.0.0.0', prefixLength: 0, gateway, interface: iface, metric: 0 }]
}

/**
 * `route print -4` on Windows: rows "destination netmask gateway interface metric", the
 * interface named by its address; "On-link" gateways have no next hop.
 */
export function parseWindowsRoutes (text: string): Ipv4Route[] {
  const routes: Ipv4Route[] = []
  const ipv4 = /^\d+\.\d+\.\d+\.\d+$/
  for (const line of text.split(/\r?\n/)) {
    const cols = line.trim().split(/\s+/)
    if (cols.length < 5) continue
    const [destination, mask, gateway, iface, metricText] = cols as [string, string, string, string, string]
    if (!ipv4.test(destination) || !ipv4.test(mask) || !ipv4.test(iface) || !/^\d+$/.test(metricText)) continue
    if (gateway !== 'On-link' && !ipv4.test(gateway)) continue
    const prefixLength = maskPrefixLength(mask)
    if (prefixLength === undefined) continue
    routes.push({ destination, prefixLength, gateway: gateway === 'On-link' ? undefined : gateway, interface: iface, metric: Number(metricText) })
  }
  return routes
}

export function isDefaultRoute (route: Ipv4Route): boolean {
  return route.prefixLength === 0
}

/**
 * The default route with a next hop and the lowest metric, among those leaving by one of
 * `via` (names, or addresses on Windows) when given.
 */
export function bestDefaultRoute (routes: readonly Ipv4Route[], via?: readonly string[]): Ipv4Route | undefined {
  let best: Ipv4Route | undefined
  for (const route of routes) {
    if (!isDefaultRoute(route) || route.gateway === undefined) continue
    if (via !== undefined && (route.interface === undefined || !via.includes(route.interface))) continue
    if (best === undefined || route.metric < best.metric) best = route
  }
  return best
}
