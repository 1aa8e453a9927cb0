import type { NetworkInterfaceInfo } from 'node:os'
import { isIpv4Literal } from './address.js'

/** IPv4 arithmetic on dotted-quad text: numbers, subnets, prefix lengths. Pure functions. */

/** An IPv4 network: `address` is any address inside it. */
export interface Ipv4Subnet {
  readonly address: string
  readonly prefixLength: number
}

/** Dotted-quad IPv4 text as an unsigned 32-bit number, or undefined. */
export function ipv4Number (text: string): number | undefined {
  if (!isIpv4Literal(text)) return undefined
  return text.split('.').reduce((n, octet) => n * 256 + Number(octet), 0)
}

/** An unsigned 32-bit number as dotted-quad text. */
export function ipv4Text (value: number): string {
  return [value >>> 24, (value >>> 16) & 0xff, (value >>> 8) & 0xff, value & 0xff].join('.')
}

export function inIpv4Subnet (address: string, subnet: Ipv4Subnet): boolean {
  const a = ipv4Number(address)
  const b = ipv4Number(subnet.address)
  const bits = subnet.prefixLength
  if (a === undefined || b === undefined || !Number.isInteger(bits) || bits < 0 || bits > 32) return false
  if (bits === 0) return true
  const shift = 32 - bits
  return Math.floor(a / 2 ** shift) === Math.floor(b / 2 ** shift)
}

/** The prefix length of a netmask such as 255.255.255.0, or undefined when it is not one (bits not contiguous). */
export function maskPrefixLength (mask: string): number | undefined {
  const value = ipv4Number(mask)
  if (value === undefined) return undefined
  let bits = 0
  for (let m = value; m >= 2 ** 31; m = (m - 2 ** 31) * 2) bits++
  return ipv4Number(ipv4Text(bits === 0 ? 0 : (0xffffffff << (32 - bits)) >>> 0)) === value ? bits : undefined
}

/** The prefix length of an interface address, from its CIDR text or else its netmask. */
export function prefixLengthOf (info: Pick<NetworkInterfaceInfo, 'cidr' | 'netmask'>): number | undefined {
  const fromCidr = info.cidr === null ? undefined : Number(info.cidr.slice(info.cidr.indexOf('/') + 1))
  if (fromCidr !== undefined && Number.isInteger(fromCidr)) return fromCidr
  return maskPrefixLength(info.netmask)
}
