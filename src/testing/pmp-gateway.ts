import { createSocket, type RemoteInfo, type Socket } from 'node:dgram'
import { isIPv6 } from 'node:net'
import { systemClock, type Clock } from '../clock.js'
import { encodeNatPmpResponse } from '../natpmp/codec.js'
import { encodePcpResponse } from '../pcp/codec.js'
import { PCP_VERSION, PcpOpcode } from '../pcp/codes.js'
import { answerNatPmp, mappingKey, purgeExpired, type PmpTable } from './pmp-answers.js'
import { answerPcp } from './pmp-pcp.js'
import type { PmpFaults, PmpRules, ReceivedRequest, SimulatedMapping, SimulatedPmpGatewayOptions } from './pmp-types.js'

export type { PmpFaults, ReceivedRequest, SimulatedMapping, SimulatedPmpGatewayOptions } from './pmp-types.js'

/**
 * A NAT-PMP (RFC 6886) and PCP (RFC 6887) gateway on one UDP socket, as miniupnpd 2.3.1 serves
 * both on port 5351 (test/lab/differential.test.ts compares them; docs/testing.md lists what
 * differs on purpose). It keeps its own mapping table, one entry per external port, checks the
 * PCP nonce on delete (and on renew with `enforceNonceOnRenew`), counts every request, and can be told to misbehave (see `faults`), so tests can assert both
 * what a client achieved and what it cost the router.
 */

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
  readonly #options: PmpRules
  readonly #table: PmpTable
  readonly #mappings = new Map<string, SimulatedMapping>()
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
      minInternalPort: options.minInternalPort ?? 1024,
      enforceNonceOnRenew: options.enforceNonceOnRenew ?? false,
      maxMappings: options.maxMappings ?? Infinity
    }
    this.#epochStartMs = this.#clock.now()
    this.#table = {
      rules: this.#options,
      faults: this.faults,
      clock: this.#clock,
      mappings: this.#mappings,
      received: this.received,
      externalAddress: () => this.externalAddress,
      epochSeconds: () => this.epochSeconds
    }
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

  /** Live mappings (expired ones are purged first), oldest first: copies, so a test cannot change the table by accident. */
  mappings (): SimulatedMapping[] {
    purgeExpired(this.#table)
    return [...this.#mappings.values()].map((m) => ({ ...m }))
  }

  /** A reboot: the epoch starts again from 0 and, unless told otherwise, every mapping is lost. */
  restart (options: { keepMappings?: boolean } = {}): void {
    this.#epochStartMs = this.#clock.now()
    if (options.keepMappings !== true) this.#mappings.clear()
  }

  /**
   * Another host holds this external port (for conflicts: a request for it is given another
   * port, as miniupnpd does), for good.
   */
  occupy (externalPort: number, protocol: 'tcp' | 'udp', clientAddress = '192.0.2.99'): void {
    this.#mappings.set(mappingKey(protocol, externalPort), {
      protocol, clientAddress, internalPort: externalPort, externalPort, lifetimeSeconds: 0, expiresAtMs: Infinity, nonce: undefined, via: 'pcp'
    })
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
    if (bytes.length === 0) {
      this.received.push({ via: 'garbage', from: rinfo.address, atMs: this.#clock.now(), summary: 'empty' })
      return
    }
    // miniupnpd: version 0 is NAT-PMP, everything else is PCP's to answer.
    const reply = bytes[0] === 0 ? answerNatPmp(this.#table, bytes, rinfo) : answerPcp(this.#table, bytes, rinfo)
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
