import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { Clock } from '../clock.js'
import { UpnpErrorCode } from '../upnp/codes.js'
import { encodeSoapFault, encodeSoapResponse, escapeXml, parseSoapRequest } from '../upnp/soap.js'
import { igdAction } from './igd-actions.js'
import { FIREWALL_CONTROL_PATH, FIREWALL_SERVICE, igdDescription, igdScpd, SCPD_PATHS, SERVER, type IgdTypes } from './igd-description.js'
import type { IgdQuirks, IgdRequest, IgdState } from './igd-types.js'

/**
 * SimulatedIgd's HTTP side: the device description at /rootDesc.xml and SOAP control of its WAN
 * connection services, with the quirks that concern HTTP (strict SOAPAction, chunked bodies,
 * resets, delays, cut descriptions). The actions themselves are igd-actions.ts.
 */

/** What the server reads from its IGD, as it is at each request. */
export interface IgdHttpHost {
  readonly quirks: IgdQuirks
  readonly types: IgdTypes
  readonly igdVersion: 1 | 2
  readonly clock: Clock
  readonly requests: IgdRequest[]
  httpPort: () => number
  /** The mapping table as the actions see it, expired entries purged. */
  table: () => IgdState
  /** A request came in; its response closed (for httpInFlight and maxConcurrentHttp). */
  started: () => void
  ended: () => void
}

/** Answers every request `server` receives, as `host` has it. */
export function serveIgd (server: Server, host: IgdHttpHost): void {
  server.on('request', (req, res) => {
    host.started()
    res.once('close', () => { host.ended() })
    const chunks: Buffer[] = []
    req.on('data', (chunk: Buffer) => chunks.push(chunk))
    req.on('end', () => {
      const handle = (): void => { if (!res.destroyed) answer(host, req, res, Buffer.concat(chunks).toString('utf8')) }
      if (host.quirks.httpDelayMs > 0) host.clock.setTimeout(handle, host.quirks.httpDelayMs).unref?.()
      else handle()
    })
  })
}

function answer (host: IgdHttpHost, req: IncomingMessage, res: ServerResponse, body: string): void {
  const { quirks, types, clock } = host
  // As inet_ntop writes the sender: no zone on a link-local address.
  const from = (req.socket.remoteAddress ?? '').replace(/^::ffff:/, '').replace(/%.*$/, '')
  const path = req.url ?? '/'
  const found = SCPD_PATHS[path as keyof typeof SCPD_PATHS]
  const scpd = found === 'WANIPv6FirewallControl' && !types.firewall ? undefined : found
  if (req.method === 'GET' && (path === '/rootDesc.xml' || scpd !== undefined)) {
    host.requests.push({ kind: 'http', what: 'GET', from, atMs: clock.now(), path })
    const controlBase = quirks.controlUrlHost === undefined ? '' : `http://${quirks.controlUrlHost}:${host.httpPort()}`
    const document = scpd !== undefined ? igdScpd(scpd, types.version) : igdDescription(types, quirks.firstWanDisconnected, controlBase)
    send(quirks, res, 200, document, 'text/xml; charset="utf-8"')
    return
  }
  const wan = types.controlPaths(quirks.firstWanDisconnected).indexOf(path)
  const urlService = wan !== -1 ? types.service : path === FIREWALL_CONTROL_PATH ? (types.firewall ? FIREWALL_SERVICE : undefined) : OTHER_CONTROL_PATHS[path]
  if (req.method !== 'POST' || urlService === undefined) {
    send(quirks, res, 404, 'not found', 'text/plain')
    return
  }
  let request
  try {
    request = parseSoapRequest(body)
  } catch {
    host.requests.push({ kind: 'http', what: 'garbage', from, atMs: clock.now(), path })
    send(quirks, res, 500, encodeSoapFault(UpnpErrorCode.InvalidAction), 'text/xml; charset="utf-8"')
    return
  }
  const entry: IgdRequest = { kind: 'http', what: request.action, from, atMs: clock.now(), path, service: request.serviceType, args: request.args }
  host.requests.push(entry)
  if (quirks.strictSoapAction && !hasExactSoapAction(req, `"${request.serviceType}#${request.action}"`)) {
    send(quirks, res, 200, LOGIN_PAGE, 'text/html')
    return
  }
  const soapAction = req.headers.soapaction
  // miniupnpd finds the action by its name alone; a stricter router wants this URL's service in
  // the namespace: pairing WANPPPConnection's control URL with WANIPConnection's type gets 401 (libtorrent#6611).
  if ((quirks.strictServiceType && request.serviceType !== urlService) || soapAction === undefined) {
    entry.fault = UpnpErrorCode.InvalidAction
    send(quirks, res, 500, encodeSoapFault(UpnpErrorCode.InvalidAction), 'text/xml; charset="utf-8"')
    return
  }
  if (request.action === 'AddAnyPortMapping' && host.igdVersion === 2 && quirks.resetAddAnyPortMapping) {
    req.socket.resetAndDestroy()
    return
  }
  if (request.action === 'DeletePortMappingRange' && quirks.rangeDeleteCrashAbove !== undefined && entriesInRange(host.table(), request.args) > quirks.rangeDeleteCrashAbove) {
    req.socket.resetAndDestroy()
    return
  }
  const planned = quirks.faultNext.findIndex((f) => f.action === request.action)
  const disconnected = quirks.firstWanDisconnected && wan === 0
  const state = host.table()
  const result = planned !== -1 ? quirks.faultNext.splice(planned, 1)[0]!.code : igdAction(state, request.action, Object.fromEntries(request.args), from, disconnected)
  const lost = quirks.applyThenResetNext.indexOf(request.action)
  if (lost !== -1) {
    quirks.applyThenResetNext.splice(lost, 1)
    req.socket.resetAndDestroy()
    return
  }
  if (typeof result === 'number') {
    entry.fault = result
    send(quirks, res, 500, encodeSoapFault(result), 'text/xml; charset="utf-8"')
  } else {
    // miniupnpd answers in the namespace it was asked in.
    const body = encodeSoapResponse(request.serviceType, request.action, result)
    send(quirks, res, 200, cdataListing(cutDescription(quirks, body, result), result), 'text/xml; charset="utf-8"')
  }
}

/** The control URLs of the services besides the WAN connection, and their service types. */
const OTHER_CONTROL_PATHS: Record<string, string> = {
  '/ctl/CmnIfCfg': 'urn:schemas-upnp-org:service:WANCommonInterfaceConfig:1',
  '/ctl/L3F': 'urn:schemas-upnp-org:service:Layer3Forwarding:1'
}

/** GetListOfPortMappings' NewPortListing as miniupnpd sends it: the document in a CDATA section, not escaped. */
function cdataListing (body: string, result: Array<[string, string]>): string {
  const listing = result.find(([name]) => name === 'NewPortListing')?.[1]
  if (listing === undefined) return body
  return body.replace(`<NewPortListing>${escapeXml(listing)}</NewPortListing>`, `<NewPortListing><![CDATA[${listing}]]></NewPortListing>`)
}

/** The reply with its description cut as `quirks.descriptionBytesKept` says, escaped text and all. */
function cutDescription (quirks: IgdQuirks, body: string, result: Array<[string, string]>): string {
  const kept = quirks.descriptionBytesKept
  const description = result.find(([name]) => name === 'NewPortMappingDescription')?.[1]
  if (kept === undefined || description === undefined) return body
  const element = `<NewPortMappingDescription>${escapeXml(description)}</NewPortMappingDescription>`
  const cut = Buffer.from(escapeXml(description), 'utf8').subarray(0, kept).toString('utf8')
  return body.replace(element, `<NewPortMappingDescription>${cut}</NewPortMappingDescription>`)
}

function send (quirks: IgdQuirks, res: ServerResponse, status: number, body: string, contentType: string): void {
  const bytes = Buffer.from(body, 'utf8')
  res.statusCode = status
  res.setHeader('Content-Type', contentType)
  res.setHeader('Connection', 'close')
  res.setHeader('Server', SERVER)
  if (quirks.chunkedResponses) {
    // Two chunks, so the framing is really exercised.
    res.write(bytes.subarray(0, bytes.length >> 1))
    res.end(bytes.subarray(bytes.length >> 1))
    return
  }
  res.setHeader('Content-Length', String(bytes.length))
  res.end(bytes)
}

const LOGIN_PAGE = '<!DOCTYPE html>\n<html><head><title>Login</title></head><body><form action="/login.cgi"><input type="password" name="pw"></form></body></html>\n'

/** Exactly one header named `SOAPAction` (this case) with exactly this value. */
function hasExactSoapAction (req: IncomingMessage, value: string): boolean {
  const raw = req.rawHeaders
  const found: Array<[string, string]> = []
  for (let i = 0; i + 1 < raw.length; i += 2) if (raw[i]!.toLowerCase() === 'soapaction') found.push([raw[i]!, raw[i + 1]!])
  return found.length === 1 && found[0]![0] === 'SOAPAction' && found[0]![1] === value
}

export async function startServer (address: string, port: number): Promise<Server> {
  const server = createServer()
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(port, address, () => {
      server.off('error', reject)
      resolve()
    })
  })
  return server
}

export async function stopServer (server: Server): Promise<void> {
  await new Promise<void>((resolve) => {
    server.close(() => { resolve() })
    server.closeAllConnections()
  })
}

/** Entries a DeletePortMappingRange request covers. */
function entriesInRange (state: IgdState, args: ReadonlyArray<readonly [string, string]>): number {
  const a = Object.fromEntries(args)
  const start = Number(a.NewStartPort)
  const end = Number(a.NewEndPort)
  return [...state.mappings.values()].filter((m) => m.protocol === a.NewProtocol && m.externalPort >= start && m.externalPort <= end).length
}
