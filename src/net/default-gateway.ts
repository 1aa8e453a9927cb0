import { requireBuiltin } from '../builtin.js'
import { NoDefaultGatewayError } from '../errors.js'

/**
 * Finds the default gateway: the next hop of the IPv4 default route. NAT-PMP and PCP servers
 * live there (RFC 6886 §3, RFC 6887 §8.1), and UPnP descriptions must point there. Linux reads
 * /proc/net/route; macOS and the BSDs ask `route -n get default`; Windows asks `route print`.
 * The parsers are pure so each platform's format is tested on any machine.
 */

export interface DefaultRoute {
  gateway: string
  /** The interface the route leaves by, where the platform says. */
  interface?: string
}

/**
 * Linux /proc/net/route: whitespace-separated, addresses as 8 hex digits in host (little
 * endian) byte order. Among default routes with the gateway flag, the lowest metric wins.
 */
export function parseProcNetRoute (text: string): DefaultRoute | undefined {
  const RTF_UP = 0x1
  const RTF_GATEWAY = 0x2
  let best: { route: DefaultRoute, metric: number } | undefined
  for (const line of text.split('\n').slice(1)) {
    const cols = line.trim().split(/\s+/)
    if (cols.length < 8) continue
    const [iface, destination, gatewayHex, flagsHex, , , metricText, mask] = cols as [string, string, string, string, string, string, string, string]
    const flags = parseInt(flagsHex, 16)
    if (destination !== '00000000' || mask !== '00000000') continue
    if ((flags & RTF_UP) === 0 || (flags & RTF_GATEWAY) === 0 || !/^[0-9a-f]{8}$/i.test(gatewayHex)) continue
    const value = parseInt(gatewayHex, 16)
    const gateway = [value & 0xff, (value >>> 8) & 0xff, (value >>> 16) & 0xff, value >>> 24].join('.')
    const metric = Number(metricText)
    if (best === undefined || metric < best.metric) best = { route: { gateway, interface: iface }, metric }
  }
  return best?.route
}

/** `route -n get default` on macOS/BSD: a "gateway: a.b.c.d" line, and "interface: en0". */
export function parseBsdRouteGet (text: string): DefaultRoute | undefined {
  const gateway = /^\s*gateway:\s*(\d+\.\d+\.\d+\.\d+)\s*$/m.exec(text)?.[1]
  if (gateway === undefined) return undefined
  const iface = /^\s*interface:\s*(\S+)\s*$/m.exec(text)?.[1]
  return iface === undefined ? { gateway } : { gateway, interface: iface }
}

/** `route print -4 0.0.0.0` on Windows: rows "0.0.0.0  0.0.0.0  gateway  interface  metric". */
export function parseWindowsRoutePrint (text: string): DefaultRoute | undefined {
  let best: { route: DefaultRoute, metric: number } | undefined
  for (const line of text.split(/\r?\n/)) {
    const cols = line.trim().split(/\s+/)
    if (cols.length < 5 || cols[0] !== '0.0.0.0' || cols[1] !== '0.0.0.0') continue
    const [, , gateway, iface, metricText] = cols as [string, string, string, string, string]
    if (!/^\d+\.\d+\.\d+\.\d+$/.test(gateway)) continue
    const metric = Number(metricText)
    if (best === undefined || metric < best.metric) best = { route: { gateway, interface: iface }, metric }
  }
  return best?.route
}

export async function findDefaultGateway (platform: NodeJS.Platform = process.platform): Promise<DefaultRoute> {
  let route: DefaultRoute | undefined
  if (platform === 'linux' || platform === 'android') {
    // Synchronously: a tiny procfs file, read before the first datagram can leave.
    route = parseProcNetRoute(readProcNetRoute())
  } else if (platform === 'win32') {
    route = parseWindowsRoutePrint(await run('route', ['print', '-4', '0.0.0.0']))
  } else {
    route = parseBsdRouteGet(await run('route', ['-n', 'get', 'default']))
  }
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
