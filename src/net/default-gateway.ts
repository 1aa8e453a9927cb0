import { requireBuiltin } from '../builtin.js'
import { NoDefaultGatewayError } from '../errors.js'
import { bestDefaultRoute, parseBsdRouteGetRoutes, parseProcNetRoutes, parseWindowsRoutes, type Ipv4Route } from './routes.js'

/**
 * Finds the default gateway: the next hop of the IPv4 default route. NAT-PMP and PCP servers
 * live there (RFC 6886 §3, RFC 6887 §8.1), and UPnP descriptions must point there. Linux reads
 * /proc/net/route; macOS and the BSDs ask `route -n get default`; Windows asks `route print`.
 * The parsers are pure (routes.ts) so each platform's format is tested on any machine.
 */

export interface DefaultRoute {
  gateway: string
  /** The interface the route leaves by, where the platform says. */
  interface?: string
}

function asDefaultRoute (route: Ipv4Route | undefined): DefaultRoute | undefined {
  if (route?.gateway === undefined) return undefined
  return route.interface === undefined ? { gateway: route.gateway } : { gateway: route.gateway, interface: route.interface }
}

/** Linux /proc/net/route: among default routes with the gateway flag, the lowest metric wins. */
export function parseProcNetRoute (text: string): DefaultRoute | undefined {
  return asDefaultRoute(bestDefaultRoute(parseProcNetRoutes(text)))
}

/** `route -n get default` on macOS/BSD: a "gateway: a.b.c.d" line, and "interface: en0". */
export function parseBsdRouteGet (text: string): DefaultRoute | undefined {
  return asDefaultRoute(parseBsdRouteGetRoutes(text)[0])
}

/** `route print -4 0.0.0.0` on Windows: rows "0.0.0.0  0.0.0.0  gateway  interface  metric". */
export function parseWindowsRoutePrint (text: string): DefaultRoute | undefined {
  return asDefaultRoute(bestDefaultRoute(parseWindowsRoutes(text)))
}

/**
 * This host's IPv4 routes: Linux's whole main table; on Windows the default routes of every
 * interface; on macOS and the BSDs only the one default route the kernel would use.
 */
export async function readRouteTable (platform: NodeJS.Platform = process.platform): Promise<Ipv4Route[]> {
  if (platform === 'linux' || platform === 'android') {
    // Synchronously: a tiny procfs file, read before the first datagram can leave.
    return parseProcNetRoutes(readProcNetRoute())
  }
  if (platform === 'win32') return parseWindowsRoutes(await run('route', ['print', '-4', '0.0.0.0']))
  return parseBsdRouteGetRoutes(await run('route', ['-n', 'get', 'default']))
}

export async function findDefaultGateway (platform: NodeJS.Platform = process.platform): Promise<DefaultRoute> {
  const route = asDefaultRoute(bestDefaultRoute(await readRouteTable(platform)))
  if (route === undefined) throw new NoDefaultGatewayError(`no IPv4 default route on ${platform}`)
  return route
}

export async function run (command: string, args: string[]): Promise<string> {
  // Only macOS, the BSDs and Windows need a child process: load it there only.
  const { execFile } = await import('node:child_process')
  return await new Promise((resolve) => {
    execFile(command, args, { timeout: 2000, windowsHide: true }, (err, stdout) => { resolve(err === null ? stdout : '') })
  })
}

function readProcNetRoute (): string {
  try {
    return requireBuiltin<typeof import('node:fs')>('node:fs').readFileSync('/proc/net/route', 'latin1')
  } catch {
    return ''
  }
}
