import { request as httpRequest, type IncomingMessage, type InformationEvent } from 'node:http'
import type { LookupFunction, Socket } from 'node:net'
import { systemClock, type Clock } from '../clock.js'
import { AbortError, ConnectionResetError, NatmapperError, NoResponseError, RemoteProtocolError, TimeoutError, UsageError } from '../errors.js'
import { hostOf } from './guard.js'
import { ipFamily } from '../net/address.js'

/**
 * The two HTTP exchanges of UPnP: GET the device description, POST a SOAP action, each on a TCP
 * connection of its own. node:http does the framing (Content-Length, chunked, close-delimited:
 * the BiPAC 7404VNOX always answers chunked, per a comment in miniupnpc's minisoap.c); this file
 * adds the distrust: no redirects (node:http follows none; a 3xx comes back as a status),
 * IP-literal hosts only (the caller has run guard.ts), a byte cap, a header cap, a time cap for
 * the whole exchange, an AbortSignal, and `Connection: close` (miniupnpd closes after every reply
 * anyway). It also reports the local address of the TCP connection: that is our address on the
 * router's LAN, which AddPortMapping wants as NewInternalClient (miniupnpc does the same with
 * getsockname).
 */

export interface HttpRequestOptions {
  method: 'GET' | 'POST'
  /** Absolute http URL with an IP-literal host; check it with checkUpnpUrl first. */
  url: string
  /** Sent with exactly these names: some routers care about the case of SOAPAction (jupnp#120). */
  headers?: Readonly<Record<string, string>>
  body?: string
  /** Refuse a reply body larger than this. */
  maxBytes: number
  /** Upper bound for the whole exchange, connect included. */
  timeoutMs: number
  signal?: AbortSignal | undefined
  /** The local address the connection is made from; default: the route's choice. */
  localAddress?: string | undefined
  clock?: Clock
}

export interface HttpResponse {
  status: number
  /** Names in lower case; a repeated field's values joined with ", ". */
  headers: Readonly<Record<string, string>>
  /** UTF-8 decoded; invalid sequences become U+FFFD. */
  body: string
  /** Our end of the TCP connection. */
  localAddress: string
  remoteAddress: string
  durationMs: number
}

/** A bound on the reply's header section, and again on its interim (1xx) responses together. */
export const MAX_HEADER_SECTION_BYTES = 16 * 1024

export const USER_AGENT = `Node.js/${process.versions.node} UPnP/1.1 natmapper`

/** One request per connection, never chunked: these are the client's to write. */
const FRAMING_FIELDS = new Set(['connection', 'content-length', 'transfer-encoding'])

/** node:http's errors for a header or a path it will not send. */
const REFUSED_REQUEST_CODES = new Set(['ERR_INVALID_CHAR', 'ERR_INVALID_HTTP_TOKEN', 'ERR_UNESCAPED_CHARACTERS'])

/** Hosts are IP literals, which never reach a look-up; a name that did would be refused here. */
const refuseNames: LookupFunction = (hostname, _options, callback) => {
  callback(new UsageError(`not an IP-literal host (no DNS look-ups): ${hostname}`), '', 0)
}

const utf8 = new TextDecoder()

/**
 * One request on a fresh connection. Rejects with TimeoutError, AbortError, NoResponseError
 * (refused, unreachable: nothing listens there), ConnectionResetError (reset or closed early),
 * RemoteProtocolError (not HTTP, or over the byte or header cap), or UsageError (a URL or a
 * header this client will not send). Any status resolves: a SOAP fault comes with 500 and its
 * body matters.
 */
export async function sendHttpRequest (options: HttpRequestOptions): Promise<HttpResponse> {
  const { signal, maxBytes } = options
  const clock = options.clock ?? systemClock
  if (signal?.aborted === true) throw new AbortError(signal.reason)
  const url = new URL(options.url)
  // guard.ts has checked where the URL points; these hold whatever the caller did.
  if (url.protocol !== 'http:') throw new UsageError(`not an http URL: ${options.url}`)
  const host = hostOf(url)
  if (ipFamily(host) === 0) throw new UsageError(`not an IP-literal host (no DNS look-ups): ${options.url}`)
  const port = url.port === '' ? 80 : Number(url.port)
  if (port === 0) throw new UsageError(`port 0 cannot be connected to: ${options.url}`)
  const label = `${options.method} ${url.href}`
  const body = options.body === undefined ? undefined : Buffer.from(options.body, 'utf8')
  const startMs = clock.now()
  let req
  try {
    req = httpRequest({
      host,
      port,
      path: `${url.pathname}${url.search}`,
      method: options.method,
      // An array is sent as it is, names' case and order kept, and node:http adds no field of its own.
      headers: requestFields(url.host, body?.length, options.headers),
      agent: false,
      ...(options.localAddress === undefined ? {} : { localAddress: options.localAddress }),
      lookup: refuseNames,
      maxHeaderSize: MAX_HEADER_SECTION_BYTES,
      // Explicit, so that a process started with --insecure-http-parser does not make this one lenient.
      insecureHTTPParser: false
    })
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    if (code !== undefined && REFUSED_REQUEST_CODES.has(code)) throw new UsageError(`${label}: ${(err as Error).message}`, { cause: err })
    throw err
  }
  const request = req

  return await new Promise<HttpResponse>((resolve, reject) => {
    let socket: Socket | undefined
    let localAddress = ''
    let remoteAddress = ''
    let response: IncomingMessage | undefined
    let interimBytes = 0
    let settled = false
    const finish = (err: Error | undefined, value?: HttpResponse): void => {
      if (settled) return
      settled = true
      clock.clearTimeout(timer)
      signal?.removeEventListener('abort', onAbort)
      // Also when the reply is whole: one request per connection, and nothing after the reply is read.
      request.destroy()
      if (err !== undefined) reject(err)
      else resolve(value!)
    }
    const timer = clock.setTimeout(() => {
      finish(new TimeoutError(`${label}: no complete answer within ${options.timeoutMs} ms`))
    }, options.timeoutMs)
    const onAbort = (): void => { finish(new AbortError(signal?.reason)) }
    signal?.addEventListener('abort', onAbort, { once: true })

    request.on('socket', (s: Socket) => {
      socket = s
      s.once('connect', () => {
        localAddress = s.localAddress ?? ''
        remoteAddress = s.remoteAddress ?? ''
      })
    })
    // Stays attached after finish: an error of a destroyed request is no one's business, and must not go unhandled.
    request.on('error', (err: NodeJS.ErrnoException) => {
      // Bytes after a complete reply (junk past Content-Length, seen by miniupnpc's tests) fail
      // the parser once the reply is whole: the reply stands, and 'end' follows.
      if (response?.complete === true) return
      finish(classify(err, label, response !== undefined ? 'body' : (socket?.bytesRead ?? 0) > 0 ? 'field-section' : 'status-line'))
    })
    request.on('information', (info: InformationEvent) => {
      interimBytes += headBytes(`HTTP/${info.httpVersion} ${info.statusCode} ${info.statusMessage}`, info.rawHeaders)
      if (interimBytes > MAX_HEADER_SECTION_BYTES) finish(new RemoteProtocolError(`${label}: the reply's interim responses are larger than the ${MAX_HEADER_SECTION_BYTES} bytes allowed`))
    })
    request.on('response', (res: IncomingMessage) => {
      response = res
      const status = res.statusCode ?? 0
      if (res.httpVersionMajor !== 1 || status < 100) {
        finish(new RemoteProtocolError(`${label}: unsupported status-line "HTTP/${res.httpVersion} ${status}"`))
        return
      }
      const declared = Number(res.headers['content-length'])
      if (declared > maxBytes) {
        finish(new RemoteProtocolError(`${label}: the reply announces ${declared} bytes, more than the ${maxBytes} allowed`))
        return
      }
      const chunks: Buffer[] = []
      let received = 0
      res.on('data', (chunk: Buffer) => {
        received += chunk.length
        if (received > maxBytes) finish(new RemoteProtocolError(`${label}: the reply is larger than the ${maxBytes} bytes allowed`))
        else chunks.push(chunk)
      })
      res.on('error', (err: NodeJS.ErrnoException) => { finish(classify(err, label, 'body')) })
      res.on('close', () => { if (!res.complete) finish(new ConnectionResetError(`${label}: ${CLOSED_EARLY.body}`)) })
      res.on('end', () => {
        if (!res.complete) {
          finish(new ConnectionResetError(`${label}: ${CLOSED_EARLY.body}`))
          return
        }
        finish(undefined, {
          status,
          headers: responseFields(res.rawHeaders),
          body: utf8.decode(Buffer.concat(chunks, received)),
          localAddress: localAddress !== '' ? localAddress : socket?.localAddress ?? '',
          remoteAddress: remoteAddress !== '' ? remoteAddress : socket?.remoteAddress ?? '',
          durationMs: clock.now() - startMs
        })
      })
    })
    // No end() of the socket after it: some HTTP servers take a half-closed connection for a client gone away.
    request.end(body)
  })
}

/**
 * Host, User-Agent, `Connection: close`, Content-Length when there is a body, then the caller's
 * fields with their names as given (a Host or User-Agent there replaces the default in place),
 * as node:http's raw-header array.
 */
function requestFields (host: string, contentLength: number | undefined, extra: Readonly<Record<string, string>> | undefined): string[] {
  const fields: Array<[string, string]> = [['Host', host], ['User-Agent', USER_AGENT], ['Connection', 'close']]
  if (contentLength !== undefined) fields.push(['Content-Length', String(contentLength)])
  const seen = new Set<string>()
  for (const [name, value] of Object.entries(extra ?? {})) {
    const lower = name.toLowerCase()
    if (FRAMING_FIELDS.has(lower)) throw new UsageError(`the ${name} field is the HTTP client's to write`)
    if (seen.has(lower)) throw new UsageError(`the ${name} field is given twice`)
    seen.add(lower)
    if (lower === 'host') fields[0] = [name, value]
    else if (lower === 'user-agent') fields[1] = [name, value]
    else fields.push([name, value])
  }
  return fields.flat()
}

/** Lower-case names, repeated fields joined with ", " whatever node:http would drop; __proto__ is a field like any other. */
function responseFields (raw: string[]): Record<string, string> {
  const fields = new Map<string, string>()
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = raw[i]!.toLowerCase()
    const before = fields.get(name)
    fields.set(name, before === undefined ? raw[i + 1]! : `${before}, ${raw[i + 1]!}`)
  }
  return Object.fromEntries(fields)
}

/** The size of a head as it came, CRLF line ends assumed (the strict parser allows nothing else). */
function headBytes (statusLine: string, raw: string[]): number {
  let bytes = statusLine.length + 4
  for (let i = 0; i + 1 < raw.length; i += 2) bytes += raw[i]!.length + raw[i + 1]!.length + 4
  return bytes
}

type MissingPart = 'status-line' | 'field-section' | 'body'

const CLOSED_EARLY: Record<MissingPart, string> = {
  'status-line': 'the connection closed without a reply',
  'field-section': 'the connection closed in the middle of the reply\'s header section',
  body: 'the connection closed in the middle of the reply'
}

function classify (err: NodeJS.ErrnoException, label: string, missing: MissingPart): Error {
  if (err instanceof NatmapperError) return err
  if (err.code === 'HPE_HEADER_OVERFLOW') {
    return new RemoteProtocolError(`${label}: the reply's header section is larger than the ${MAX_HEADER_SECTION_BYTES} bytes allowed`, { cause: err })
  }
  if (err.code?.startsWith('HPE_') === true) {
    const reason = (err as { reason?: unknown }).reason
    return new RemoteProtocolError(`${label}: the reply is not valid HTTP/1.1: ${typeof reason === 'string' ? reason : err.message} (${err.code})`, { cause: err })
  }
  switch (err.code) {
    case 'ECONNREFUSED':
      return new NoResponseError(`${label}: connection refused: nothing listens there (did the router restart?)`, { cause: err })
    case 'EHOSTUNREACH': case 'ENETUNREACH': case 'EADDRNOTAVAIL':
      return new NoResponseError(`${label}: ${err.code}: the host cannot be reached`, { cause: err })
    case 'ECONNRESET':
      // node:http's own error for a connection that ended before the reply did.
      if (err.message === 'socket hang up' || err.message === 'aborted') return new ConnectionResetError(`${label}: ${CLOSED_EARLY[missing]}`, { cause: err })
      return new ConnectionResetError(`${label}: the router reset the connection (${err.code})`, { cause: err })
    case 'EPIPE': case 'ECONNABORTED':
      return new ConnectionResetError(`${label}: the router reset the connection (${err.code})`, { cause: err })
  }
  return new ConnectionResetError(`${label}: ${err.message}`, { cause: err })
}
