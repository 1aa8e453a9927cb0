import { GatewayRefusedError, NoExternalAddressError } from '../errors.js'
import { ipToBytes16, isIpv4Literal } from './address.js'

/**
 * What kind of address a gateway reported as its external one. Anything but 'public' means
 * another NAT, or no internet path, sits beyond the gateway: a mapping on this gateway alone
 * does not make the port reachable from the internet (double NAT, CGNAT).
 */
export type AddressClass =
  | 'public'
  | 'private' // RFC 1918, IPv6 ULA fc00::/7
  | 'cgnat' // RFC 6598 shared address space 100.64.0.0/10
  | 'loopback'
  | 'link-local'
  | 'unspecified'
  | 'reserved' // documentation, benchmarking, multicast, class E and other special-purpose ranges

export function classifyAddress (address: string): AddressClass {
  return isIpv4Literal(address) ? classifyIpv4(address) : classifyIpv6(address)
}

function classifyIpv4 (address: string): AddressClass {
  const [a, b, c] = address.split('.').map(Number) as [number, number, number, number]
  if (a === 0) return 'unspecified'
  if (a === 127) return 'loopback'
  if (a === 10 || (a === 172 && b >= 16 && b <= 31) || (a === 192 && b === 168)) return 'private'
  if (a === 100 && b >= 64 && b <= 127) return 'cgnat'
  if (a === 169 && b === 254) return 'link-local'
  // IANA special-purpose registry (RFC 6890): 192.0.0/24, TEST-NETs 192.0.2, 198.51.100,
  // 203.0.113, benchmarking 198.18/15, multicast and class E.
  if ((a === 192 && b === 0 && (c === 0 || c === 2)) || (a === 198 && (b === 18 || b === 19)) ||
      (a === 198 && b === 51 && c === 100) || (a === 203 && b === 0 && c === 113) || a >= 224) return 'reserved'
  return 'public'
}

function classifyIpv6 (address: string): AddressClass {
  const bytes = ipToBytes16(address)
  if (bytes.every((v) => v === 0)) return 'unspecified'
  if (bytes.slice(0, 15).every((v) => v === 0) && bytes[15] === 1) return 'loopback'
  const first = bytes[0]!
  if ((first & 0xfe) === 0xfc) return 'private'
  if (first === 0xfe && (bytes[1]! & 0xc0) === 0x80) return 'link-local'
  if (first === 0x20 && bytes[1] === 0x01 && bytes[2] === 0x0d && bytes[3] === 0xb8) return 'reserved'
  if ((first & 0xe0) === 0x20) return 'public'
  return 'reserved'
}

/** A sentence for people: why a mapping on this gateway will not be reachable from the internet. */
export function notPublicReason (address: string, kind: AddressClass = classifyAddress(address)): string | undefined {
  switch (kind) {
    case 'public': return undefined
    case 'private': return `double NAT: the gateway's external address ${address} is a private address; another router sits between it and the internet`
    case 'cgnat': return `carrier-grade NAT: the gateway's external address ${address} is in 100.64.0.0/10; your provider's NAT sits between it and the internet`
    default: return `the gateway's external address ${address} is not public (${kind})`
  }
}

/**
 * What an error says when it is the sign of another NAT beyond the gateway: no usable external
 * address (UPnP GetExternalIPAddress empty or unusable), or NETWORK_FAILURE (PCP 7, NAT-PMP 3),
 * which miniupnpd answers when its WAN address is private or reserved (LAB.md). Undefined for
 * any other error.
 */
export function notPublicReasonOf (error: unknown): string | undefined {
  if (error instanceof NoExternalAddressError) return error.message
  if (!(error instanceof GatewayRefusedError) || error.protocol === 'upnp') return undefined
  if (error.protocol === 'pcp' ? error.resultCode !== 7 : error.resultCode !== 3) return undefined
  return `the gateway has no public external address (${error.protocol === 'pcp' ? 'PCP' : 'NAT-PMP'} NETWORK_FAILURE): there is probably another NAT beyond it (double NAT or carrier-grade NAT)`
}
