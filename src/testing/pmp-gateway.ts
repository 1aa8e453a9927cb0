import { createSocket, type RemoteInfo, type Socket } from 'node:dgram'
import { isIPv6 } from 'node:net'
import { systemClock, type Clock } from '../clock.js'
import type { TransportProtocol } from '../gateway.js'
import { decodeNatPmpRequest, encodeNatPmpResponse, type NatPmpResponse } from '../natpmp/codec.js'
import { NatPmpResultCode } from '../natpmp/codes.js'
import { decodePcpRequest, encodePcpResponse, type PcpRequest, type PcpResponse } from '../pcp/codec.js'
import { IanaProtocol, PCP_VERSION, PcpOpcode, PcpResultCode } from '../pcp/codes.js'
import { MalformedPacketError } from '../errors.js'

/**
 * A NAT-PMP (RFC 6886) and PCP (RFC 6887) gateway on one UDP socket, as miniupnpd serves both
 * on port 5351. It keeps its own mapping table, enforces the PCP nonce on renew and delete,
 * counts every request, and can be told to misbehave (see `faults`), so tests can assert both
 * what a client achieved and what it cost the router.
 */

export interface SimulatedPmpGatewayOptions {
  /** Address to bind; default 127.0.0.1. */
  address?: string
  /** Port to bind; default 0 (any free port). */
  port?: number
  /** The WAN address the gateway reports. Default 11.0.0.1, a public address as the lab uses (never contacted). */
  externalAddress?: string
  /** Answer PCP (version 2). When off, PCP requests get NAT-PMP's UNSUPPORTED_VERSION. Default true. */
  pcp?: boolean
  /** Answer NAT-PMP (version 0). When off, NAT-PMP requests get PCP's UNSUPP_VERSION. Default true. */
  natpmp?: boolean
  /** PCP lifetime clamp; miniupnpd's defaults are 120 and 86400. */
  minLifetimeSeconds?: number
  maxLifetimeSeconds?: number
  /** External ports the gateway may hand out; miniupnpd's sample config allows 1024-65535. */
  minExternalPort?: number
  maxExternalPort?: number
  /** Refuse PCP renewals that carry another nonce (miniupnpd refuses deletes; we default to both). */
  enforceNonceOnRenew?: boolean
  /**
   * A second address to bind, for `faults.wrongSourceAddress`: answers then come from another
   * host, as a LAN host spoofing the gateway would send them (e.g. 127.0.0.2; Linux has all of
   * 127.0.0.0/8 on loopback). Default: none.
   */
  spoofAddress?: string
  clock?: Clock
}

export interface SimulatedMapping {
  protocol: TransportProtocol
  clientAddress: string
  internalPort: number
  externalPort: number
  lifetimeSeconds: number
  expiresAtMs: number
  /** Hex of the PCP nonce, or undefined for a NAT-PMP mapping. */
  nonce: string | undefined
  via: 'natpmp' | 'pcp'
}

export interface ReceivedRequest {
  via: 'natpmp' | 'pcp' | 'garbage'
  from: string
  atMs: number
  /** A short description, e.g. "MAP tcp 7001 lifetime 7200". */
  summary: string
}

/** Switches a test flips to make the gateway misbehave. All off by default. */
export interface PmpFaults {
  /** Answer nothing at all. */
  silent: boolean
  /** Drop this many incoming requests before answering again (lost packets). */
  dropNext: number
  /** Answer after this delay, on the gateway's clock. */
  delayMs: number
  /** Send a garbage datagram before every real answer. */
  garbageFirst: boolean
  /** Answer from another socket (another source port), as a spoofer or a confused router would. */
  wrongSource: boolean
  /** Refuse every mapping request with this result code (PCP or NAT-PMP code space by request). */
  refuseWith: { pcp?: number, natpmp?: number, lifetimeSeconds?: number } | undefined
  /** Grant at most this lifetime, whatever was asked. */
  capLifetimeSeconds: number | undefined
  /**
   * Answer NAT-PMP external-address requests with this result code, as miniupnpd answers
   * NETWORK_FAILURE (3) when its WAN address is private or reserved (double NAT).
   */
  externalAddressResult: number | undefined
  /** Answer from `spoofAddress` (another host) instead of the gateway's address. Needs that option. */
  wrongSourceAddress: boolean
  /**
   * Answer every PCP request with ADDRESS_MISMATCH, as a server does when another NAT between
   * client and server rewrote the source address (RFC 6887 §8.3; quirk 24: tailscale PR #3397).
   */
  addressMismatch: boolean
  /**
   * Replaces each answer with what this returns: one datagram, several, or none (undefined). It
   * sees the request and the answer the gateway would have sent (undefined when it would send
   * none), so a test can send garbage, a wrong opcode, another nonce, absurd lifetimes, floods.
   * The gateway's table is updated as for the real answer.
   */
  mangle: ((answer: Uint8Array | undefined, request: Uint8Array) => Uint8Array | Uint8Array[] | undefined) | undefined
}

export class SimulatedPmpGateway {
  readonly faults: PmpFaults = {
    silent: false, dropNext: 0, delayMs: 0, garbageFirst: false, wrongSource: false, refuseWith: undefined, capLifetimeSeconds: undefined, externalAddressResult: undefined,
    wrongSourceAddress: false, addressMismatch: false, mangle: undefined
  }

  /** Every datagram received, in order. */
  readonly received: ReceivedRequest[] = []
  externalAddress: string

  readonly #socket: Socket
  readonly #spoofSocket: Socket
  readonly #otherHostSocket: Socket | undefined
  readonly #clock: Clock
  readonly #options: Required<Omit<SimulatedPmpGatewayOptions, 'clock' | 'address' | 'port' | 'externalAddress' | 'spoofAddress'>>
  #mappings = new Map<string, SimulatedMapping>()
  #epochStartMs: number
  #closed = false

  private constructor (socket: Socket, spoofSocket: Socket, otherHostSocket: Socket | undefined, options: SimulatedPmpGatewayOptions) {
    this.#socket = socket
    this.#spoofSocket = spoofSocket
    this.#otherHostSocket = otherHostSocket
    this.#clock = options.clock ?? systemClock
    this.externalAddress = options.externalAddress ?? '11.0.0.1'
    this.#options = {
      pcp: options.pcp ?? true,
      natpmp: options.natpmp ?? true,
      minLifetimeSeconds: options.minLifetimeSeconds ?? 120,
      maxLifetimeSeconds: options.maxLifetimeSeconds ?? 86400,
      minExternalPort: options.minExternalPort ?? 1024,
      maxExternalPort: options.maxExternalPort ?? 65535,
      enforceNonceOnRenew: options.enforceNonceOnRenew ?? true
    }
    this.#epochStartMs = this.#clock.now()
    socket.on('message', (message, rinfo) => { this.#onMessage(message, rinfo) })
  }

  static async start (options: SimulatedPmpGatewayOptions = {}): Promise<SimulatedPmpGateway> {
    const address = options.address ?? '127.0.0.1'
    const type = isIPv6(address) ? 'udp6' : 'udp4'
    const socket = createSocket(type)
    const spoof = createSocket(type)
    const otherHost = options.spoofAddress === undefined ? undefined : createSocket(isIPv6(options.spoofAddress) ? 'udp6' : 'udp4')
    try {
      await Promise.all([
        bind(socket, address, options.port ?? 0),
        bind(spoof, address, 0),
        ...(otherHost === undefined ? [] : [bind(otherHost, options.spoofAddress!, 0)])
      ])
    } catch (err) {
      for (const s of [socket, spoof, otherHost]) s?.close()
      throw err
    }
    return new SimulatedPmpGateway(socket, spoof, otherHost, options)
  }

  get address (): string { return this.#socket.address().address }
  get port (): number { return this.#socket.address().port }

  /** Requests received per protocol, garbage included. */
  get requestCount (): number { return this.received.length }
  countRequests (via: ReceivedRequest['via']): number {
    return this.received.filter((r) => r.via === via).length
  }

  /** Live mappings (expired ones are purged first). */
  mappings (): SimulatedMapping[] {
    this.#purgeExpired()
    return [...this.#mappings.values()]
  }

  /** A reboot: the epoch starts again from 0 and, unless told otherwise, every mapping is lost. */
  restart (options: { keepMappings?: boolean } = {}): void {
    this.#epochStartMs = this.#clock.now()
    if (options.keepMappings !== true) this.#mappings.clear()
  }

  /** The router forgets its mappings without rebooting (a table purge). */
  dropMappings (): void {
    this.#mappings.clear()
  }

  /**
   * Sends what a gateway multicasts after a restart or an address change: a PCP ANNOUNCE
   * (RFC 6887 §14.1.3) and a NAT-PMP external-address packet (RFC 6886 §3.2.1), here unicast to
   * `target` since tests live on loopback.
   */
  announce (target: { address: string, port: number }): void {
    const epochSeconds = this.epochSeconds
    if (this.#options.pcp) {
      this.#socket.send(encodePcpResponse({ version: PCP_VERSION, opcode: PcpOpcode.ANNOUNCE, resultCode: 0, lifetimeSeconds: 0, epochSeconds, options: [] }), target.port, target.address)
    }
    if (this.#options.natpmp) {
      this.#socket.send(encodeNatPmpResponse({ opcode: 'external-address', resultCode: 0, epochSeconds, externalAddress: this.externalAddress }), target.port, target.address)
    }
  }

  get epochSeconds (): number {
    return Math.floor((this.#clock.now() - this.#epochStartMs) / 1000)
  }

  async close (): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    const sockets = [this.#socket, this.#spoofSocket, ...(this.#otherHostSocket === undefined ? [] : [this.#otherHostSocket])]
    await Promise.all(sockets.map(async (s) => { await new Promise<void>((resolve) => { s.close(() => { resolve() }) }) }))
  }

  #onMessage (message: Buffer, rinfo: RemoteInfo): void {
    const bytes = new Uint8Array(message.buffer, message.byteOffset, message.byteLength)
    if (this.faults.dropNext > 0) {
      this.faults.dropNext--
      this.received.push({ via: bytes[0] === 0 ? 'natpmp' : 'pcp', from: rinfo.address, atMs: this.#clock.now(), summary: 'dropped' })
      return
    }
    let reply: Uint8Array | undefined
    try {
      reply = bytes[0] === 0 ? this.#handleNatPmp(bytes, rinfo) : this.#handlePcp(bytes, rinfo)
    } catch (err) {
      if (!(err instanceof MalformedPacketError)) throw err
      this.received.push({ via: 'garbage', from: rinfo.address, atMs: this.#clock.now(), summary: err.reason })
      return
    }
    const mangle = this.faults.mangle
    const mangled = mangle === undefined ? reply : mangle(reply, bytes)
    if (mangled === undefined || this.faults.silent) return
    const answers = mangled instanceof Uint8Array ? [mangled] : mangled
    const send = (): void => {
      if (this.#closed) return
      let socket = this.faults.wrongSource ? this.#spoofSocket : this.#socket
      if (this.faults.wrongSourceAddress) {
        if (this.#otherHostSocket === undefined) throw new Error('SimulatedPmpGateway: faults.wrongSourceAddress needs the spoofAddress option')
        socket = this.#otherHostSocket
      }
      if (this.faults.garbageFirst) socket.send(Uint8Array.of(0xde, 0xad, 0xbe, 0xef, 1, 2, 3), rinfo.port, rinfo.address)
      for (const answer of answers) socket.send(answer, rinfo.port, rinfo.address)
    }
    if (this.faults.delayMs > 0) this.#clock.setTimeout(send, this.faults.delayMs)
    else send()
  }

  #handleNatPmp (bytes: Uint8Array, rinfo: RemoteInfo): Uint8Array | undefined {
    const epochSeconds = this.epochSeconds
    if (!this.#options.natpmp) {
      this.received.push({ via: 'natpmp', from: rinfo.address, atMs: this.#clock.now(), summary: 'version 0 refused' })
      // RFC 6887 §9: a PCP-only server answers a NAT-PMP request with UNSUPP_VERSION.
      return encodePcpResponse({ version: PCP_VERSION, opcode: bytes[1] ?? 0, resultCode: PcpResultCode.UNSUPP_VERSION, lifetimeSeconds: 0, epochSeconds, options: [] })
    }
    const request = decodeNatPmpRequest(bytes)
    if (request.opcode === 'external-address') {
      this.received.push({ via: 'natpmp', from: rinfo.address, atMs: this.#clock.now(), summary: 'EXTERNAL_ADDRESS' })
      const result = this.faults.externalAddressResult
      if (result !== undefined) return encodeNatPmpResponse({ opcode: 'error', requestOpcode: 0, resultCode: result, epochSeconds }, { length: 12 })
      return encodeNatPmpResponse({ opcode: 'external-address', resultCode: 0, epochSeconds, externalAddress: this.externalAddress })
    }
    const { protocol, internalPort, suggestedExternalPort, lifetimeSeconds } = request
    this.received.push({ via: 'natpmp', from: rinfo.address, atMs: this.#clock.now(), summary: `MAP ${protocol} ${internalPort} lifetime ${lifetimeSeconds}` })
    const requestOpcode = protocol === 'udp' ? 1 : 2
    const refused = this.faults.refuseWith?.natpmp
    if (refused !== undefined) {
      return encodeNatPmpResponse({ opcode: 'error', requestOpcode, resultCode: refused, epochSeconds }, { length: 16 })
    }
    const key = mappingKey(protocol, rinfo.address, internalPort)
    if (lifetimeSeconds === 0) {
      this.#mappings.delete(key)
      return encodeNatPmpResponse({ opcode: 'map', resultCode: 0, protocol, epochSeconds, internalPort, externalPort: 0, lifetimeSeconds: 0 })
    }
    const externalPort = this.#allocate(key, protocol, suggestedExternalPort === 0 ? internalPort : suggestedExternalPort)
    if (externalPort === undefined) {
      return encodeNatPmpResponse({ opcode: 'error', requestOpcode, resultCode: NatPmpResultCode.OUT_OF_RESOURCES, epochSeconds }, { length: 16 })
    }
    const granted = this.#grantLifetime(lifetimeSeconds, false)
    this.#mappings.set(key, {
      protocol, clientAddress: rinfo.address, internalPort, externalPort, lifetimeSeconds: granted,
      expiresAtMs: this.#clock.now() + granted * 1000, nonce: undefined, via: 'natpmp'
    })
    const response: NatPmpResponse = { opcode: 'map', resultCode: 0, protocol, epochSeconds, internalPort, externalPort, lifetimeSeconds: granted }
    return encodeNatPmpResponse(response)
  }

  #handlePcp (bytes: Uint8Array, rinfo: RemoteInfo): Uint8Array | undefined {
    const epochSeconds = this.epochSeconds
    if (!this.#options.pcp) {
      this.received.push({ via: 'pcp', from: rinfo.address, atMs: this.#clock.now(), summary: 'version refused (NAT-PMP only)' })
      // A NAT-PMP-only server answers any other version with its 8-byte UNSUPPORTED_VERSION reply.
      return encodeNatPmpResponse({ opcode: 'error', requestOpcode: (bytes[1] ?? 0) & 0x7f, resultCode: NatPmpResultCode.UNSUPPORTED_VERSION, epochSeconds })
    }
    const request = decodePcpRequest(bytes)
    this.received.push({ via: 'pcp', from: rinfo.address, atMs: this.#clock.now(), summary: describePcp(request) })
    const reply = (resultCode: number, lifetimeSeconds: number, map?: PcpResponse['map']): Uint8Array =>
      encodePcpResponse({ version: PCP_VERSION, opcode: request.opcode, resultCode, lifetimeSeconds, epochSeconds, ...(map === undefined ? {} : { map }), options: [] })
    if (request.version !== PCP_VERSION) return reply(PcpResultCode.UNSUPP_VERSION, 0)
    if (request.clientAddress !== rinfo.address || this.faults.addressMismatch) return reply(PcpResultCode.ADDRESS_MISMATCH, 0, request.map)
    if (request.opcode === PcpOpcode.ANNOUNCE) return reply(PcpResultCode.SUCCESS, 0)
    if (request.opcode !== PcpOpcode.MAP || request.map === undefined) return reply(PcpResultCode.UNSUPP_OPCODE, 0)
    const map = request.map
    const refused = this.faults.refuseWith?.pcp
    if (refused !== undefined) return reply(refused, this.faults.refuseWith?.lifetimeSeconds ?? 0, map)
    const protocol = map.protocol === IanaProtocol.tcp ? 'tcp' : map.protocol === IanaProtocol.udp ? 'udp' : undefined
    if (protocol === undefined) return reply(PcpResultCode.UNSUPP_PROTOCOL, 0, map)
    const key = mappingKey(protocol, rinfo.address, map.internalPort)
    this.#purgeExpired()
    const existing = this.#mappings.get(key)
    const nonce = hex(map.nonce)
    if (existing?.nonce !== undefined && existing.nonce !== nonce &&
        (request.lifetimeSeconds === 0 || this.#options.enforceNonceOnRenew)) {
      return reply(PcpResultCode.NOT_AUTHORIZED, 0, map)
    }
    if (request.lifetimeSeconds === 0) {
      this.#mappings.delete(key)
      return reply(PcpResultCode.SUCCESS, 0, { ...map, externalAddress: this.externalAddress })
    }
    const externalPort = this.#allocate(key, protocol, map.externalPort === 0 ? map.internalPort : map.externalPort)
    if (externalPort === undefined) return reply(PcpResultCode.NO_RESOURCES, 30, map)
    const granted = this.#grantLifetime(request.lifetimeSeconds, true)
    this.#mappings.set(key, {
      protocol, clientAddress: rinfo.address, internalPort: map.internalPort, externalPort, lifetimeSeconds: granted,
      expiresAtMs: this.#clock.now() + granted * 1000, nonce, via: 'pcp'
    })
    return reply(PcpResultCode.SUCCESS, granted, { ...map, externalPort, externalAddress: this.externalAddress })
  }

  #grantLifetime (requested: number, clamp: boolean): number {
    let granted = requested
    if (clamp) granted = Math.min(Math.max(granted, this.#options.minLifetimeSeconds), this.#options.maxLifetimeSeconds)
    const cap = this.faults.capLifetimeSeconds
    return cap === undefined ? granted : Math.min(granted, cap)
  }

  /** The suggested port if free for this key, else the next free one upward (miniupnpd's search). */
  #allocate (key: string, protocol: TransportProtocol, suggested: number): number | undefined {
    this.#purgeExpired()
    const { minExternalPort, maxExternalPort } = this.#options
    const taken = new Set<number>()
    for (const [k, m] of this.#mappings) if (k !== key && m.protocol === protocol) taken.add(m.externalPort)
    const start = Math.min(Math.max(suggested, minExternalPort), maxExternalPort)
    for (let i = 0; i <= maxExternalPort - minExternalPort; i++) {
      const port = minExternalPort + ((start - minExternalPort + i) % (maxExternalPort - minExternalPort + 1))
      if (!taken.has(port)) return port
    }
    return undefined
  }

  #purgeExpired (): void {
    const now = this.#clock.now()
    for (const [key, m] of this.#mappings) if (m.expiresAtMs <= now) this.#mappings.delete(key)
  }
}

function mappingKey (protocol: TransportProtocol, client: string, internalPort: number): string {
  return `${protocol}/${client}/${internalPort}`
}

function hex (bytes: Uint8Array): string {
  return Buffer.from(bytes).toString('hex')
}

function describePcp (request: PcpRequest): string {
  if (request.opcode === PcpOpcode.ANNOUNCE) return 'ANNOUNCE'
  if (request.map === undefined) return `opcode ${request.opcode}`
  return `MAP ${request.map.protocol} ${request.map.internalPort} lifetime ${request.lifetimeSeconds}`
}

async function bind (socket: Socket, address: string, port: number): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    socket.once('error', reject)
    socket.bind(port, address, () => {
      socket.off('error', reject)
      resolve()
    })
  })
}
