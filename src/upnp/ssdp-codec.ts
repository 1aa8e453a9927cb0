import { MalformedPacketError } from '../errors.js'

/**
 * SSDP messages (UDA 1.1 §1): HTTP-shaped text in single UDP datagrams. Pure functions: bytes
 * in, typed values out (the writers are in ssdp-encode.ts); the socket, the timers and the
 * choice of where to send live in the discovery client.
 *
 *   M-SEARCH * HTTP/1.1            HTTP/1.1 200 OK                NOTIFY * HTTP/1.1
 *   HOST: 239.255.255.250:1900     CACHE-CONTROL: max-age=1800    HOST: 239.255.255.250:1900
 *   MAN: "ssdp:discover"           EXT:                           NT: <type>
 *   MX: 1                          LOCATION: http://gw/desc.xml   NTS: ssdp:alive
 *   ST: <search target>            ST: <search target>            USN: uuid:...::<type>
 *                                  USN: uuid:...::<type>          LOCATION, BOOTID.UPNP.ORG, ...
 *
 * The parser is lenient where real routers are sloppy (header-name case, LF-only line ends, a
 * missing final blank line, whitespace around values, an unreadable optional header) and strict
 * where a message would be useless or dangerous (no LOCATION, a non-http LOCATION, control bytes,
 * oversized datagrams). Everything it refuses is a MalformedPacketError with a byte offset.
 */

/** No SSDP datagram needs more; miniupnpd's replies are under 400 bytes. */
export const MAX_SSDP_MESSAGE_BYTES = 8192

/** BOOTID/CONFIGID/NEXTBOOTID are "non-negative 31-bit integers" (UDA 1.1 §1.2.2). */
export const MAX_31_BIT = 0x7fffffff

/** The NTS values of UDA 1.1 §1.2. */
export type NotificationSubType = 'ssdp:alive' | 'ssdp:byebye' | 'ssdp:update'

/** The unicast answer to an M-SEARCH (UDA 1.1 §1.3.3). */
export interface SsdpSearchResponse {
  readonly kind: 'search-response'
  /** Absolute http(s) URL of the root device description. */
  readonly location: string
  /**
   * UDA 1.1 requires ST (and USN) in a search response; undefined when a device leaves it out,
   * because LOCATION alone is enough to go on and tailscale reads nothing else either.
   */
  readonly st: string | undefined
  readonly usn: string | undefined
  readonly server: string | undefined
  /** From `CACHE-CONTROL: max-age=N`; undefined when absent or unreadable. */
  readonly cacheMaxAgeSeconds: number | undefined
  readonly bootId: number | undefined
  readonly configId: number | undefined
  readonly searchPort: number | undefined
  /** Every header, names in lower case, first occurrence kept: for logs and bug reports. */
  readonly headers: ReadonlyMap<string, string>
}

/** A multicast advertisement (UDA 1.1 §1.2). */
export interface SsdpNotify {
  readonly kind: 'notify'
  readonly nts: NotificationSubType
  readonly nt: string
  readonly usn: string | undefined
  /** Required for ssdp:alive and ssdp:update; a byebye usually has none. */
  readonly location: string | undefined
  readonly server: string | undefined
  readonly cacheMaxAgeSeconds: number | undefined
  readonly bootId: number | undefined
  readonly nextBootId: number | undefined
  readonly configId: number | undefined
  readonly searchPort: number | undefined
  readonly headers: ReadonlyMap<string, string>
}

/**
 * Another control point's search (or ours, looped back). A client listening on the multicast
 * group sees these and should ignore them; the simulated IGD answers them.
 */
export interface SsdpSearchRequest {
  readonly kind: 'm-search'
  readonly st: string
  /** Seconds; undefined when absent or unreadable (a multicast search without MX "MUST" be ignored). */
  readonly mx: number | undefined
  /** The raw MAN value; UDA requires `"ssdp:discover"` with the quotes. */
  readonly man: string | undefined
  readonly host: string | undefined
  readonly headers: ReadonlyMap<string, string>
}

/** What parseSsdpMessage returns; switch on `kind`. */
export type SsdpMessage = SsdpSearchResponse | SsdpNotify | SsdpSearchRequest

const decoder = new TextDecoder()

/** An absolute http(s) URL with a host: what LOCATION must be. */
export function isHttpUrl (text: string): boolean {
  let url: URL
  try {
    url = new URL(text)
  } catch {
    return false
  }
  return (url.protocol === 'http:' || url.protocol === 'https:') && url.hostname !== ''
}

interface Line { text: string, offset: number }

/**
 * Decodes one SSDP datagram: a search response, a NOTIFY or an M-SEARCH. Anything else (another
 * method, a non-200 status, a missing required header, a LOCATION that is not an absolute http
 * URL, control bytes, more than MAX_SSDP_MESSAGE_BYTES) throws MalformedPacketError.
 */
export function parseSsdpMessage (bytes: Uint8Array): SsdpMessage {
  if (bytes.length === 0) throw new MalformedPacketError('empty datagram', 0)
  if (bytes.length > MAX_SSDP_MESSAGE_BYTES) {
    throw new MalformedPacketError(`datagram of ${bytes.length} bytes is larger than the ${MAX_SSDP_MESSAGE_BYTES} allowed`, MAX_SSDP_MESSAGE_BYTES)
  }
  const lines = splitLines(bytes)
  // RFC 9112 §2.2: a recipient SHOULD ignore at least one empty line before the start line.
  let index = 0
  while (index < lines.length && lines[index]!.text.trim() === '') index++
  const start = lines[index]
  if (start === undefined) throw new MalformedPacketError('no start line', bytes.length)
  const tokens = start.text.trim().split(/[ \t]+/)
  const first = tokens[0]!.toUpperCase()
  if (first.startsWith('HTTP/')) {
    checkVersion(first, start.offset)
    if (tokens[1] !== '200') throw new MalformedPacketError(`status ${JSON.stringify((tokens[1] ?? '').slice(0, 20))} is not 200`, start.offset)
    return searchResponse(parseHeaders(lines, index + 1), bytes.length)
  }
  if (tokens.length !== 3 || tokens[1] !== '*') throw new MalformedPacketError(`not an SSDP start line: ${JSON.stringify(start.text.slice(0, 40))}`, start.offset)
  checkVersion(tokens[2]!.toUpperCase(), start.offset)
  if (first === 'NOTIFY') return notify(parseHeaders(lines, index + 1), bytes.length)
  if (first === 'M-SEARCH') return searchRequest(parseHeaders(lines, index + 1), bytes.length)
  throw new MalformedPacketError(`unknown SSDP method ${JSON.stringify(tokens[0]!.slice(0, 20))}`, start.offset)
}

function checkVersion (version: string, offset: number): void {
  if (version !== 'HTTP/1.1' && version !== 'HTTP/1.0') throw new MalformedPacketError(`unsupported protocol version ${JSON.stringify(version.slice(0, 20))}`, offset)
}

/** Lines end in LF or CRLF. Control bytes other than TAB are refused, a lone CR included. */
function splitLines (bytes: Uint8Array): Line[] {
  const lines: Line[] = []
  let start = 0
  while (start < bytes.length) {
    let end = bytes.indexOf(0x0a, start)
    const next = end === -1 ? bytes.length : end + 1
    if (end === -1) end = bytes.length
    const contentEnd = end > start && bytes[end - 1] === 0x0d ? end - 1 : end
    for (let i = start; i < contentEnd; i++) {
      const b = bytes[i]!
      if ((b < 0x20 && b !== 0x09) || b === 0x7f) throw new MalformedPacketError(`control byte 0x${b.toString(16).padStart(2, '0')}`, i)
    }
    lines.push({ text: decoder.decode(bytes.subarray(start, contentEnd)), offset: start })
    start = next
  }
  return lines
}

function parseHeaders (lines: Line[], from: number): Map<string, string> {
  const headers = new Map<string, string>()
  // The header a continuation line extends; null while skipping a repeated header.
  let previous: string | null | undefined
  for (let i = from; i < lines.length; i++) {
    const line = lines[i]!
    if (line.text === '') break // end of the header section; an SSDP body, if any, is ignored
    if (line.text[0] === ' ' || line.text[0] === '\t') {
      // obs-fold (RFC 9112 §5.2): a continuation of the previous header's value.
      if (previous === undefined) throw new MalformedPacketError('continuation line without a header', line.offset)
      const value = line.text.trim()
      if (previous !== null && value !== '') headers.set(previous, `${headers.get(previous)!} ${value}`.trim())
      continue
    }
    const colon = line.text.indexOf(':')
    if (colon === -1) throw new MalformedPacketError(`header line without a colon: ${JSON.stringify(line.text.slice(0, 40))}`, line.offset)
    const name = line.text.slice(0, colon).trim().toLowerCase()
    if (!isToken(name)) throw new MalformedPacketError(`bad header name ${JSON.stringify(name.slice(0, 40))}`, line.offset)
    if (headers.has(name)) {
      previous = null
      continue
    }
    headers.set(name, line.text.slice(colon + 1).trim())
    previous = name
  }
  return headers
}

/** RFC 9110 §5.6.2 token characters. */
function isToken (name: string): boolean {
  if (name === '') return false
  for (let i = 0; i < name.length; i++) {
    const c = name.charCodeAt(i)
    const ok = (c >= 0x30 && c <= 0x39) || (c >= 0x61 && c <= 0x7a) || (c >= 0x41 && c <= 0x5a) ||
      '!#$%&\'*+-.^_`|~'.includes(name[i]!)
    if (!ok) return false
  }
  return true
}

function required (headers: Map<string, string>, name: string, end: number): string {
  const value = headers.get(name)
  if (value === undefined || value === '') throw new MalformedPacketError(`missing ${name.toUpperCase()} header`, end)
  return value
}

function location (headers: Map<string, string>, needed: boolean, end: number): string | undefined {
  const value = headers.get('location')
  if (value === undefined || value === '') {
    if (needed) throw new MalformedPacketError('missing LOCATION header', end)
    return undefined
  }
  if (!isHttpUrl(value)) throw new MalformedPacketError(`LOCATION is not an absolute http URL: ${JSON.stringify(value.slice(0, 80))}`, end)
  return value
}

function searchResponse (headers: Map<string, string>, end: number): SsdpSearchResponse {
  return {
    kind: 'search-response',
    location: location(headers, true, end)!,
    st: optional(headers, 'st'),
    usn: optional(headers, 'usn'),
    server: optional(headers, 'server'),
    cacheMaxAgeSeconds: maxAge(headers.get('cache-control')),
    bootId: uint31(headers.get('bootid.upnp.org')),
    configId: uint31(headers.get('configid.upnp.org')),
    searchPort: port(headers.get('searchport.upnp.org')),
    headers
  }
}

function notify (headers: Map<string, string>, end: number): SsdpNotify {
  const nts = required(headers, 'nts', end)
  if (nts !== 'ssdp:alive' && nts !== 'ssdp:byebye' && nts !== 'ssdp:update') {
    throw new MalformedPacketError(`unknown NTS ${JSON.stringify(nts.slice(0, 40))}`, end)
  }
  return {
    kind: 'notify',
    nts,
    nt: required(headers, 'nt', end),
    usn: optional(headers, 'usn'),
    location: location(headers, nts !== 'ssdp:byebye', end),
    server: optional(headers, 'server'),
    cacheMaxAgeSeconds: maxAge(headers.get('cache-control')),
    bootId: uint31(headers.get('bootid.upnp.org')),
    nextBootId: uint31(headers.get('nextbootid.upnp.org')),
    configId: uint31(headers.get('configid.upnp.org')),
    searchPort: port(headers.get('searchport.upnp.org')),
    headers
  }
}

function searchRequest (headers: Map<string, string>, end: number): SsdpSearchRequest {
  return {
    kind: 'm-search',
    st: required(headers, 'st', end),
    mx: uint31(headers.get('mx')),
    man: optional(headers, 'man'),
    host: optional(headers, 'host'),
    headers
  }
}

function optional (headers: Map<string, string>, name: string): string | undefined {
  const value = headers.get(name)
  return value === undefined || value === '' ? undefined : value
}

/** Decimal digits only, leading zeros ignored (UDA 1.1 §1.2.2), at most 2^31-1. */
function uint31 (text: string | undefined): number | undefined {
  if (text === undefined || text === '' || text.length > 12) return undefined
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i)
    if (c < 0x30 || c > 0x39) return undefined
  }
  const value = Number(text)
  return value <= MAX_31_BIT ? value : undefined
}

function port (text: string | undefined): number | undefined {
  const value = uint31(text)
  return value !== undefined && value >= 1 && value <= 65535 ? value : undefined
}

/** `max-age=1800`, also `max-age = 1800` and among other directives (`no-cache="Ext", max-age=1800`). */
function maxAge (text: string | undefined): number | undefined {
  if (text === undefined) return undefined
  for (const directive of text.split(',')) {
    const equals = directive.indexOf('=')
    if (equals === -1) continue
    if (directive.slice(0, equals).trim().toLowerCase() !== 'max-age') continue
    return uint31(directive.slice(equals + 1).trim().replace(/^"(.*)"$/, '$1'))
  }
  return undefined
}
