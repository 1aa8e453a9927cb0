import { UsageError } from '../errors.js'
import { SSDP_HOST } from './codes.js'
import { isHttpUrl, MAX_31_BIT, MAX_SSDP_MESSAGE_BYTES } from './ssdp-codec.js'

/**
 * The SSDP messages natmapper writes (shapes and limits: ssdp-codec.ts): an M-SEARCH, and for
 * simulated gateways a search response and NOTIFY. Pure: values in, bytes out; UsageError for a
 * value no header can carry.
 */

const encoder = new TextEncoder()

/** Input of encodeMSearch. */
export interface MSearchOptions {
  /** `ssdp:all`, `upnp:rootdevice`, or a device or service type. */
  searchTarget: string
  /**
   * Seconds a device may wait before answering a multicast search. Default 1: miniupnpd built
   * with --strict waits a random 0..MX s, so MX 1 bounds discovery to about a second.
   */
  mx?: number
  /**
   * The HOST header. Leave the default (239.255.255.250:1900) even when the packet goes unicast
   * to the gateway, as tailscale does: the header names the SSDP group, not the destination.
   */
  host?: string
  /** Optional USER-AGENT header, `OS/version UPnP/1.1 product/version`. */
  userAgent?: string
}

/** The exact bytes of an M-SEARCH request (UDA 1.1 §1.3.2), CRLF line ends and a final blank line. */
export function encodeMSearch (options: MSearchOptions): Uint8Array {
  const mx = options.mx ?? 1
  // UDA 1.1: MX "MUST be greater than or equal to 1 and SHOULD be less than 5 inclusive";
  // devices treat more than 5 as 5. Up to 120 is accepted for odd callers; more than 5 gains nothing.
  if (!Number.isInteger(mx) || mx < 1 || mx > 120) throw new UsageError(`MX must be an integer from 1 to 120 seconds, got ${mx}`)
  const lines: Array<[string, string]> = [
    ['HOST', options.host ?? SSDP_HOST],
    ['MAN', '"ssdp:discover"'],
    ['MX', String(mx)],
    ['ST', options.searchTarget]
  ]
  if (options.userAgent !== undefined) lines.push(['USER-AGENT', options.userAgent])
  return encodeMessage('M-SEARCH * HTTP/1.1', lines, ['ST'])
}

/** Input of encodeSsdpResponse. */
export interface SsdpResponseFields {
  location: string
  st: string
  usn: string
  /** `OS/version UPnP/1.1 product/version`. */
  server: string
  /** Default 1800, the UDA 1.1 minimum. */
  cacheMaxAgeSeconds?: number
  bootId?: number
  configId?: number
  searchPort?: number
}

/** A search response as a device sends it (UDA 1.1 §1.3.3); for simulated gateways. */
export function encodeSsdpResponse (fields: SsdpResponseFields): Uint8Array {
  const lines: Array<[string, string]> = [
    ['CACHE-CONTROL', `max-age=${checkUint31(fields.cacheMaxAgeSeconds ?? 1800, 'cacheMaxAgeSeconds')}`],
    ['EXT', ''],
    ['LOCATION', checkLocation(fields.location)],
    ['SERVER', fields.server],
    ['ST', fields.st],
    ['USN', fields.usn]
  ]
  pushIds(lines, fields)
  return encodeMessage('HTTP/1.1 200 OK', lines, ['ST', 'USN'])
}

/** Input of encodeNotify: the headers each NTS requires (UDA 1.1 §1.2.2 alive, §1.2.3 byebye, §1.2.4 update). */
export type NotifyFields =
  | { nts: 'ssdp:alive', nt: string, usn: string, location: string, server: string, cacheMaxAgeSeconds?: number, bootId?: number, configId?: number, searchPort?: number, host?: string }
  | { nts: 'ssdp:byebye', nt: string, usn: string, bootId?: number, configId?: number, host?: string }
  | { nts: 'ssdp:update', nt: string, usn: string, location: string, bootId: number, nextBootId: number, configId?: number, searchPort?: number, host?: string }

/** A NOTIFY advertisement (UDA 1.1 §1.2.2–§1.2.4) with the headers each sub-type carries; for simulated gateways. */
export function encodeNotify (fields: NotifyFields): Uint8Array {
  const lines: Array<[string, string]> = [['HOST', fields.host ?? SSDP_HOST]]
  if (fields.nts === 'ssdp:alive') {
    lines.push(['CACHE-CONTROL', `max-age=${checkUint31(fields.cacheMaxAgeSeconds ?? 1800, 'cacheMaxAgeSeconds')}`])
  }
  if (fields.nts !== 'ssdp:byebye') lines.push(['LOCATION', checkLocation(fields.location)])
  lines.push(['NT', fields.nt], ['NTS', fields.nts])
  if (fields.nts === 'ssdp:alive') lines.push(['SERVER', fields.server])
  lines.push(['USN', fields.usn])
  pushIds(lines, fields)
  if (fields.nts === 'ssdp:update') lines.push(['NEXTBOOTID.UPNP.ORG', String(checkUint31(fields.nextBootId, 'nextBootId'))])
  return encodeMessage('NOTIFY * HTTP/1.1', lines, ['NT', 'USN'])
}

function pushIds (lines: Array<[string, string]>, fields: { bootId?: number, configId?: number, searchPort?: number }): void {
  if (fields.bootId !== undefined) lines.push(['BOOTID.UPNP.ORG', String(checkUint31(fields.bootId, 'bootId'))])
  if (fields.configId !== undefined) lines.push(['CONFIGID.UPNP.ORG', String(checkUint31(fields.configId, 'configId'))])
  if (fields.searchPort !== undefined) {
    const port = fields.searchPort
    if (!Number.isInteger(port) || port < 1 || port > 65535) throw new UsageError(`searchPort must be a port number, got ${port}`)
    lines.push(['SEARCHPORT.UPNP.ORG', String(port)])
  }
}

function encodeMessage (startLine: string, lines: Array<[string, string]>, required: string[]): Uint8Array {
  for (const [name, value] of lines) {
    if (required.includes(name) && value.trim() === '') throw new UsageError(`SSDP header ${name} must not be empty`)
    for (let i = 0; i < value.length; i++) {
      const c = value.charCodeAt(i)
      if (c < 0x20 || c === 0x7f) throw new UsageError(`SSDP header ${name} contains a control character: ${JSON.stringify(value)}`)
    }
  }
  const text = `${startLine}\r\n${lines.map(([name, value]) => value === '' ? `${name}:\r\n` : `${name}: ${value}\r\n`).join('')}\r\n`
  const bytes = encoder.encode(text)
  if (bytes.length > MAX_SSDP_MESSAGE_BYTES) throw new UsageError(`SSDP message would be ${bytes.length} bytes, more than ${MAX_SSDP_MESSAGE_BYTES}`)
  return bytes
}

function checkUint31 (value: number, what: string): number {
  if (!Number.isInteger(value) || value < 0 || value > MAX_31_BIT) throw new UsageError(`${what} must be an integer from 0 to 2^31-1, got ${value}`)
  return value
}

function checkLocation (location: string): string {
  if (!isHttpUrl(location)) throw new UsageError(`LOCATION must be an absolute http URL, got ${JSON.stringify(location)}`)
  return location
}
