import type { IncomingHttpHeaders } from 'node:http'
import { isIP, type Socket } from 'node:net'
import { systemClock, type Clock } from '../clock.js'
import { AbortError, NatmapperError, NoResponseError, RemoteProtocolError, TimeoutError, UsageError } from '../errors.js'
import { hostOf } from './guard.js'

/**
 * The two HTTP exchanges of UPnP: GET the device description, POST a SOAP action. node:http does
 * the framing (Content-Length, chunked, close-delimited: the BiPAC 7404VNOX always answers
 * chunked, per a comment in miniupnpc's minisoap.c). What this adds is the distrust: no
 * redirects (node:http follows none; a 3xx comes back as a status), IP-literal hosts only (the
 * caller has run guard.ts), a byte cap, a time cap for the whole exchange, an AbortSignal, and
 * `Connection: close` with no agent (miniupnpd closes after every reply anyway). It also reports
 * the local address of the TCP connection: that is our address on the router's LAN, which
 * AddPortMapping wants as NewInternalClient (miniupnpc does the same with getsockname).
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
  /** Names in lower case, as node:http gives them. */
  headers: IncomingHttpHeaders
  /** UTF-8 decoded; invalid sequences become U+FFFD. */
  body: string
  /** Our end of the TCP connection. */
  localAddress: string
  remoteAddress: string
  durationMs: number
}

/**
 * node:http is loaded on first use: most programs map through PCP or NAT-PMP and never speak
 * HTTP. Loading it takes 20-30 ms in a fresh process, so UPnP discovery starts it while it waits
 * for the SSDP answer (preloadHttp) instead of after.
 */
let httpModule: Promise<typeof import('node:http')> | undefined
const loadHttp = async (): Promise<typeof import('node:http')> => await (httpModule ??= import('node:http'))

export function preloadHttp (): void {
  loadHttp().catch(() => { httpModule = undefined })
}

const USER_AGENT = `Node.js/${process.versions.node} UPnP/1.1 natmapper`

/**
 * One request on a fresh connection. Rejects with TimeoutError, AbortError, NoResponseError
 * (refused, unreachable: nothing listens there), ConnectionResetError (reset or closed early),
 * or RemoteProtocolError (not HTTP, or a body over `maxBytes`). Any status resolves: a SOAP fault
 * comes with 500 and its body matters.
 */
export async function sendHttpRequest (options: HttpRequestOptions): Promise<HttpResponse> {
  const { signal, maxBytes } = options
  const clock = options.clock ?? systemClock
  if (signal?.aborted === true) throw new AbortError(signal.reason)
  const url = new URL(options.url)
  // guard.ts has checked where the URL points; these two hold whatever the caller did.
  if (url.protocol !== 'http:') throw new UsageError(`not an http URL: ${options.url}`)
  if (isIP(hostOf(url)) === 0) throw new UsageError(`not an IP-literal host (no DNS look-ups): ${options.url}`)
  const label = `${options.method} ${url.href}`
  const body = options.body === undefined ? undefined : Buffer.from(options.body, 'utf8')
  const { request: httpRequest } = await loadHttp()
  const startMs = clock.now()

  return await new Promise<HttpResponse>((resolve, reject) => {
    let socket: Socket | undefined
    let localAddress = ''
    let remoteAddress = ''
    let settled = false
    const finish = (err: Error | undefined, value?: HttpResponse): void => {
      if (settled) return
      settled = true
      clock.clearTimeout(timer)
      signal?.removeEventListener('abort', onAbort)
      if (err !== undefined) {
        req.destroy()
        reject(err)
      } else {
        resolve(value!)
      }
    }
    const req = httpRequest({
      host: hostOf(url),
      port: url.port === '' ? 80 : Number(url.port),
      path: `${url.pathname}${url.search}`,
      method: options.method,
      agent: false,
      // Routers write headers node:http's strict parser refuses (spaces in names, stray bytes);
      // the lenient parser reads them. Request smuggling, the reason for strictness, needs a
      // shared connection, and every one of ours carries exactly one request.
      insecureHTTPParser: true,
      headers: {
        Host: url.host,
        'User-Agent': USER_AGENT,
        Connection: 'close',
        ...(body === undefined ? {} : { 'Content-Length': String(body.length) }),
        ...options.headers
      }
    })
    const timer = clock.setTimeout(() => {
      finish(new TimeoutError(`${label}: no complete answer within ${options.timeoutMs} ms`))
    }, options.timeoutMs)
    const onAbort = (): void => { finish(new AbortError(signal?.reason)) }
    signal?.addEventListener('abort', onAbort, { once: true })

    req.on('socket', (s) => {
      socket = s
      const note = (): void => {
        localAddress = s.localAddress ?? ''
        remoteAddress = s.remoteAddress ?? ''
      }
      if (s.remoteAddress !== undefined && !s.connecting) note()
      else s.once('connect', note)
    })
    let complete: (() => boolean) | undefined
    req.on('error', (err: NodeJS.ErrnoException) => {
      // Bytes after a complete reply (junk past Content-Length, seen by miniupnpc's tests) make
      // the parser fail once the reply is already whole: the reply stands.
      if (complete?.() !== true) finish(classify(err, label))
    })
    req.on('response', (res) => {
      const declared = Number(res.headers['content-length'])
      if (Number.isFinite(declared) && declared > maxBytes) {
        finish(new RemoteProtocolError(`${label}: the reply announces ${declared} bytes, more than the ${maxBytes} allowed`))
        return
      }
      const chunks: Buffer[] = []
      let received = 0
      res.on('data', (chunk: Buffer) => {
        received += chunk.length
        if (received > maxBytes) {
          finish(new RemoteProtocolError(`${label}: the reply is larger than the ${maxBytes} bytes allowed`))
          return
        }
        chunks.push(chunk)
      })
      res.on('error', (err: NodeJS.ErrnoException) => { finish(classify(err, label)) })
      res.on('aborted', () => { finish(new ConnectionResetError(`${label}: the connection closed in the middle of the reply`)) })
      const done = (): void => {
        finish(undefined, {
          status: res.statusCode ?? 0,
          headers: res.headers,
          body: new TextDecoder().decode(Buffer.concat(chunks)),
          localAddress: localAddress !== '' ? localAddress : socket?.localAddress ?? '',
          remoteAddress: remoteAddress !== '' ? remoteAddress : socket?.remoteAddress ?? '',
          durationMs: clock.now() - startMs
        })
      }
      res.on('end', () => {
        if (res.complete) done()
        else finish(new ConnectionResetError(`${label}: the connection closed in the middle of the reply`))
      })
      // res.complete is set as soon as the parser has the whole message; 'end' follows once the
      // buffered body has been read.
      complete = () => res.complete
    })
    req.end(body)
  })
}

function classify (err: NodeJS.ErrnoException, label: string): Error {
  if (err instanceof NatmapperError) return err
  switch (err.code) {
    case 'ECONNREFUSED':
      return new NoResponseError(`${label}: connection refused: nothing listens there (did the router restart?)`, { cause: err })
    case 'EHOSTUNREACH': case 'ENETUNREACH': case 'EADDRNOTAVAIL':
      return new NoResponseError(`${label}: ${err.code}: the host cannot be reached`, { cause: err })
    case 'ECONNRESET': case 'EPIPE': case 'ECONNABORTED':
      return new ConnectionResetError(`${label}: the router reset the connection (${err.code})`, { cause: err })
  }
  if (err.code?.startsWith('HPE_') === true) {
    return new RemoteProtocolError(`${label}: the reply is not valid HTTP: ${err.message}`, { cause: err })
  }
  return new ConnectionResetError(`${label}: ${err.message}`, { cause: err })
}
