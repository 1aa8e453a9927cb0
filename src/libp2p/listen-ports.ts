import type { TransportProtocol } from '../gateway.js'

/**
 * Which of a libp2p node's own addresses need a port mapping: pure, multiaddr strings in, ports
 * out, so that it does not depend on the version of @multiformats/multiaddr the node carries.
 */

/** One port the node listens on, on one of its addresses. */
export interface ListenPort {
  /** The IP the transport reports (an interface address for a wildcard listener). */
  host: string
  protocol: TransportProtocol
  port: number
}

/**
 * What runs over UDP and can be dialled through a port mapping: QUIC, WebTransport (over QUIC)
 * and WebRTC-direct. Plain `/udp/N` has no libp2p transport.
 */
const UDP_TRANSPORTS = new Set(['quic', 'quic-v1', 'webrtc-direct'])

/**
 * The IPv4 host, protocol and port of a multiaddr that a remote peer could dial directly
 * (TCP with or without ws/wss/tls, QUIC, WebTransport, WebRTC-direct), or undefined: relayed
 * addresses (`/p2p-circuit`), DNS, IPv6 (not mapped yet), port 0 and anything else.
 */
export function parseListenAddress (multiaddr: string): ListenPort | undefined {
  const parts = multiaddr.split('/')
  // ['', 'ip4', host, 'tcp' | 'udp', port, ...rest]
  if (parts[0] !== '' || parts[1] !== 'ip4' || parts.includes('p2p-circuit')) return undefined
  const [host, protocol, portText, next] = [parts[2], parts[3], parts[4], parts[5]]
  if (host === undefined || (protocol !== 'tcp' && protocol !== 'udp') || portText === undefined || !/^\d+$/.test(portText)) return undefined
  const port = Number(portText)
  if (port < 1 || port > 65535) return undefined
  if (protocol === 'udp' && (next === undefined || !UDP_TRANSPORTS.has(next))) return undefined
  return { host, protocol, port }
}

/**
 * The ports to map: those of the addresses on `internalAddress`, the host's address towards the
 * gateway, which is where the gateway forwards (a wildcard listener shows one address per
 * interface, this one among them). A listener bound to another interface, loopback included
 * unless the gateway itself is on loopback, would not receive what the mapping forwards.
 * One entry per protocol and port.
 */
export function portsToMap (addresses: Iterable<string>, internalAddress: string): ListenPort[] {
  const out = new Map<string, ListenPort>()
  for (const address of addresses) {
    const parsed = parseListenAddress(address)
    if (parsed === undefined || parsed.host !== internalAddress) continue
    out.set(portKey(parsed.protocol, parsed.port), parsed)
  }
  return [...out.values()]
}

export function portKey (protocol: TransportProtocol, port: number): string {
  return `${protocol}/${port}`
}
