import { networkInterfaces, type NetworkInterfaceInfo } from 'node:os'
import { bytes16ToIp, ipToBytes16, isIpv6Literal } from './address.js'
import { linesOf, readProcFile, type DefaultRoute6 } from './default-gateway6.js'

/**
 * Which of the host's own IPv6 addresses a pinhole may open. Only global unicast addresses
 * (2000::/3, RFC 4291 §2.4) of the interface the default route leaves by: a link-local address
 * is unreachable from beyond the link, and a ULA (fc00::/7, RFC 4193) from beyond the site, so
 * a pinhole for either opens nothing to the internet. Temporary (privacy, RFC 8981) addresses
 * are usable but are replaced every day or so, and a deprecated address is on its way out:
 * both are flagged where the OS says so (Linux /proc/net/if_inet6), and listed after the
 * stable ones. Pure: the caller passes os.networkInterfaces() and the file's text.
 */

/** What Linux says of one address (the low byte of ifa_flags, include/uapi/linux/if_addr.h). */
export interface Ipv6AddressFlags {
  readonly interface: string
  readonly prefixLength: number
  /** IFA_F_TEMPORARY 0x01: a privacy address (RFC 8981). */
  readonly temporary: boolean
  /** IFA_F_DEPRECATED 0x20: its preferred lifetime is over; no new connections should use it. */
  readonly deprecated: boolean
  /** IFA_F_TENTATIVE 0x40 or IFA_F_DADFAILED 0x08: not (yet) the host's to use. */
  readonly unusable: boolean
}

export const MAX_IF_INET6_CHARS = 128 * 1024

export const IFA_F_TEMPORARY = 0x01
export const IFA_F_DADFAILED = 0x08
export const IFA_F_DEPRECATED = 0x20
export const IFA_F_TENTATIVE = 0x40

/**
 * Linux /proc/net/if_inet6: address (32 hex digits), interface index, prefix length, scope,
 * flags (2 hex digits each), device name. Keyed by RFC 5952 text; malformed lines are skipped.
 */
export function parseProcNetIfInet6 (text: string): Map<string, Ipv6AddressFlags> {
  const out = new Map<string, Ipv6AddressFlags>()
  // A host has a handful of addresses; past this many bytes (about 2,500 lines) the rest is not read.
  for (const line of linesOf(text.slice(0, MAX_IF_INET6_CHARS), 32 + 4 * 3 + 2)) {
    const cols = line.trim().split(/\s+/)
    if (cols.length < 6) continue
    const [hex, , lengthHex, , flagsHex, device] = cols as [string, string, string, string, string, string]
    if (!/^[0-9a-f]{32}$/i.test(hex) || !/^[0-9a-f]{2}$/i.test(lengthHex) || !/^[0-9a-f]{2,8}$/i.test(flagsHex)) continue
    const prefixLength = parseInt(lengthHex, 16)
    if (prefixLength > 128) continue
    const bytes = new Uint8Array(16)
    for (let i = 0; i < 16; i++) bytes[i] = parseInt(hex.slice(i * 2, i * 2 + 2), 16)
    const flags = parseInt(flagsHex, 16)
    out.set(bytes16ToIp(bytes), {
      interface: device,
      prefixLength,
      temporary: (flags & IFA_F_TEMPORARY) !== 0,
      deprecated: (flags & IFA_F_DEPRECATED) !== 0,
      unusable: (flags & (IFA_F_TENTATIVE | IFA_F_DADFAILED)) !== 0
    })
  }
  return out
}

export interface HostIpv6Address {
  /** RFC 5952 text, no zone. */
  readonly address: string
  readonly interface: string
  readonly prefixLength: number
  /** True or false where the OS tells (Linux), undefined where it does not. */
  readonly temporary: boolean | undefined
  readonly deprecated: boolean | undefined
}

/** Global unicast: 2000::/3. Excludes ::, ::1, link-local fe80::/10, ULA fc00::/7, multicast ff00::/8. */
export function isGlobalUnicast6 (address: string): boolean {
  if (!isIpv6Literal(address)) return false
  return (ipToBytes16(address)[0]! & 0xe0) === 0x20
}

/**
 * The addresses a pinhole toward `route` may open: global unicast addresses of the route's
 * interface (all interfaces when the route names none, or names a Windows index that
 * os.networkInterfaces() does not: then the scope ids are matched), minus those the OS calls
 * tentative or failed. Stable addresses first, then temporary ones, deprecated ones last.
 */
export function chooseIpv6Addresses (interfaces: NodeJS.Dict<NetworkInterfaceInfo[]>, route: DefaultRoute6 | undefined,
  flags: ReadonlyMap<string, Ipv6AddressFlags> = new Map()): HostIpv6Address[] {
  const wanted = route?.interface
  const names = Object.keys(interfaces)
  const byName = wanted !== undefined && names.includes(wanted)
  const out: HostIpv6Address[] = []
  for (const name of names) {
    if (byName && name !== wanted) continue
    const list = interfaces[name] ?? []
    // Windows: the route names an interface index, the scope id of the interface's link-local addresses.
    if (!byName && wanted !== undefined && /^\d+$/.test(wanted) && !list.some((i) => isV6(i) && i.scopeid === Number(wanted))) continue
    for (const info of list) {
      if (!isV6(info) || info.internal || !isGlobalUnicast6(info.address)) continue
      const address = bytes16ToIp(ipToBytes16(info.address))
      const known = flags.get(address)
      if (known?.unusable === true) continue
      out.push({
        address,
        interface: name,
        prefixLength: cidrLength(info.cidr) ?? known?.prefixLength ?? 64,
        temporary: known?.temporary,
        deprecated: known?.deprecated
      })
    }
  }
  const rank = (a: HostIpv6Address): number => (a.deprecated === true ? 2 : 0) + (a.temporary === true ? 1 : 0)
  return out.map((a, i) => ({ a, i })).sort((x, y) => rank(x.a) - rank(y.a) || x.i - y.i).map(({ a }) => a)
}

/** The reader: this host's choice toward `route`, with Linux's flags where there are any. */
export function hostIpv6Addresses (route: DefaultRoute6 | undefined, platform: NodeJS.Platform = process.platform): HostIpv6Address[] {
  const flags = platform === 'linux' || platform === 'android' ? parseProcNetIfInet6(readProcFile('/proc/net/if_inet6')) : undefined
  return chooseIpv6Addresses(networkInterfaces(), route, flags)
}

function isV6 (info: NetworkInterfaceInfo): boolean {
  // Node 18.0-18.3 reported the family as the number 6.
  return info.family === 'IPv6' || (info.family as unknown) === 6
}

function cidrLength (cidr: string | null): number | undefined {
  const length = cidr === null ? undefined : Number(cidr.slice(cidr.lastIndexOf('/') + 1))
  return length !== undefined && Number.isInteger(length) && length >= 0 && length <= 128 ? length : undefined
}

/**
 * The address the pinholes should be on now, given the one they are on and the host's current
 * choice (chooseIpv6Addresses, preferred first): the same while the host still has it, global
 * and not deprecated (moving costs requests and breaks the peers that know it); else the first
 * of `current` (undefined when there is none: the host has lost IPv6, the pinholes stay put).
 */
export function followIpv6Address (old: string, current: readonly HostIpv6Address[]): string | undefined {
  const canonical = isIpv6Literal(old) ? bytes16ToIp(ipToBytes16(old)) : old
  const still = current.find((a) => a.address === canonical)
  if (still !== undefined && still.deprecated !== true && isGlobalUnicast6(still.address)) return still.address
  // A deprecated one is kept only while nothing better is there (it still works for its valid lifetime).
  const best = current.find((a) => a.deprecated !== true) ?? still ?? current[0]
  return best?.address
}
