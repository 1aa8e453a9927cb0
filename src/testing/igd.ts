import { createSocket, type RemoteInfo, type Socket } from 'node:dgram'
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { systemClock, type Clock } from '../clock.js'
import { UpnpErrorCode } from '../upnp/codes.js'
import { encodeSoapFault, encodeSoapResponse, escapeXml, parseSoapRequest } from '../upnp/soap.js'
import { encodeNotify, encodeSsdpResponse, parseSsdpMessage } from '../upnp/ssdp-codec.js'
import type { SsdpTarget } from '../upnp/ssdp.js'
import { igdAction } from './igd-actions.js'
import { igdDescription, igdTypes, type IgdTypes } from './igd-description.js'

/**
 * A UPnP IGD (v1 or v2) on loopback: an SSDP responder, an HTTP server with the device
 * description, and SOAP control of WANIPConnection with its own mapping table. It behaves like
 * miniupnpd where nothing else is asked (the 1024-65535 rule, secure mode, the v2 lease cap, 718
 * on v1 where v2 says 606) and counts every request, so a test can assert what a client achieved
 * and what it cost the router. `quirks` switches on the router behaviours of
 * shared/reference/router-quirks-and-anchors.md §3 that concern UPnP.
 *
 * SSDP has two sockets, both on the IGD's address with ephemeral ports: `ssdpUnicastTarget`
 * stands for gateway:1900, `ssdpMulticastTarget` for the group 239.255.255.250:1900 (nothing is
 * multicast). Point a client's gateway SSDP port at the first and its multicast target at the second.
 */

export interface SimulatedIgdOptions {
  /** Address of every socket. Default 127.0.0.1. */
  address?: string
  /** Address of the HTTP server, when it should differ (a responder that is not the gateway). */
  httpAddress?: string
  /** The description served: InternetGatewayDevice:1 with WANIPConnection:1, or :2 with :2. Default 2. */
  igdVersion?: 1 | 2
  /** The WAN address reported. Default 203.0.113.1 (TEST-NET-3). '' or '0.0.0.0' for a router without one. */
  externalAddress?: string
  /** BOOTID.UPNP.ORG of the first boot. Default 1. */
  bootId?: number
  /** SSDP answer delay on the IGD's clock; miniupnpd waits about 50 ms. Default 0. */
  ssdpDelayMs?: number
  /** Where NOTIFY announcements go (tests point an SsdpListener here). */
  notifyTargets?: SsdpTarget[]
  clock?: Clock
}

/** Router behaviours a test switches on. All off by default (except `lowPortsRefused`). */
export interface IgdQuirks {
  /** Answers multicast M-SEARCH only, never unicast to gateway:1900 (Eero: tailscale#3197). */
  ignoreUnicastSsdp: boolean
  /** Answers nothing over SSDP at all. */
  silentSsdp: boolean
  /** SSDP replies come from an ephemeral port, not the one searched (TP-Link ER605: tailscale#7377, #10771). */
  replyFromEphemeralPort: boolean
  /** The host named in LOCATION, instead of the HTTP server's (a HONOR router says 169.254.x: home-assistant#63745). */
  locationHost: string | undefined
  /** 725 OnlyPermanentLeasesSupported for any lease but 0 (MikroTik: tailscale#9343). */
  onlyPermanentLeases: boolean
  /** 402 InvalidArgs for any lease but 0 (ARRIS NVG578LX: tailscale#15223). */
  invalidArgsOnLease: boolean
  /** Answer 718 ConflictInMappingEntry to this many more AddPortMapping requests. */
  conflictNext: number
  /** 402 unless NewProtocol is exactly "TCP" or "UDP" (TP-Link ER605: tailscale#7377, PR #7458). */
  rejectLowerCaseProtocol: boolean
  /** Two WAN connection services, the first disconnected with no address (MikroTik CHR 7.10: tailscale#8364). */
  firstWanDisconnected: boolean
  /** AddAnyPortMapping is answered by resetting the connection (Ubee EVW32C-0S: miniupnp#528). */
  resetAddAnyPortMapping: boolean
  /** The SOAPAction header must be named and quoted exactly, or a login page comes back (goupnp PR #5, jupnp#120). */
  strictSoapAction: boolean
  /** Bodies sent with chunked transfer encoding (BiPAC 7404VNOX, per miniupnpc's minisoap.c). */
  chunkedResponses: boolean
  /** Refuse external and internal ports below 1024, as miniupnpd's default rules do (606 on v2, 718 on v1; AddAnyPortMapping walks past a low external port, and answers 728 for a low internal one). Default true. */
  lowPortsRefused: boolean
  /** The description names absolute control URLs on this host (a description that points elsewhere: the SSRF case). */
  controlUrlHost: string | undefined
  /** Faults to answer, in order, to the next requests for their action (any UPnP error code). */
  faultNext: Array<{ action: string, code: number }>
  /** GetGenericPortMappingEntry answers 713 even at index 0: listing unsupported (Sagemcom F@st 5684, miniupnp#665). */
  noListing: boolean
  /** A leased add (lease not 0) is answered with success and kept nowhere (old DD-WRT: tailscale#18196, quirk 10). */
  dropLeasedEntries: boolean
  /** Entries are kept, listed and "forwarded" with the external port as the internal one (Orange FunBox6, SoftAtHome: tailscale#14344, quirk 28). */
  listExternalAsInternalPort: boolean
  /** The next request for each action listed is carried out, then the connection reset instead of the answer: a lost reply (quirk 11). */
  applyThenResetNext: string[]
  /** GetStatusInfo says Disconnected although mappings work (a router on :5351: i2pd PR #2092, quirk 19). */
  statusDisconnected: boolean
  /** Every HTTP request is answered after this delay, on the IGD's clock (a slow router; for tests that interrupt a client mid-request). */
  httpDelayMs: number
  /**
   * An add over an existing entry keeps it listed but marks it `stale` (forwarding dead); only a
   * delete and a fresh add make it work (Technicolor CGA4131COM, RDK-B: tailscale#21208, quirk 27).
   */
  staleOnOverwrite: boolean
  /**
   * Descriptions are read back cut after this many bytes of the text as it was sent (escaped,
   * UTF-8), entities and all, so the reply may not be XML: miniupnpd up to 2.3.10 copies them
   * into `char desc[64]` (upnpsoap.c; the lab's 2.3.1 answered `&am` then stack bytes).
   */
  descriptionBytesKept: number | undefined
}

export interface SimulatedIgdMapping {
  externalPort: number
  protocol: 'TCP' | 'UDP'
  internalClient: string
  internalPort: number
  description: string
  /** As granted; 0 = permanent. */
  leaseSeconds: number
  expiresAtMs: number
  enabled: boolean
  /** Listed, but no longer forwarded: re-added over itself on a router with `staleOnOverwrite` (quirk 27). */
  stale?: boolean
}

export interface IgdRequest {
  kind: 'ssdp' | 'http'
  /** For SSDP: which socket it reached. */
  via?: 'unicast' | 'multicast'
  /** The SSDP search target, or the SOAP action ('GET' for a description). */
  what: string
  from: string
  atMs: number
  /** SOAP arguments in order. */
  args?: Array<[string, string]>
  /** The UPnP error code answered, if any. */
  fault?: number
}

const SERVER = 'Linux/6.1 UPnP/1.1 natmapper-SimulatedIgd/0.1'
/** Each simulated device has its own UUID, as two real devices do: SSDP clients tell answers apart by it. */
let devices = 0
const nextUuid = (): string => `2f402f80-da50-11e1-9b23-${(0x0019000bf1ab + devices++).toString(16).padStart(12, '0')}`

export class SimulatedIgd {
  readonly quirks: IgdQuirks = {
    ignoreUnicastSsdp: false,
    silentSsdp: false,
    replyFromEphemeralPort: false,
    locationHost: undefined,
    onlyPermanentLeases: false,
    invalidArgsOnLease: false,
    conflictNext: 0,
    rejectLowerCaseProtocol: false,
    firstWanDisconnected: false,
    resetAddAnyPortMapping: false,
    strictSoapAction: false,
    chunkedResponses: false,
    lowPortsRefused: true,
    controlUrlHost: undefined,
    faultNext: [],
    noListing: false,
    dropLeasedEntries: false,
    listExternalAsInternalPort: false,
    applyThenResetNext: [],
    statusDisconnected: false,
    httpDelayMs: 0,
    staleOnOverwrite: false,
    descriptionBytesKept: undefined
  }

  /** Every request, in order. */
  readonly requests: IgdRequest[] = []
  /** The most HTTP requests that were being handled at once (with httpDelayMs, it shows what a client sends together). */
  maxConcurrentHttp = 0
  #httpInFlight = 0
  externalAddress: string
  notifyTargets: SsdpTarget[]
  readonly igdVersion: 1 | 2
  bootId: number

  readonly #unicast: Socket
  readonly #multicast: Socket
  readonly #ephemeral: Socket
  readonly #clock: Clock
  readonly #httpAddress: string
  readonly #ssdpDelayMs: number
  readonly #types: IgdTypes
  /** The device UUID in its SSDP USNs; each simulated device has its own. */
  readonly uuid = nextUuid()
  #server: Server
  #mappings = new Map<string, SimulatedIgdMapping>()
  #closed = false

  private constructor (sockets: [Socket, Socket, Socket], server: Server, options: SimulatedIgdOptions) {
    ;[this.#unicast, this.#multicast, this.#ephemeral] = sockets
    this.#server = server
    this.#clock = options.clock ?? systemClock
    this.#httpAddress = options.httpAddress ?? options.address ?? '127.0.0.1'
    this.#ssdpDelayMs = options.ssdpDelayMs ?? 0
    this.igdVersion = options.igdVersion ?? 2
    this.#types = igdTypes(this.igdVersion)
    this.externalAddress = options.externalAddress ?? '203.0.113.1'
    this.notifyTargets = options.notifyTargets ?? []
    this.bootId = options.bootId ?? 1
    this.#unicast.on('message', (message, rinfo) => { this.#onSsdp(message, rinfo, 'unicast') })
    this.#multicast.on('message', (message, rinfo) => { this.#onSsdp(message, rinfo, 'multicast') })
    this.#listen(server)
  }

  static async start (options: SimulatedIgdOptions = {}): Promise<SimulatedIgd> {
    const address = options.address ?? '127.0.0.1'
    const sockets = [createSocket('udp4'), createSocket('udp4'), createSocket('udp4')] as [Socket, Socket, Socket]
    await Promise.all(sockets.map(async (s) => { await bindUdp(s, address) }))
    const server = await startServer(options.httpAddress ?? address, 0)
    return new SimulatedIgd(sockets, server, options)
  }

  /** Stands for gateway:1900. */
  get ssdpUnicastTarget (): SsdpTarget { return udpAddress(this.#unicast) }
  /** Stands for 239.255.255.250:1900. */
  get ssdpMulticastTarget (): SsdpTarget { return udpAddress(this.#multicast) }
  /** The address the IGD's SSDP sockets are on: the "gateway". */
  get address (): string { return this.#unicast.address().address }
  get httpPort (): number { return (this.#server.address() as AddressInfo).port }
  get descriptionUrl (): string { return `http://${this.#httpAddress}:${this.httpPort}/rootDesc.xml` }
  get serviceType (): string { return this.#types.service }

  /** HTTP requests received and not yet answered (with httpDelayMs: what a client has in flight). */
  get httpInFlight (): number { return this.#httpInFlight }

  /** Live mappings, expired ones purged first. */
  mappings (): SimulatedIgdMapping[] {
    this.#purge()
    return [...this.#mappings.values()]
  }

  /** Requests of one kind: SSDP searches (optionally per socket) or SOAP actions (optionally one action). */
  count (kind: 'ssdp' | 'http', what?: string): number {
    return this.requests.filter((r) => r.kind === kind && (what === undefined || r.what === what || r.via === what)).length
  }

  /** The router forgets its mappings without rebooting: ASUS purges its table every 600 s (tailscale#10597, quirk 26). */
  dropMappings (): void {
    this.#mappings.clear()
  }

  /**
   * Another host holds this external port (for conflicts); or, with our own address as
   * `internalClient`, another program of our host does, forwarding to `entry.internalPort`.
   */
  occupy (externalPort: number, protocol: 'TCP' | 'UDP', internalClient = '192.0.2.99',
    entry: { internalPort?: number, description?: string } = {}): void {
    this.#mappings.set(`${protocol}/${externalPort}`, {
      externalPort, protocol, internalClient, internalPort: entry.internalPort ?? externalPort, description: entry.description ?? 'another host', leaseSeconds: 0, expiresAtMs: Infinity, enabled: true
    })
  }

  /**
   * A reboot: ssdp:byebye, the mapping table lost, a new BOOTID, the HTTP server back on a new
   * port (unless `sameHttpPort`), then ssdp:alive with the new LOCATION: what miniupnpd does (LAB.md).
   */
  async restart (options: { sameHttpPort?: boolean } = {}): Promise<void> {
    this.#notify('ssdp:byebye')
    const port = options.sameHttpPort === true ? this.httpPort : 0
    await stopServer(this.#server)
    this.#mappings.clear()
    this.bootId++
    this.#server = await startServer(this.#httpAddress, port)
    this.#listen(this.#server)
    this.announce()
  }

  /** Sends ssdp:alive for the root device, the IGD and its WAN service to `notifyTargets`. */
  announce (): void {
    this.#notify('ssdp:alive')
  }

  async close (): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    await Promise.all([
      stopServer(this.#server),
      ...[this.#unicast, this.#multicast, this.#ephemeral].map(async (s) => { await new Promise<void>((resolve) => { s.close(() => { resolve() }) }) })
    ])
  }

  #notify (nts: 'ssdp:alive' | 'ssdp:byebye'): void {
    if (this.#closed) return
    for (const nt of ['upnp:rootdevice', this.#types.device, this.#types.service]) {
      const usn = `uuid:${this.uuid}::${nt}`
      const packet = nts === 'ssdp:alive'
        ? encodeNotify({ nts, nt, usn, location: this.#location(), server: SERVER, bootId: this.bootId, configId: 1 })
        : encodeNotify({ nts, nt, usn, bootId: this.bootId, configId: 1 })
      for (const target of this.notifyTargets) this.#unicast.send(packet, target.port, target.address)
    }
  }

  #location (): string {
    return `http://${this.quirks.locationHost ?? this.#httpAddress}:${this.httpPort}/rootDesc.xml`
  }

  #onSsdp (message: Buffer, rinfo: RemoteInfo, via: 'unicast' | 'multicast'): void {
    let parsed
    try {
      parsed = parseSsdpMessage(new Uint8Array(message.buffer, message.byteOffset, message.byteLength))
    } catch {
      return
    }
    if (parsed.kind !== 'm-search') return
    this.requests.push({ kind: 'ssdp', via, what: parsed.st, from: rinfo.address, atMs: this.#clock.now() })
    if (this.quirks.silentSsdp || (via === 'unicast' && this.quirks.ignoreUnicastSsdp)) return
    if (!this.#types.matches(parsed.st)) return
    const reply = encodeSsdpResponse({
      location: this.#location(),
      st: parsed.st,
      usn: parsed.st.startsWith('uuid:') ? parsed.st : `uuid:${this.uuid}::${parsed.st}`,
      server: SERVER,
      bootId: this.bootId,
      configId: 1
    })
    const socket = this.quirks.replyFromEphemeralPort ? this.#ephemeral : via === 'unicast' ? this.#unicast : this.#multicast
    const send = (): void => { if (!this.#closed) socket.send(reply, rinfo.port, rinfo.address) }
    if (this.#ssdpDelayMs > 0) this.#clock.setTimeout(send, this.#ssdpDelayMs)
    else send()
  }

  #listen (server: Server): void {
    server.on('request', (req, res) => {
      this.maxConcurrentHttp = Math.max(this.maxConcurrentHttp, ++this.#httpInFlight)
      res.once('close', () => { this.#httpInFlight-- })
      const chunks: Buffer[] = []
      req.on('data', (chunk: Buffer) => chunks.push(chunk))
      req.on('end', () => {
        const handle = (): void => { if (!res.destroyed) this.#onHttp(req, res, Buffer.concat(chunks).toString('utf8')) }
        if (this.quirks.httpDelayMs > 0) this.#clock.setTimeout(handle, this.quirks.httpDelayMs).unref?.()
        else handle()
      })
    })
  }

  #onHttp (req: IncomingMessage, res: ServerResponse, body: string): void {
    const from = (req.socket.remoteAddress ?? '').replace(/^::ffff:/, '')
    const path = req.url ?? '/'
    if (req.method === 'GET' && path === '/rootDesc.xml') {
      this.requests.push({ kind: 'http', what: 'GET', from, atMs: this.#clock.now() })
      const controlBase = this.quirks.controlUrlHost === undefined ? '' : `http://${this.quirks.controlUrlHost}:${this.httpPort}`
      this.#send(res, 200, igdDescription(this.#types, this.quirks.firstWanDisconnected, controlBase), 'text/xml; charset="utf-8"')
      return
    }
    const wan = this.#types.controlPaths(this.quirks.firstWanDisconnected).indexOf(path)
    if (req.method !== 'POST' || wan === -1) {
      this.#send(res, 404, 'not found', 'text/plain')
      return
    }
    let request
    try {
      request = parseSoapRequest(body)
    } catch {
      this.requests.push({ kind: 'http', what: 'garbage', from, atMs: this.#clock.now() })
      this.#send(res, 500, encodeSoapFault(UpnpErrorCode.InvalidAction), 'text/xml; charset="utf-8"')
      return
    }
    const entry: IgdRequest = { kind: 'http', what: request.action, from, atMs: this.#clock.now(), args: request.args }
    this.requests.push(entry)
    if (this.quirks.strictSoapAction && !hasExactSoapAction(req, `"${request.serviceType}#${request.action}"`)) {
      this.#send(res, 200, LOGIN_PAGE, 'text/html')
      return
    }
    const soapAction = req.headers.soapaction
    // The action's namespace must be this URL's service: pairing WANPPPConnection's control URL
    // with WANIPConnection's type gets 401 (libtorrent#6611).
    if (request.serviceType !== this.#types.service || soapAction === undefined) {
      entry.fault = UpnpErrorCode.InvalidAction
      this.#send(res, 500, encodeSoapFault(UpnpErrorCode.InvalidAction), 'text/xml; charset="utf-8"')
      return
    }
    if (request.action === 'AddAnyPortMapping' && this.igdVersion === 2 && this.quirks.resetAddAnyPortMapping) {
      req.socket.resetAndDestroy()
      return
    }
    const planned = this.quirks.faultNext.findIndex((f) => f.action === request.action)
    const disconnected = this.quirks.firstWanDisconnected && wan === 0
    this.#purge()
    const state = { igdVersion: this.igdVersion, externalAddress: this.externalAddress, quirks: this.quirks, mappings: this.#mappings, nowMs: this.#clock.now() }
    const result = planned !== -1 ? this.quirks.faultNext.splice(planned, 1)[0]!.code : igdAction(state, request.action, Object.fromEntries(request.args), from, disconnected)
    const lost = this.quirks.applyThenResetNext.indexOf(request.action)
    if (lost !== -1) {
      this.quirks.applyThenResetNext.splice(lost, 1)
      req.socket.resetAndDestroy()
      return
    }
    if (typeof result === 'number') {
      entry.fault = result
      this.#send(res, 500, encodeSoapFault(result), 'text/xml; charset="utf-8"')
    } else {
      this.#send(res, 200, this.#cutDescription(encodeSoapResponse(this.#types.service, request.action, result), result), 'text/xml; charset="utf-8"')
    }
  }

  /** The reply with its description cut as `quirks.descriptionBytesKept` says, escaped text and all. */
  #cutDescription (body: string, result: Array<[string, string]>): string {
    const kept = this.quirks.descriptionBytesKept
    const description = result.find(([name]) => name === 'NewPortMappingDescription')?.[1]
    if (kept === undefined || description === undefined) return body
    const element = `<NewPortMappingDescription>${escapeXml(description)}</NewPortMappingDescription>`
    const cut = Buffer.from(escapeXml(description), 'utf8').subarray(0, kept).toString('utf8')
    return body.replace(element, `<NewPortMappingDescription>${cut}</NewPortMappingDescription>`)
  }

  #send (res: ServerResponse, status: number, body: string, contentType: string): void {
    const bytes = Buffer.from(body, 'utf8')
    res.statusCode = status
    res.setHeader('Content-Type', contentType)
    res.setHeader('Connection', 'close')
    res.setHeader('Server', SERVER)
    if (this.quirks.chunkedResponses) {
      // Two chunks, so the framing is really exercised.
      res.write(bytes.subarray(0, bytes.length >> 1))
      res.end(bytes.subarray(bytes.length >> 1))
      return
    }
    res.setHeader('Content-Length', String(bytes.length))
    res.end(bytes)
  }

  #purge (): void {
    const now = this.#clock.now()
    for (const [key, m] of this.#mappings) if (m.expiresAtMs <= now) this.#mappings.delete(key)
  }
}

const LOGIN_PAGE = '<!DOCTYPE html>\n<html><head><title>Login</title></head><body><form action="/login.cgi"><input type="password" name="pw"></form></body></html>\n'

/** Exactly one header named `SOAPAction` (this case) with exactly this value. */
function hasExactSoapAction (req: IncomingMessage, value: string): boolean {
  const raw = req.rawHeaders
  const found: Array<[string, string]> = []
  for (let i = 0; i + 1 < raw.length; i += 2) if (raw[i]!.toLowerCase() === 'soapaction') found.push([raw[i]!, raw[i + 1]!])
  return found.length === 1 && found[0]![0] === 'SOAPAction' && found[0]![1] === value
}

function udpAddress (socket: Socket): SsdpTarget {
  const { address, port } = socket.address()
  return { address, port }
}

async function bindUdp (socket: Socket, address: string): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    socket.once('error', reject)
    socket.bind(0, address, () => {
      socket.off('error', reject)
      resolve()
    })
  })
}

async function startServer (address: string, port: number): Promise<Server> {
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

async function stopServer (server: Server): Promise<void> {
  await new Promise<void>((resolve) => {
    server.close(() => { resolve() })
    server.closeAllConnections()
  })
}
