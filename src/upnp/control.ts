import type { Clock } from '../clock.js'
import type { RequestEvent } from '../counters.js'
import { GatewayRefusedError, TimeoutError } from '../errors.js'
import type { Logger } from '../log.js'
import type { SoapRequest } from './soap.js'
import { checkUpnpUrl, type UrlPolicy } from './guard.js'
import { sendHttpRequest, type HttpResponse } from './http.js'

/**
 * One SOAP action against one control URL: the guard, the POST, the decode. Shared by the
 * discovery (which probes candidate services) and the client.
 */

/** Control replies are a few hundred bytes; soap.ts reads at most 64 Ki characters. */
export const MAX_SOAP_BYTES = 64 * 1024
/** Descriptions are a few KiB; description.ts reads at most 256 Ki characters. */
export const MAX_DESCRIPTION_BYTES = 256 * 1024

export interface ExchangeContext {
  policy: UrlPolicy
  clock: Clock
  logger: Logger
  /** Per HTTP exchange, connect included. */
  requestTimeoutMs: number
  signal?: AbortSignal | undefined
  /** An absolute deadline on `clock` for the whole operation, if any. */
  deadlineMs?: number | undefined
  /** The local address to connect from (the chosen interface's; for an IPv6 pinhole the address it opens); default: the route's choice. */
  localAddress?: string | undefined
  /** Told the local address of every connection: our LAN address as the router sees it. */
  onLocalAddress?: ((address: string) => void) | undefined
  /** Told what happens to each exchange, for counters. */
  count?: ((event: RequestEvent, result?: string) => void) | undefined
}

/** What the exchange may still take: the per-request cap, shortened by the deadline. */
export function remainingMs (context: ExchangeContext, what: string): number {
  if (context.deadlineMs === undefined) return context.requestTimeoutMs
  const left = context.deadlineMs - context.clock.now()
  if (left <= 0) throw new TimeoutError(`${what}: out of time`)
  return Math.min(context.requestTimeoutMs, left)
}

/** POSTs `request` to `controlURL` and decodes the reply body whatever its status (faults come with 500). */
export async function soapCall<T> (context: ExchangeContext, controlURL: string, request: SoapRequest,
  decode: (xml: string, serviceType: string) => T): Promise<T> {
  const url = checkUpnpUrl(controlURL, context.policy).href
  const response = await counted(context, async () => await sendHttpRequest({
    method: 'POST',
    url,
    headers: request.headers,
    body: request.body,
    maxBytes: MAX_SOAP_BYTES,
    timeoutMs: remainingMs(context, request.action),
    signal: context.signal,
    localAddress: context.localAddress,
    clock: context.clock
  }))
  note(context, response)
  try {
    const value = decode(response.body, request.serviceType)
    context.logger('%s: HTTP %d in %d ms', request.action, response.status, Math.round(response.durationMs))
    return value
  } catch (err) {
    // A fault's code and name, for NODE_DEBUG: what a bug report about a refusing router needs.
    const fault = err instanceof GatewayRefusedError ? `fault ${err.resultName} (${err.resultCode})` : (err as Error).message
    if (err instanceof GatewayRefusedError) context.count?.('refused', `${err.resultName} (${err.resultCode})`)
    context.logger('%s: HTTP %d in %d ms: %s', request.action, response.status, Math.round(response.durationMs), fault)
    throw err
  }
}

/** One HTTP exchange, counted: sent, then answered or timed out. */
async function counted (context: ExchangeContext, send: () => Promise<HttpResponse>): Promise<HttpResponse> {
  context.count?.('sent')
  try {
    const response = await send()
    context.count?.('answered')
    return response
  } catch (err) {
    if (err instanceof TimeoutError) context.count?.('timeout')
    throw err
  }
}

/** GETs a device description, refusing anything but 200. */
export async function fetchDescription (context: ExchangeContext, location: string): Promise<HttpResponse> {
  const url = checkUpnpUrl(location, context.policy).href
  const response = await counted(context, async () => await sendHttpRequest({
    method: 'GET',
    url,
    maxBytes: MAX_DESCRIPTION_BYTES,
    timeoutMs: remainingMs(context, 'device description'),
    signal: context.signal,
    localAddress: context.localAddress,
    clock: context.clock
  }))
  note(context, response)
  context.logger('description %s: HTTP %d, %d bytes in %d ms', url, response.status, response.body.length, Math.round(response.durationMs))
  return response
}

function note (context: ExchangeContext, response: HttpResponse): void {
  const local = response.localAddress.startsWith('::ffff:') ? response.localAddress.slice(7) : response.localAddress
  if (local !== '') context.onLocalAddress?.(local)
}
