import { Socket, connect } from 'node:net'
import { systemClock, type Clock } from '../clock.js'
import { AbortError, NatmapperError, NoResponseError, RemoteProtocolError, TimeoutError, UsageError } from '../errors.js'
import { hostOf } from './guard.js'
import { HttpResponseParser, encodeHttpRequest, type HttpResponseMessage, type MissingPart } from './http-codec.js'
import { ipFamily } from '../net/address.js'

/**
 * The two HTTP exchanges of UPnP: GET the device description, POST a SOAP action, each on a TCP
 * connection of its own. http-codec.ts does the framing (Content-Length, chunked,
 * close-delimited: the BiPAC 7404VNOX always answers chunked, per a comment in miniupnpc's
 * minisoap.c); this file adds the socket and the distrust: no redirects (a 3xx comes back as a
 * status), IP-literal hosts only (the caller has run guard.ts), a byte cap, a time cap for the
 * whole exchange, an AbortSignal, and `Connection: close` (miniupnpd closes after every reply
 * anyway). It also reports the local address of the TCP connection: that is our address on the
 * router's LAN, which AddPortMapping wants as NewInternalClient (miniupnpc does the same with
 * getsockname).
 *
 * Why not node:http: on the path to the first mapping of a UPnP-only router, a fresh process
 * paid for loading it (20-30 ms, hidden in the SSDP wait by preloading) and then for its first
 * request (its agent, llhttp, IncomingMessage: bundled, 3 KB GET on loopback, median of 11
 * fresh processes: 10.2 ms first and 3.1 ms second, against 5.8 and 1.8 ms here). One request
 * per connection, no keep-alive, no TLS, no proxies: nothing of node:http is needed.
 */

/** The connection was reset or closed before a whole reply arrived. */
export class ConnectionResetError extends NatmapperError {
  constructor (message: string, options?: ErrorOptions) {
    super('NATMAPPER_CONNECTION_RESET', message, options)
  }
}

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

const utf8 = new TextDecoder()
let warmed = false

/**
 * Discovery calls this while it waits for the SSDP answer (50 ms or more). There is no module
 * left to load (node:http took 20-30 ms), but a fresh process still compiles every function of
 * the exchange on its first call: running the codec on a canned exchange and building a socket
 * that never connects takes 2.5 ms in the wait and moves about 2 ms off the path to the first
 * mapping (bundled, fresh processes, a 3 KB GET on loopback, 11 samples: first GET 8.1 -> 5.6 ms
 * median; 7.9 -> 6.2 ms with garbage collection kept out of the request). No connection, no I/O.
 */
export function preloadHttp (): void {
  if (warmed) return
  warmed = true
  try {
    encodeHttpRequest({ method: 'POST', path: '/', host: '127.0.0.1', headers: { SOAPAction: '""' }, body: '' })
    const parser = new HttpResponseParser({ maxBodyBytes: 16 })
    const progress = parser.push(Buffer.from('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok'))
    if (progress.kind === 'complete') utf8.decode(progress.response.body)
    new Socket().destroy()
  } catch {
    // Only a head start: the real exchange reports its own errors.
  }
}

const CLOSED_EARLY: Record<MissingPart, string> = {
  'status-line': 'the connection closed without a reply',
  'field-section': 'the connection closed in the middle of the reply\'s header section',
  body: 'the connection closed in the middle of the reply'
}

/**
 * One request on a fresh connection. Rejects with TimeoutError, AbortError, NoResponseError
 * (refused, unreachable: nothing listens there), ConnectionResetError (reset or closed early),
 * RemoteProtocolError (not HTTP, or a body over `maxBytes`), or UsageError (a URL or a header
 * this client will not send). Any status resolves: a SOAP fault comes with 500 and its body
 * matters.
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
  const request = encodeHttpRequest({
    method: options.method,
    path: `${url.pathname}${url.search}`,
    host: url.host,
    headers: options.headers,
    body: options.body
  })
  const startMs = clock.now()

  return await new Promise<HttpResponse>((resolve, reject) => {
    const parser = new HttpResponseParser({ maxBodyBytes: maxBytes })
    let localAddress = ''
    let remoteAddress = ''
    let settled = false
    const finish = (err: Error | undefined, value?: HttpResponse): void => {
      if (settled) return
      settled = true
      clock.clearTimeout(timer)
      signal?.removeEventListener('abort', onAbort)
      // Also when the reply is whole: one request per connection, and nothing after the reply is read.
      socket.destroy()
      if (err !== undefined) reject(err)
      else resolve(value!)
    }
    const reply = (message: HttpResponseMessage): HttpResponse => ({
      status: message.status,
      headers: message.headers,
      body: utf8.decode(message.body),
      localAddress: localAddress !== '' ? localAddress : socket.localAddress ?? '',
      remoteAddress: remoteAddress !== '' ? remoteAddress : socket.remoteAddress ?? '',
      durationMs: clock.now() - startMs
    })
    const socket = connect({ host, port, noDelay: true })
    const timer = clock.setTimeout(() => {
      finish(new TimeoutError(`${label}: no complete answer within ${options.timeoutMs} ms`))
    }, options.timeoutMs)
    const onAbort = (): void => { finish(new AbortError(signal?.reason)) }
    signal?.addEventListener('abort', onAbort, { once: true })
    socket.on('connect', () => {
      localAddress = socket.localAddress ?? ''
      remoteAddress = socket.remoteAddress ?? ''
    })
    socket.on('data', (chunk: Buffer) => {
      try {
        const progress = parser.push(chunk)
        if (progress.kind === 'complete') finish(undefined, reply(progress.response))
      } catch (err) {
        finish(protocolError(err, label))
      }
    })
    socket.on('end', () => {
      try {
        const outcome = parser.end()
        if (outcome.kind === 'complete') finish(undefined, reply(outcome.response))
        else finish(new ConnectionResetError(`${label}: ${CLOSED_EARLY[outcome.missing]}`))
      } catch (err) {
        finish(protocolError(err, label))
      }
    })
    // Stays attached after finish: an error of a destroyed socket is no one's business, and must not go unhandled.
    socket.on('error', (err: NodeJS.ErrnoException) => { finish(classify(err, label)) })
    socket.on('close', () => { finish(new ConnectionResetError(`${label}: ${CLOSED_EARLY.body}`)) })
    // No end() after it: some HTTP servers take a half-closed connection for a client gone away.
    socket.write(request)
  })
}

function protocolError (err: unknown, label: string): Error {
  if (err instanceof RemoteProtocolError) return new RemoteProtocolError(`${label}: ${err.message}`, { cause: err })
  return err instanceof Error ? err : new Error(String(err))
}

function classify (err: NodeJS.ErrnoException, label: string): Error {
  switch (err.code) {
    case 'ECONNREFUSED':
      return new NoResponseError(`${label}: connection refused: nothing listens there (did the router restart?)`, { cause: err })
    case 'EHOSTUNREACH': case 'ENETUNREACH': case 'EADDRNOTAVAIL':
      return new NoResponseError(`${label}: ${err.code}: the host cannot be reached`, { cause: err })
    case 'ECONNRESET': case 'EPIPE': case 'ECONNABORTED':
      return new ConnectionResetError(`${label}: the router reset the connection (${err.code})`, { cause: err })
  }
  return new ConnectionResetError(`${label}: ${err.message}`, { cause: err })
}
