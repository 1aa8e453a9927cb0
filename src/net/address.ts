import { isIPv4, isIPv6 } from 'node:net'
import { UsageError } from '../errors.js'

/**
 * IP address text <-> bytes. PCP (RFC 6887 §5) carries every address in a 128-bit field, IPv4
 * as an IPv4-mapped IPv6 address (::ffff:a.b.c.d), so these helpers convert both families to
 * and from 16 bytes. Pure functions: no DNS, no sockets.
 */

export function ipv4ToBytes (address: string): Uint8Array {
  if (!isIpv4Literal(address)) throw new UsageError(`not an IPv4 address: ${JSON.stringify(address)}`)
  return Uint8Array.from(address.split('.').map(Number))
}

export function bytesToIpv4 (bytes: Uint8Array, offset = 0): string {
  return `${bytes[offset]}.${bytes[offset + 1]}.${bytes[offset + 2]}.${bytes[offset + 3]}`
}

/** 16 bytes for an IPv6 address, or the IPv4-mapped form for an IPv4 address. */
export function ipToBytes16 (address: string): Uint8Array {
  const out = new Uint8Array(16)
  if (isIpv4Literal(address)) {
    out[10] = 0xff
    out[11] = 0xff
    out.set(ipv4ToBytes(address), 12)
    return out
  }
  if (!isIPv6(address)) throw new UsageError(`not an IP address: ${JSON.stringify(address)}`)
  const zone = address.indexOf('%')
  let text = zone === -1 ? address : address.slice(0, zone)
  // A trailing dotted quad (::ffff:1.2.3.4) becomes two hex groups.
  const lastColon = text.lastIndexOf(':')
  const tail = text.slice(lastColon + 1)
  if (tail.includes('.')) {
    const v4 = ipv4ToBytes(tail)
    text = `${text.slice(0, lastColon + 1)}${((v4[0]! << 8) | v4[1]!).toString(16)}:${((v4[2]! << 8) | v4[3]!).toString(16)}`
  }
  const [head, rest] = text.split('::') as [string, string | undefined]
  const headGroups = head === '' ? [] : head.split(':')
  const restGroups = rest === undefined || rest === '' ? [] : rest.split(':')
  const groups = rest === undefined
    ? headGroups
    : [...headGroups, ...new Array<string>(8 - headGroups.length - restGroups.length).fill('0'), ...restGroups]
  groups.forEach((group, i) => {
    const value = parseInt(group, 16)
    out[i * 2] = value >> 8
    out[i * 2 + 1] = value & 0xff
  })
  return out
}

export function isIpv4Mapped (bytes: Uint8Array, offset = 0): boolean {
  for (let i = 0; i < 10; i++) if (bytes[offset + i] !== 0) return false
  return bytes[offset + 10] === 0xff && bytes[offset + 11] === 0xff
}

/**
 * Text for 16 address bytes: dotted IPv4 when IPv4-mapped, otherwise RFC 5952 IPv6 text
 * (lower case, longest run of two or more zero groups compressed).
 */
export function bytes16ToIp (bytes: Uint8Array, offset = 0): string {
  if (isIpv4Mapped(bytes, offset)) return bytesToIpv4(bytes, offset + 12)
  const groups: number[] = []
  for (let i = 0; i < 8; i++) groups.push((bytes[offset + i * 2]! << 8) | bytes[offset + i * 2 + 1]!)
  let bestStart = -1
  let bestLength = 1
  for (let i = 0; i < 8;) {
    if (groups[i] !== 0) { i++; continue }
    let j = i
    while (j < 8 && groups[j] === 0) j++
    if (j - i > bestLength) { bestStart = i; bestLength = j - i }
    i = j
  }
  const hex = groups.map((g) => g.toString(16))
  if (bestStart === -1) return hex.join(':')
  return `${hex.slice(0, bestStart).join(':')}::${hex.slice(bestStart + bestLength).join(':')}`
}

/** True for a dotted-quad IPv4 literal (four decimal octets of at most 255, no leading zeros). */
export function isIpv4Literal (address: string): boolean {
  return isIPv4(address)
}

/** True for an IPv6 literal. Tested after IPv4: node's isIPv6 compiles a large regular expression on first use. */
export function isIpv6Literal (address: string): boolean {
  return !isIpv4Literal(address) && address.includes(':') && isIPv6(address)
}

/** 4, 6 or 0, as node:net's isIP, IPv4 first (see isIpv6Literal). */
export function ipFamily (address: string): 0 | 4 | 6 {
  if (isIpv4Literal(address)) return 4
  return address.includes(':') && isIPv6(address) ? 6 : 0
}

/** The all-zeros address of the same family, which PCP asks for when an address is unknown. */
export function unspecifiedFor (address: string): string {
  return isIpv4Literal(address) ? '0.0.0.0' : '::'
}
