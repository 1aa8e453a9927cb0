import { GatewayRefusedError, RemoteProtocolError, UsageError } from '../errors.js'
import type { CallOptions, Gateway, MapRequest, MapResult, PortMapping, TransportProtocol } from '../gateway.js'
import { createLogger } from '../log.js'
import { unspecifiedFor } from '../net/address.js'
import type { RequestOptions } from '../net/gateway-socket.js'
import { lowPortHint } from '../port-rules.js'
import { decodeNatPmpResponse, encodeNatPmpRequest } from '../natpmp/codec.js'
import { NatPmpResultCode, natPmpResultName } from '../natpmp/codes.js'
import { decodePcpResponse, encodePcpRequest, type PcpResponse } from '../pcp/codec.js'
import { IanaProtocol, PCP_VERSION, PcpOpcode, PcpResultCode, pcpResultName } from '../pcp/codes.js'
import { randomNonce } from '../pcp/nonce.js'
import { PortControlClient } from './client.js'
import { PortControlServer, type PortControlServerOptions } from './server.js'

export interface PortControlClientOptions extends PortControlServerOptions {
  /** The server to share with the other client of the family (discovery's); one of its own otherwise. */
  server?: PortControlServer | undefined
}

export type PcpClientOptions = PortControlClientOptions & {
  /** Source of mapping nonces; tests pass a deterministic one. */
  randomNonce?: () => Uint8Array
}

/** What a renewal or delete of a PCP mapping needs: the nonce the mapping was made with. */
export interface PcpSession { readonly nonce: Uint8Array, readonly requestedLifetimeSeconds: number }

export function isPcpSession (session: unknown): session is PcpSession {
  const s = session as Partial<PcpSession> | null | undefined
  return s?.nonce instanceof Uint8Array && s.nonce.length === 12 && typeof s.requestedLifetimeSeconds === 'number'
}

/**
 * A PCP client (RFC 6887) for MAP requests. Unlike NAT-PMP, replies carry the request's nonce,
 * so requests may run concurrently on the one socket.
 *
 * A server that only speaks NAT-PMP answers with NAT-PMP's UNSUPPORTED_VERSION; this client
 * reports that as a GatewayRefusedError with resultName 'UNSUPP_VERSION' so the caller can fall
 * back to NAT-PMP (RFC 6887 §9, RFC 6886 §1.1).
 */
export class PcpClient extends PortControlClient implements Gateway {
  readonly method = 'pcp' as const
  readonly #randomNonce: () => Uint8Array
  #externalAddress: string | undefined
  /** A nonce drawn while the ANNOUNCE was on its way, for the first MAP. */
  #spareNonce: Uint8Array | undefined
  readonly #options: PcpClientOptions

  constructor (options: PcpClientOptions) {
    // MAP replies are routed by nonce (see GatewaySocket#dispatch): 1,000 requests in flight
    // must not each decode every reply.
    super(options.gateway, options.server ?? new PortControlServer({ ...options, logger: options.logger ?? createLogger('pcp') }, mapReplyKey))
    this.#randomNonce = options.randomNonce ?? randomNonce
    this.#options = options
    // A reboot may come with a new address.
    this.server.onReset(() => { this.#externalAddress = undefined })
  }

  get #socket (): PortControlServer['socket'] { return this.server.socket }

  /** The host address this client sends from, when it was given one. */
  get localAddress (): string | undefined { return this.#options.localAddress }

  /** A client of the same server sending from `localAddress` (its own socket: a PCP MAP is for the sender's address, RFC 6887 §8.1). */
  forAddress (localAddress: string): PcpClient {
    const { server: _shared, ...options } = this.#options
    return new PcpClient({ ...options, localAddress })
  }

  /**
   * PCP has no request for the external address alone: it comes with each MAP reply. Before
   * the first mapping we ask with NAT-PMP's opcode 0 on the same port, which PCP servers that
   * descend from NAT-PMP servers (miniupnpd among them) also answer.
   */
  async externalAddress (options: CallOptions = {}): Promise<string> {
    if (this.#externalAddress !== undefined) return this.#externalAddress
    const label = 'PCP server, NAT-PMP external address'
    const response = await this.#socket.request(label, encodeNatPmpRequest({ opcode: 'external-address' }), (message) => {
      if (message[0] !== 0) return undefined
      try {
        const decoded = decodeNatPmpResponse(message)
        return decoded.opcode === 'external-address' || (decoded.opcode === 'error' && decoded.requestOpcode === 0) ? decoded : undefined
      } catch {
        return undefined
      }
    }, { ...options, observe: this.observe('natpmp') })
    if (response.opcode !== 'external-address') {
      this.countRefusal('natpmp', response.resultCode, natPmpResultName(response.resultCode))
      throw new GatewayRefusedError('natpmp', response.resultCode, natPmpResultName(response.resultCode), 'external address unavailable (asked through the PCP server)')
    }
    this.#externalAddress = response.externalAddress
    return response.externalAddress
  }

  async map (request: MapRequest, options: CallOptions = {}): Promise<MapResult> {
    const session: PcpSession = { nonce: this.#spareNonce ?? this.#randomNonce(), requestedLifetimeSeconds: request.lifetimeSeconds }
    this.#spareNonce = undefined
    const externalPort = request.suggestedExternalPort ?? request.internalPort
    const asked = { method: 'pcp' as const, protocol: request.protocol, internalPort: request.internalPort, externalPort, externalAddress: undefined, lifetimeSeconds: request.lifetimeSeconds, session }
    return await this.mapOrUncertain(asked, async (onSent) => await this.#map(session, request.protocol, request.internalPort, externalPort, request.lifetimeSeconds, { ...options, onSent }))
  }

  async renew (mapping: PortMapping, options: CallOptions = {}): Promise<PortMapping> {
    // Same nonce as the first request: a server binds the mapping to it and refuses a renewal
    // or delete with another (miniupnpd; tailscale#1080, #21127).
    const session = sessionOf(mapping)
    return await this.#map(session, mapping.protocol, mapping.internalPort, mapping.externalPort, session.requestedLifetimeSeconds, options)
  }

  async unmap (mapping: PortMapping, options: CallOptions = {}): Promise<void> {
    await this.#map(sessionOf(mapping), mapping.protocol, mapping.internalPort, 0, 0, { ...options, maxAttempts: 3 })
  }

  /**
   * An ANNOUNCE (RFC 6887 §14.1) costs the server one request and creates nothing: it tells
   * whether a PCP server is there, and resolves to false when it speaks only NAT-PMP.
   */
  async announce (options: CallOptions = {}): Promise<boolean> {
    const clientAddress = await this.#socket.localAddress()
    const payload = encodePcpRequest({ opcode: PcpOpcode.ANNOUNCE, lifetimeSeconds: 0, clientAddress, options: [] })
    // The CSPRNG's first use in a process (loading node:crypto) goes while the server answers.
    const call = { ...options, observe: this.observe('pcp'), onSent: () => { this.#spareNonce ??= this.#randomNonce() } }
    const reply = await this.#socket.request<PcpResponse | 'natpmp-only'>('PCP announce', payload, (message) => {
      if (message[0] === 0) return isNatPmpUnsupportedVersion(message) ? 'natpmp-only' : undefined
      try {
        const response = decodePcpResponse(message)
        return response.opcode === PcpOpcode.ANNOUNCE ? response : undefined
      } catch {
        return undefined
      }
    }, call)
    if (reply === 'natpmp-only') return false
    this.#checkEpoch(reply.epochSeconds)
    if (reply.resultCode === PcpResultCode.UNSUPP_VERSION) return false
    if (reply.resultCode !== PcpResultCode.SUCCESS) {
      this.countRefusal('pcp', reply.resultCode, pcpResultName(reply.resultCode))
      throw new GatewayRefusedError('pcp', reply.resultCode, pcpResultName(reply.resultCode), 'ANNOUNCE', reply.lifetimeSeconds)
    }
    return true
  }

  async #map (session: PcpSession, protocol: TransportProtocol, internalPort: number, suggestedExternalPort: number,
    lifetimeSeconds: number, options: RequestOptions): Promise<PortMapping> {
    const clientAddress = await this.#socket.localAddress()
    const ianaProtocol = IanaProtocol[protocol]
    const payload = encodePcpRequest({
      opcode: PcpOpcode.MAP,
      lifetimeSeconds,
      clientAddress,
      map: {
        nonce: session.nonce,
        protocol: ianaProtocol,
        internalPort,
        externalPort: suggestedExternalPort,
        // §11.1: the all-zeros address when we have no preference; the previous address when
        // we have one, so a renewal keeps it. A delete suggests all-zeros (erratum 3621).
        externalAddress: lifetimeSeconds === 0 ? unspecifiedFor(clientAddress) : this.#externalAddress ?? unspecifiedFor(clientAddress)
      },
      options: []
    })
    const label = `PCP ${lifetimeSeconds === 0 ? 'delete' : 'map'} ${protocol} ${internalPort}${lifetimeSeconds === 0 ? '' : ` lifetime ${lifetimeSeconds}`}`
    const reply = await this.#socket.request<PcpResponse | 'natpmp-only'>(label, payload, (message) => {
      if (message[0] === 0) return isNatPmpUnsupportedVersion(message) ? 'natpmp-only' : undefined
      let response: PcpResponse
      try {
        response = decodePcpResponse(message)
      } catch (err) {
        this.#socket.logger('%s: ignoring undecodable reply: %s', label, (err as Error).message)
        return undefined
      }
      if (response.opcode !== PcpOpcode.MAP) return undefined
      if (response.map === undefined) {
        // Only an error reply may omit the opcode data (e.g. UNSUPP_VERSION from a server
        // that cannot parse our version); it cannot be matched by nonce, so accept only those.
        return response.resultCode !== PcpResultCode.SUCCESS ? response : undefined
      }
      // §11.3: the reply must echo our nonce, protocol and internal port; anything else is
      // a stale or forged answer.
      const m = response.map
      if (!equalBytes(m.nonce, session.nonce) || m.protocol !== ianaProtocol || m.internalPort !== internalPort) return undefined
      return response
    }, { ...options, key: hex(session.nonce), observe: this.observe('pcp') })

    if (reply === 'natpmp-only') {
      throw new GatewayRefusedError('pcp', PcpResultCode.UNSUPP_VERSION, pcpResultName(PcpResultCode.UNSUPP_VERSION), 'the server speaks only NAT-PMP')
    }
    this.#checkEpoch(reply.epochSeconds)
    this.server.logger('%s: %s (%d), lifetime %d s%s, epoch %d s', label, pcpResultName(reply.resultCode), reply.resultCode, reply.lifetimeSeconds,
      reply.map === undefined ? '' : `, external ${reply.map.externalAddress}:${reply.map.externalPort}`, reply.epochSeconds)
    if (reply.resultCode !== PcpResultCode.SUCCESS) {
      this.countRefusal('pcp', reply.resultCode, pcpResultName(reply.resultCode))
      // NOT_AUTHORIZED for a low port: the router's rules, said plainly (port-rules.ts; miniupnpd pcpserver.c).
      const why = reply.version !== PCP_VERSION ? `server speaks version ${reply.version}` : reply.resultCode === PcpResultCode.NOT_AUTHORIZED && lifetimeSeconds !== 0 ? lowPortHint(internalPort) : undefined
      throw new GatewayRefusedError('pcp', reply.resultCode, pcpResultName(reply.resultCode), why, reply.lifetimeSeconds)
    }
    if (reply.map === undefined) throw new RemoteProtocolError(`${label}: success reply without MAP data`)
    // A success that grants nothing would be a mapping that is already gone (lifetime 0 deletes:
    // §11.3) or that no peer can reach (port 0); taken as granted, a renewal at half of 0 s
    // would follow at once, and again. The gateway is broken or hostile: say so.
    if (lifetimeSeconds !== 0 && (reply.lifetimeSeconds === 0 || reply.map.externalPort === 0)) {
      throw new RemoteProtocolError(`${label}: the gateway answered success with ${reply.lifetimeSeconds === 0 ? 'lifetime 0' : 'external port 0'}, which grants nothing`)
    }
    const grantedAtMs = this.#socket.clock.now()
    if (lifetimeSeconds !== 0) this.#externalAddress = reply.map.externalAddress
    return {
      method: 'pcp',
      protocol,
      internalPort,
      externalPort: reply.map.externalPort,
      externalAddress: reply.map.externalAddress,
      lifetimeSeconds: reply.lifetimeSeconds,
      grantedAtMs,
      expiresAtMs: grantedAtMs + reply.lifetimeSeconds * 1000,
      session
    }
  }

  #checkEpoch (epochSeconds: number): void {
    this.server.observeEpoch('pcp', epochSeconds)
  }
}

/** A NAT-PMP-only server's answer to a version it does not know (RFC 6886 §3.5, RFC 6887 §9). */
function isNatPmpUnsupportedVersion (message: Uint8Array): boolean {
  try {
    const decoded = decodeNatPmpResponse(message)
    return decoded.opcode === 'error' && decoded.resultCode === NatPmpResultCode.UNSUPPORTED_VERSION
  } catch {
    return false
  }
}

function sessionOf (mapping: PortMapping): PcpSession {
  if (mapping.method !== 'pcp' || !isPcpSession(mapping.session)) throw new UsageError('not a mapping made by a PCP client')
  return mapping.session
}

/**
 * The nonce of a MAP reply, as the key the shared socket routes it by, read without decoding:
 * RFC 6887 §7.2 (24-byte header, R bit set in the opcode) and §11.1 (the nonce opens the MAP
 * data). Undefined for anything else, which then reaches every request (an error reply without
 * opcode data, an ANNOUNCE, NAT-PMP).
 */
export function mapReplyKey (message: Uint8Array): string | undefined {
  if (message.length < 36 || message[0] !== PCP_VERSION || message[1] !== (0x80 | PcpOpcode.MAP)) return undefined
  return hex(message.subarray(24, 36))
}

function hex (bytes: Uint8Array): string {
  let out = ''
  for (const b of bytes) out += b.toString(16).padStart(2, '0')
  return out
}

function equalBytes (a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i])
}
