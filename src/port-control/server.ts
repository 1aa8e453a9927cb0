import { systemClock, type Clock } from '../clock.js'
import { RequestCounters } from '../counters.js'
import type { GatewayReset, ListenOptions } from '../gateway.js'
import { createLogger, type Logger } from '../log.js'
import { GatewaySocket, type GatewaySocketOptions } from '../net/gateway-socket.js'
import type { CreateSocket } from '../net/udp.js'
import { AnnouncementListener } from './announcements.js'
import { isEpochValid, type EpochSample } from './epoch.js'

/**
 * What PCP and NAT-PMP share at one gateway: the server on port 5351 (NAT-PMP is PCP's
 * downgrade on the same port, RFC 6887 §9), one socket to it, the server's epoch, and what it
 * multicasts when it restarts. Both clients of a discovery use one server; it closes when the
 * last of them does.
 */

export interface PortControlServerOptions extends Omit<GatewaySocketOptions, 'port' | 'replyKey'> {
  /** Server port; 5351 unless a test points at a simulated gateway. */
  port?: number | undefined
}

export type PortControlVersion = 'pcp' | 'natpmp'

export const PORT_CONTROL_SERVER_PORT = 5351

export class PortControlServer {
  readonly gateway: string
  readonly port: number
  readonly clock: Clock
  readonly socket: GatewaySocket
  /** Both protocols' requests to this server, counted. */
  readonly counters: RequestCounters
  readonly #logger: Logger
  readonly #createSocket: CreateSocket | undefined
  /** Each version's epoch apart: nothing says a server counts them from the same moment. */
  readonly #epochs = new Map<PortControlVersion, EpochSample>()
  readonly #resetListeners = new Set<(reset: GatewayReset) => void>()
  #listening: Promise<AnnouncementListener | undefined> | undefined
  #users = 0
  #closed = false

  constructor (options: PortControlServerOptions, replyKey?: (message: Uint8Array) => string | undefined) {
    this.gateway = options.gateway
    this.port = options.port ?? PORT_CONTROL_SERVER_PORT
    this.clock = options.clock ?? systemClock
    this.#logger = options.logger ?? createLogger('port-control')
    this.#createSocket = options.createSocket
    this.counters = new RequestCounters(this.gateway)
    this.socket = new GatewaySocket({ ...options, port: this.port, clock: this.clock, logger: this.#logger, ...(replyKey === undefined ? {} : { replyKey }) })
  }

  get logger (): Logger { return this.#logger }

  /** A client starts using the server; release() when it is done. */
  acquire (): this {
    this.#users++
    return this
  }

  release (): void {
    if (--this.#users > 0) return
    this.#closed = true
    this.socket.close()
    void this.#listening?.then((listener) => { listener?.close() })
  }

  /**
   * Records the epoch of a reply. One that went backwards, or moved unlike our clock, shows that
   * the server lost its state (RFC 6886 §3.6, RFC 6887 §8.5): every mapping must be made again.
   */
  observeEpoch (version: PortControlVersion, epochSeconds: number): void {
    const sample = { serverEpochSeconds: epochSeconds, clientTimeMs: this.clock.now() }
    const previous = this.#epochs.get(version)
    this.#epochs.set(version, sample)
    if (isEpochValid(previous, sample)) return
    const name = version === 'pcp' ? 'PCP' : 'NAT-PMP'
    this.#logger('%s epoch went from %d s to %d s: the server lost its state (rebooted?)', name, previous?.serverEpochSeconds, epochSeconds)
    this.#emitReset({ reason: `the gateway lost its state (${name} epoch ${epochSeconds} s after ${String(previous?.serverEpochSeconds)} s)`, source: 'epoch', lost: true, spread: true })
  }

  onReset (listener: (reset: GatewayReset) => void): () => void {
    this.#resetListeners.add(listener)
    return () => { this.#resetListeners.delete(listener) }
  }

  /** Listens for PCP ANNOUNCE and NAT-PMP address packets from this server, once. */
  async listen (options: ListenOptions['portControl'] = {}): Promise<{ address: string, port: number } | undefined> {
    if (this.#closed || options === false) return undefined
    this.#listening ??= (async () => {
      // Join the group on the interface that reaches the gateway (multi-homed hosts).
      const interfaceAddress = await this.socket.localAddress()
      const listener = await AnnouncementListener.start({
        gateway: this.gateway,
        interfaceAddress,
        ...options,
        logger: this.#logger,
        ...(this.#createSocket === undefined ? {} : { createSocket: this.#createSocket })
      })
      if (listener === undefined) return undefined
      if (this.#closed) {
        listener.close()
        return undefined
      }
      listener.on('announcement', (a) => {
        if (a.kind === 'pcp') {
          // RFC 6887 §14.1.3: an unsolicited ANNOUNCE says the server lost its state.
          this.#emitReset({ reason: 'the gateway announced a restart (PCP ANNOUNCE)', source: 'announcement', lost: true, spread: true })
          return
        }
        // RFC 6886 §3.2.1: sent after a restart or an address change; its epoch tells which.
        this.observeEpoch('natpmp', a.epochSeconds)
        this.#emitReset({ reason: `the gateway announced its external address ${a.externalAddress} (NAT-PMP)`, source: 'announcement', lost: false, spread: true, externalAddress: a.externalAddress })
      })
      return listener
    })().catch((err: unknown) => {
      this.#logger('cannot listen for announcements (%s); recovery will rely on renewals', (err as Error).message)
      return undefined
    })
    return (await this.#listening)?.localAddress
  }

  #emitReset (reset: GatewayReset): void {
    for (const listener of [...this.#resetListeners]) listener(reset)
  }
}
