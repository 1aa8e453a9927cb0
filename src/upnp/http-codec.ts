import { RemoteProtocolError, UsageError } from '../errors.js'

/**
 * HTTP/1.1 (RFC 9112) as the two UPnP exchanges need it: one request out on a fresh connection,
 * one response back. Pure: bytes in, values out; the socket, the timer and the error
 * classification live in http.ts.
 *
 * The request side is strict: it writes exactly the fields it is given, in order and with their
 * names' case, and refuses anything that could split the request (CR, LF, NUL). The response
 * side is lenient wherever the framing is not at stake, as node:http's lenient parser was (LF-only
 * line ends, control bytes in field values, obs-fold, empty lines before the status-line) and a
 * little more (whitespace in or before a field name, a bare CR in a value, a repeated identical
 * Content-Length, a close right after the last chunk, all of which it refused); it is strict
 * where the framing is at stake (status-line, Content-Length, chunk-size). Request smuggling,
 * the reason HTTP parsers are strict, needs a shared connection; every one of ours carries
 * exactly one request. Everything the parser refuses is a RemoteProtocolError.
 */

/** A bound on the whole header section, interim (1xx) responses included: node:http's default. */
export const MAX_HEADER_SECTION_BYTES = 16 * 1024
/** chunk-size plus any chunk-ext: miniupnpd and every router seen write a few hex digits and nothing else. */
const MAX_CHUNK_LINE_BYTES = 1024
/** Hex digits of a chunk-size that can still be a real length (8 = 4 GiB), leading zeros aside. */
const MAX_CHUNK_SIZE_DIGITS = 8
/** Decimal digits of a Content-Length that Number holds exactly, leading zeros aside. */
const MAX_CONTENT_LENGTH_DIGITS = 15

export const USER_AGENT = `Node.js/${process.versions.node} UPnP/1.1 natmapper`

const LF = 0x0a
const CR = 0x0d
const SP = 0x20
const HTAB = 0x09

// ---------------------------------------------------------------------------------------------
// Request

export interface HttpRequestHead {
  method: 'GET' | 'POST'
  /** The request-target in origin-form: absolute path and query, as URL.pathname + URL.search give it. */
  path: string
  /** The Host field value: the URL's host, port included when not 80 (URL.host). */
  host: string
  /** Default USER_AGENT. */
  userAgent?: string
  /**
   * Sent after Host, User-Agent, Connection and Content-Length with exactly these names: some
   * routers care about the case of SOAPAction (jupnp#120). A Host or User-Agent here replaces
   * the default one; Connection, Content-Length and Transfer-Encoding are refused (the framing is
   * this codec's: one request per connection, never chunked).
   */
  headers?: Readonly<Record<string, string>> | undefined
  /** A string is sent as UTF-8. */
  body?: string | Uint8Array | undefined
}

const FRAMING_FIELDS = new Set(['connection', 'content-length', 'transfer-encoding'])

/**
 * The exact bytes of one request: request-line, Host, User-Agent, `Connection: close`,
 * Content-Length when there is a body, the caller's fields, the body. Head and body in one
 * buffer, so that they go out in one write, as node:http sent them.
 */
export function encodeHttpRequest (request: HttpRequestHead): Buffer {
  if (!isToken(request.method)) throw new UsageError(`bad HTTP method ${quote(request.method)}`)
  checkTarget(request.path)
  const body = typeof request.body === 'string' ? Buffer.from(request.body, 'utf8') : request.body
  const fields: Array<[string, string]> = [['Host', request.host], ['User-Agent', request.userAgent ?? USER_AGENT], ['Connection', 'close']]
  if (body !== undefined) fields.push(['Content-Length', String(body.length)])
  const seen = new Set<string>()
  for (const [name, value] of Object.entries(request.headers ?? {})) {
    const lower = name.toLowerCase()
    if (FRAMING_FIELDS.has(lower)) throw new UsageError(`the ${name} field is the HTTP client's to write`)
    if (seen.has(lower)) throw new UsageError(`the ${name} field is given twice`)
    seen.add(lower)
    if (lower === 'host') fields[0] = [name, value]
    else if (lower === 'user-agent') fields[1] = [name, value]
    else fields.push([name, value])
  }
  let head = `${request.method} ${request.path} HTTP/1.1\r\n`
  for (const [name, value] of fields) {
    checkField(name, value)
    head += `${name}: ${value}\r\n`
  }
  head += '\r\n'
  // Latin-1, as node:http wrote field values: checkField has refused anything above U+00FF.
  const headBytes = Buffer.from(head, 'latin1')
  return body === undefined || body.length === 0 ? headBytes : Buffer.concat([headBytes, body])
}

/** origin-form (RFC 9112 §3.2.1): visible ASCII from a leading slash, nothing that ends the request-line. */
function checkTarget (path: string): void {
  if (path[0] !== '/') throw new UsageError(`the request-target must start with "/": ${quote(path)}`)
  for (let i = 0; i < path.length; i++) {
    const c = path.charCodeAt(i)
    if (c <= SP || c >= 0x7f) throw new UsageError(`the request-target contains ${describeChar(c)}: ${quote(path)}`)
  }
}

/** field-name is a token; field-value is HTAB, SP, visible ASCII and obs-text (RFC 9110 §5.5): no CR, LF or NUL. */
function checkField (name: string, value: string): void {
  if (!isToken(name)) throw new UsageError(`bad HTTP field name ${quote(name)}`)
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i)
    if ((c < SP && c !== HTAB) || c === 0x7f || c > 0xff) throw new UsageError(`the ${name} field contains ${describeChar(c)}: ${quote(value)}`)
  }
}

function describeChar (c: number): string {
  if (c === CR) return 'a CR'
  if (c === LF) return 'an LF'
  if (c === 0) return 'a NUL'
  return `the character U+${c.toString(16).toUpperCase().padStart(4, '0')}`
}

/** RFC 9110 §5.6.2 tchar. */
function isToken (text: string): boolean {
  if (text === '') return false
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i)
    const ok = (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a) || '!#$%&\'*+-.^_`|~'.includes(text[i]!)
    if (!ok) return false
  }
  return true
}

// ---------------------------------------------------------------------------------------------
// Response

export interface HttpResponseMessage {
  readonly version: 'HTTP/1.0' | 'HTTP/1.1'
  readonly status: number
  /** Latin-1 decoded, whitespace trimmed; may be empty. */
  readonly reason: string
  /** Names in lower case; a repeated field's values joined with ", "; values Latin-1 decoded, as node:http gives them. */
  readonly headers: Readonly<Record<string, string>>
  /** The payload, chunked framing removed; a copy, never a view of a pushed chunk. */
  readonly body: Uint8Array
}

/** What the parser is missing when the connection closes on it. */
export type MissingPart = 'status-line' | 'field-section' | 'body'

export type HttpParseProgress =
  | { readonly kind: 'complete', readonly response: HttpResponseMessage }
  | { readonly kind: 'more' }

export type HttpParseEnd =
  | { readonly kind: 'complete', readonly response: HttpResponseMessage }
  /** Not garbage, only cut short: the connection closed before the response was whole. */
  | { readonly kind: 'closed-early', readonly missing: MissingPart }

export interface HttpResponseParserOptions {
  /** Refuse a body larger than this (after chunked framing is removed). */
  maxBodyBytes: number
  /** Default MAX_HEADER_SECTION_BYTES; also the bound on chunked trailers. */
  maxHeaderBytes?: number
}

type State =
  | 'status-line' | 'field-line'
  | 'length-body' | 'close-body'
  | 'chunk-size' | 'chunk-data' | 'chunk-data-cr' | 'chunk-data-lf' | 'trailer'
  | 'done'

const MORE: HttpParseProgress = { kind: 'more' }
const HTTP_SLASH = [0x48, 0x54, 0x54, 0x50, 0x2f] // "HTTP/"

/**
 * Reads one response incrementally: push() each chunk as it arrives, end() when the connection
 * closes. A complete response is returned as soon as its last byte is pushed; whatever follows
 * it is ignored (miniupnpc's tests have servers that write junk past Content-Length). Interim
 * 1xx responses are skipped. Body framing per RFC 9112 §6.3: chunked when it is the final
 * transfer coding, else Content-Length, else until the connection closes; 1xx, 204 and 304 have
 * no body. After a refusal the parser refuses again; after completion it keeps its response.
 *
 * Work is linear in the bytes read, and what it reads is bounded: MAX_HEADER_SECTION_BYTES of
 * head, `maxBodyBytes` of body, MAX_CHUNK_LINE_BYTES per chunk-size line.
 */
export class HttpResponseParser {
  readonly #maxBodyBytes: number
  readonly #maxHeaderBytes: number
  #state: State = 'status-line'
  /** The pieces of a line split across pushes, its LF not yet seen. */
  #line: Uint8Array[] = []
  #lineLength = 0
  /** Bytes of the header section (interim responses included), then of the trailer section. */
  #sectionBytes = 0
  #version: 'HTTP/1.0' | 'HTTP/1.1' = 'HTTP/1.1'
  #status = 0
  #reason = ''
  /** Each field's values in order; obs-fold lines extend the last value of #lastField. */
  #fields = new Map<string, string[]>()
  #lastField: string | undefined
  /** The body so far, copied out of the pushed chunks; grown by doubling up to maxBodyBytes. */
  #body = new Uint8Array(0)
  #bodyLength = 0
  /** Bytes left of the Content-Length body or of the current chunk. */
  #remaining = 0
  #response: HttpResponseMessage | undefined
  #failure: RemoteProtocolError | undefined
  #ended = false

  constructor (options: HttpResponseParserOptions) {
    this.#maxBodyBytes = options.maxBodyBytes
    this.#maxHeaderBytes = options.maxHeaderBytes ?? MAX_HEADER_SECTION_BYTES
  }

  /** Reads the next bytes of the connection. Throws RemoteProtocolError when they are not an HTTP response. */
  push (chunk: Uint8Array): HttpParseProgress {
    if (this.#failure !== undefined) throw this.#failure
    if (this.#ended) throw new UsageError('HttpResponseParser.push after end')
    if (this.#response !== undefined) return { kind: 'complete', response: this.#response }
    // A plain view: Buffer's own indexOf and subarray cost several times more per call.
    const bytes = new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength)
    try {
      let offset = 0
      while (offset < bytes.length && this.#state !== 'done') offset = this.#read(bytes, offset)
    } catch (err) {
      if (err instanceof RemoteProtocolError) this.#failure = err
      throw err
    }
    return this.#response === undefined ? MORE : { kind: 'complete', response: this.#response }
  }

  /** The connection has closed: the response is complete (close-delimited, or already whole) or was cut short. */
  end (): HttpParseEnd {
    if (this.#failure !== undefined) throw this.#failure
    this.#ended = true
    if (this.#response !== undefined) return { kind: 'complete', response: this.#response }
    switch (this.#state) {
      case 'close-body':
        this.#complete()
        return { kind: 'complete', response: this.#response! }
      case 'trailer':
        // The last chunk has arrived and only the end of the trailer section is missing: the body is whole.
        this.#complete()
        return { kind: 'complete', response: this.#response! }
      case 'status-line':
        return { kind: 'closed-early', missing: 'status-line' }
      case 'field-line':
        return { kind: 'closed-early', missing: 'field-section' }
      default:
        return { kind: 'closed-early', missing: 'body' }
    }
  }

  /** Consumes bytes from `offset` in the current state; returns where it stopped. */
  #read (bytes: Uint8Array, offset: number): number {
    switch (this.#state) {
      case 'close-body':
        this.#appendBody(bytes, offset, bytes.length)
        return bytes.length
      case 'length-body': case 'chunk-data': {
        const take = Math.min(bytes.length - offset, this.#remaining)
        this.#appendBody(bytes, offset, offset + take)
        this.#remaining -= take
        if (this.#remaining === 0) {
          if (this.#state === 'length-body') this.#complete()
          else this.#state = 'chunk-data-cr'
        }
        return offset + take
      }
      case 'chunk-data-cr': case 'chunk-data-lf':
        this.#onChunkDataEnd(bytes[offset]!)
        return offset + 1
      default:
        return this.#readLine(bytes, offset)
    }
  }

  /** Reads up to the next LF; a whole line goes to #onLine without its CRLF or LF. */
  #readLine (bytes: Uint8Array, offset: number): number {
    const lf = bytes.indexOf(LF, offset)
    const stop = lf === -1 ? bytes.length : lf + 1
    if (this.#lineLength === 0 && lf !== -1) {
      // The whole line is in this chunk, the usual case: read in place.
      this.#checkLineLength(stop - offset)
      if (this.#state === 'status-line') checkStatusPrefix(bytes, offset, stop)
      this.#onLine(bytes, offset, lf)
      return stop
    }
    // A copy: the caller may reuse its buffer once push returns.
    this.#line.push(bytes.slice(offset, stop))
    this.#lineLength += stop - offset
    this.#checkLineLength(this.#lineLength)
    if (this.#state === 'status-line') {
      const prefix = this.#linePrefix(HTTP_SLASH.length)
      checkStatusPrefix(prefix, 0, prefix.length)
    }
    if (lf === -1) return bytes.length
    const whole = Buffer.concat(this.#line, this.#lineLength)
    this.#line = []
    this.#lineLength = 0
    this.#onLine(whole, 0, whole.length - 1)
    return stop
  }

  /** A line of `length` bytes so far (its LF included, once seen) against the bound of its state. */
  #checkLineLength (length: number): void {
    if (this.#state === 'chunk-size') {
      if (length > MAX_CHUNK_LINE_BYTES) throw new RemoteProtocolError(`a chunk-size line is longer than the ${MAX_CHUNK_LINE_BYTES} bytes allowed`)
    } else if (this.#sectionBytes + length > this.#maxHeaderBytes) {
      const what = this.#state === 'trailer' ? 'trailer section' : 'header section'
      throw new RemoteProtocolError(`the reply's ${what} is larger than the ${this.#maxHeaderBytes} bytes allowed`)
    }
  }

  #linePrefix (length: number): Uint8Array {
    const first = this.#line[0]!
    if (first.length >= length || this.#line.length === 1) return first.subarray(0, length)
    return Buffer.concat(this.#line, this.#lineLength).subarray(0, length)
  }

  /** `bytes[start..lf]` is a whole line, `lf` the index of its LF. */
  #onLine (bytes: Uint8Array, start: number, lf: number): void {
    const end = lf > start && bytes[lf - 1] === CR ? lf - 1 : lf
    if (this.#state !== 'chunk-size') this.#sectionBytes += lf + 1 - start
    switch (this.#state) {
      // RFC 9112 §2.2: empty lines before the start-line are ignored.
      case 'status-line': if (end > start) this.#onStatusLine(bytes.subarray(start, end)); break
      case 'field-line': this.#onFieldLine(bytes.subarray(start, end)); break
      case 'chunk-size': this.#onChunkSize(bytes, start, end); break
      case 'trailer': if (end === start) this.#complete(); break
    }
  }

  /** status-line = HTTP-version SP status-code SP [ reason-phrase ] (RFC 9112 §4), spaces counted leniently. */
  #onStatusLine (line: Uint8Array): void {
    const text = latin1(line)
    const match = /^HTTP\/(\d)\.(\d)[ \t]+(\d{3})(?:[ \t]+(.*))?$/s.exec(text)
    if (match === null) throw new RemoteProtocolError(`bad status-line ${quote(text)}`)
    const version = `HTTP/${match[1]!}.${match[2]!}`
    if (version !== 'HTTP/1.0' && version !== 'HTTP/1.1') throw new RemoteProtocolError(`unsupported ${version} in status-line ${quote(text)}`)
    const status = Number(match[3])
    if (status < 100) throw new RemoteProtocolError(`bad status-code in status-line ${quote(text)}`)
    this.#version = version
    this.#status = status
    this.#reason = (match[4] ?? '').trim()
    this.#fields = new Map()
    this.#lastField = undefined
    this.#state = 'field-line'
  }

  /** field-line = field-name ":" OWS field-value OWS (RFC 9112 §5), or an obs-fold continuation, or the end of the section. */
  #onFieldLine (line: Uint8Array): void {
    if (line.length === 0) {
      this.#onHeaderSectionEnd()
      return
    }
    if (line[0] === SP || line[0] === HTAB) {
      // obs-fold (RFC 9112 §5.2): replaced by a space. Before any field, the line is consumed
      // without further processing (§2.2).
      const values = this.#lastField === undefined ? undefined : this.#fields.get(this.#lastField)
      const more = trimOws(latin1(line))
      if (values !== undefined && more !== '') {
        const last = values[values.length - 1]!
        values[values.length - 1] = last === '' ? more : `${last} ${more}`
      }
      return
    }
    const colon = line.indexOf(0x3a)
    if (colon === -1) throw new RemoteProtocolError(`a field line without a colon: ${quote(latin1(line))}`)
    // Whitespace before the colon: §5.1 has servers refuse it in requests; in a response it harms nothing here.
    const name = trimOws(latin1(line.subarray(0, colon))).toLowerCase()
    if (name === '') throw new RemoteProtocolError(`a field line without a name: ${quote(latin1(line))}`)
    const value = trimOws(latin1(line.subarray(colon + 1)))
    const values = this.#fields.get(name)
    if (values === undefined) this.#fields.set(name, [value])
    else values.push(value)
    this.#lastField = name
  }

  #onHeaderSectionEnd (): void {
    const status = this.#status
    if (status < 200) {
      // An interim response (100 Continue, 102 Processing, 103 Early Hints): the real one follows.
      this.#state = 'status-line'
      return
    }
    if (status === 204 || status === 304) {
      this.#complete()
      return
    }
    const coding = this.#transferCoding()
    if (coding === 'chunked') {
      this.#state = 'chunk-size'
      return
    }
    const length = coding === 'other' ? undefined : this.#contentLength()
    if (length === undefined) {
      this.#state = 'close-body'
    } else if (length === 0) {
      this.#complete()
    } else {
      this.#remaining = length
      this.#body = new Uint8Array(length)
      this.#state = 'length-body'
    }
  }

  /**
   * The final transfer coding, which overrides Content-Length (RFC 9112 §6.3): chunked, or
   * another one, whose body runs until the connection closes. "identity" (RFC 2616's no-op, still
   * written by old servers) is no coding at all.
   */
  #transferCoding (): 'chunked' | 'other' | undefined {
    const values = this.#fields.get('transfer-encoding')
    if (values === undefined) return undefined
    const codings = values.join(',').split(',').map((c) => trimOws(c).toLowerCase()).filter((c) => c !== '' && c !== 'identity')
    if (codings.length === 0) return undefined
    return codings[codings.length - 1] === 'chunked' ? 'chunked' : 'other'
  }

  /** Content-Length (RFC 9110 §8.6): digits only; repeated or listed values must all agree. */
  #contentLength (): number | undefined {
    const values = this.#fields.get('content-length')
    if (values === undefined) return undefined
    let digits: string | undefined
    for (const item of values.join(',').split(',')) {
      const text = trimOws(item)
      if (!/^\d+$/.test(text)) throw new RemoteProtocolError(`Content-Length ${quote(text)} is not a number`)
      const significant = text.replace(/^0+(?=\d)/, '')
      if (digits !== undefined && digits !== significant) throw new RemoteProtocolError(`conflicting Content-Length values ${quote(values.join(', '))}`)
      digits = significant
    }
    if (digits!.length > MAX_CONTENT_LENGTH_DIGITS || Number(digits) > this.#maxBodyBytes) {
      throw new RemoteProtocolError(`the reply announces ${clip(digits!, 20)} bytes, more than the ${this.#maxBodyBytes} allowed`)
    }
    return Number(digits)
  }

  /**
   * chunk-size [ chunk-ext ] (RFC 9112 §7.1): hex digits, then optional whitespace and
   * extensions, which are ignored. Read from the bytes: a hostile reply can send tens of
   * thousands of one-byte chunks, and this runs once for each.
   */
  #onChunkSize (bytes: Uint8Array, start: number, end: number): void {
    let i = start
    let size = 0
    let significant = 0
    for (; i < end; i++) {
      const digit = hexValue(bytes[i]!)
      if (digit === -1) break
      if (significant > 0 || digit !== 0) significant++
      if (significant <= MAX_CHUNK_SIZE_DIGITS) size = size * 16 + digit
    }
    let rest = i
    while (rest < end && (bytes[rest] === SP || bytes[rest] === HTAB)) rest++
    if (i === start || (rest < end && bytes[rest] !== 0x3b)) throw new RemoteProtocolError(`bad chunk-size ${quote(latin1(bytes.subarray(start, end)))}`)
    if (size === 0) {
      // last-chunk: the trailer section follows, read and dropped, bounded like the header section.
      this.#state = 'trailer'
      this.#sectionBytes = 0
      return
    }
    if (significant > MAX_CHUNK_SIZE_DIGITS || this.#bodyLength + size > this.#maxBodyBytes) throw this.#tooLarge()
    this.#remaining = size
    this.#state = 'chunk-data'
  }

  /** chunk-data is followed by CRLF (or LF): anything else means the chunk-size was wrong. */
  #onChunkDataEnd (byte: number): void {
    if (byte === LF) this.#state = 'chunk-size'
    else if (byte === CR && this.#state === 'chunk-data-cr') this.#state = 'chunk-data-lf'
    else throw new RemoteProtocolError('chunk data is not followed by CRLF: the chunk-size was wrong')
  }

  /** Copies `bytes[start..end]`: no view of a pushed chunk is kept, and no object is made per chunk of a chunked body. */
  #appendBody (bytes: Uint8Array, start: number, end: number): void {
    const length = this.#bodyLength + end - start
    if (length > this.#maxBodyBytes) throw this.#tooLarge()
    if (length > this.#body.length) {
      const grown = new Uint8Array(Math.min(this.#maxBodyBytes, Math.max(length, 2 * this.#body.length, 1024)))
      grown.set(this.#body.subarray(0, this.#bodyLength))
      this.#body = grown
    }
    if (end - start > 32) this.#body.set(bytes.subarray(start, end), this.#bodyLength)
    else for (let i = start, at = this.#bodyLength; i < end; i++, at++) this.#body[at] = bytes[i]!
    this.#bodyLength = length
  }

  #tooLarge (): RemoteProtocolError {
    return new RemoteProtocolError(`the reply is larger than the ${this.#maxBodyBytes} bytes allowed`)
  }

  #complete (): void {
    this.#response = {
      version: this.#version,
      status: this.#status,
      reason: this.#reason,
      // fromEntries defines properties: a field named __proto__ is a field like any other.
      headers: Object.fromEntries(Array.from(this.#fields, ([name, values]) => [name, values.join(', ')])),
      body: this.#body.length === this.#bodyLength ? this.#body : this.#body.slice(0, this.#bodyLength)
    }
    this.#body = new Uint8Array(0)
    this.#line = []
    this.#state = 'done'
  }
}

/**
 * Refuses what is not HTTP from its first bytes (an SSH banner, a TLS record), without waiting
 * for a line end that may never come. `bytes[start..end]` is the line so far; a CR or LF alone
 * begins an empty line, which is skipped before a status-line.
 */
function checkStatusPrefix (bytes: Uint8Array, start: number, end: number): void {
  const first = bytes[start]
  if (first === LF || (first === CR && (end - start === 1 || bytes[start + 1] === LF))) return
  const length = Math.min(end - start, HTTP_SLASH.length)
  for (let i = 0; i < length; i++) {
    if (bytes[start + i] !== HTTP_SLASH[i]) throw new RemoteProtocolError(`the reply is not HTTP: it starts with ${quote(latin1(bytes.subarray(start, Math.min(end, start + 40))))}`)
  }
}

function hexValue (byte: number): number {
  if (byte >= 0x30 && byte <= 0x39) return byte - 0x30
  const lower = byte | 0x20
  if (lower >= 0x61 && lower <= 0x66) return lower - 0x61 + 10
  return -1
}

/** ISO-8859-1, byte for byte, as node:http decodes fields (TextDecoder's "latin1" is windows-1252). */
function latin1 (bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('latin1')
}


/** OWS (RFC 9110 §5.6.3): spaces and horizontal tabs. */
function trimOws (text: string): string {
  let start = 0
  let end = text.length
  while (start < end && (text.charCodeAt(start) === SP || text.charCodeAt(start) === HTAB)) start++
  while (end > start && (text.charCodeAt(end - 1) === SP || text.charCodeAt(end - 1) === HTAB)) end--
  return text.slice(start, end)
}

function clip (text: string, length: number): string {
  return text.length > length ? `${text.slice(0, length)}...` : text
}

/** Router or caller text in a message: clipped, and quoted so that control bytes show. */
function quote (text: string): string {
  return JSON.stringify(clip(text, 60))
}
