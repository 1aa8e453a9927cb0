import { EventEmitter } from 'node:events'
import { systemClock, type Clock, type TimerHandle } from './clock.js'
import { AbortError, ClosedError, GatewayRefusedError, UsageError } from './errors.js'
import { renewAtMs, type Gateway, type MappingMethod, type PortMapping, type TransportProtocol } from './gateway.js'
import { createLogger, type Logger } from './log.js'

/**
 * The mapping manager: the behaviour contract of go-libp2p's p2p/net/nat NAT object (add,
 * get, remove, close; map once synchronously, then keep the mapping alive in the background),
 * with renewal driven by the lifetime the gateway granted instead of a fixed 20 s poll.
 */

export interface NatOptions {
  /** Lease to ask for; RFC 6886 §3.3 recommends 7200 s. */
  lifetimeSeconds?: number
  clock?: Clock
  logger?: Logger
  /** Upper bound for each router request. */
  requestTimeoutMs?: number
  /** Upper bound for close(): it gives up on a router that stopped answering. */
  closeTimeoutMs?: number
}

export interface AddMappingOptions {
  /** External port to ask for; the gateway may grant another. */
  externalPort?: number
  description?: string
  signal?: AbortSignal
}

export interface MappingEvent {
  protocol: TransportProtocol
  internalPort: number
  externalAddress: string | undefined
  externalPort: number
  method: MappingMethod
  lifetimeSeconds: number
}

export interface NatEvents {
  mapped: [MappingEvent]
  renewed: [MappingEvent]
  lost: [{ protocol: TransportProtocol, internalPort: number, reason: Error }]
  unmapped: [{ protocol: TransportProtocol, internalPort: number }]
  'external-address': [{ address: string }]
  error: [Error]
}

interface Entry {
  protocol: TransportProtocol
  internalPort: number
  options: AddMappingOptions
  mapping: PortMapping | undefined
  timer: TimerHandle | undefined
  /** The request in flight, shared by concurrent callers. */
  pending: Promise<void> | undefined
  failures: number
}

/** Retry waits after a failed request, before the mapping's own renewal time applies. */
const RETRY_BASE_MS = 5_000
const RETRY_MAX_MS = 5 * 60_000

export class NAT extends EventEmitter<NatEvents> {
  readonly #gateway: Gateway
  readonly #clock: Clock
  readonly #logger: Logger
  readonly #lifetimeSeconds: number
  readonly #requestTimeoutMs: number
  readonly #closeTimeoutMs: number
  readonly #entries = new Map<string, Entry>()
  #externalAddress: string | undefined
  #closed: Promise<void> | undefined

  constructor (gateway: Gateway, options: NatOptions = {}) {
    super()
    this.#gateway = gateway
    this.#clock = options.clock ?? systemClock
    this.#logger = options.logger ?? createLogger('nat')
    this.#lifetimeSeconds = options.lifetimeSeconds ?? 7200
    this.#requestTimeoutMs = options.requestTimeoutMs ?? 10_000
    this.#closeTimeoutMs = options.closeTimeoutMs ?? 5_000
  }

  get method (): MappingMethod { return this.#gateway.method }
  get gatewayAddress (): string { return this.#gateway.address }
  /** The gateway's external address, undefined while unknown. */
  get externalAddress (): string | undefined { return this.#externalAddress }

  /**
   * Maps `protocol`/`internalPort` once before resolving, then keeps it alive. A failed first
   * attempt does not reject: it is retried in the background, as go-libp2p does, and the
   * failure is emitted as an `error` event. Repeated calls for the same port share one mapping.
   */
  async addMapping (protocol: string, internalPort: number, options: AddMappingOptions = {}): Promise<void> {
    const proto = checkProtocol(protocol)
    checkPort(internalPort, 'internal port')
    if (options.externalPort !== undefined) checkPort(options.externalPort, 'external port')
    if (this.#closed !== undefined) throw new ClosedError('NAT')
    const key = `${proto}/${internalPort}`
    let entry = this.#entries.get(key)
    if (entry === undefined) {
      entry = { protocol: proto, internalPort, options, mapping: undefined, timer: undefined, pending: undefined, failures: 0 }
      this.#entries.set(key, entry)
      this.#logger('keeping %s %d mapped', proto, internalPort)
      this.#refresh(entry, options.signal)
    }
    await entry.pending
    // The caller gave up on this attempt: say so, rather than resolve as if it had been made.
    if (options.signal?.aborted === true) throw new AbortError(options.signal.reason)
  }

  /** The external address and port, or undefined while the mapping or the address is unknown. */
  getMapping (protocol: string, internalPort: number): { address: string, port: number } | undefined {
    const mapping = this.#entries.get(`${protocol}/${internalPort}`)?.mapping
    const address = mapping?.externalAddress ?? this.#externalAddress
    if (mapping === undefined || address === undefined) return undefined
    return { address, port: mapping.externalPort }
  }

  /** Stops keeping the mapping and deletes it on the router. */
  async removeMapping (protocol: string, internalPort: number, options: { signal?: AbortSignal } = {}): Promise<void> {
    const proto = checkProtocol(protocol)
    const key = `${proto}/${internalPort}`
    const entry = this.#entries.get(key)
    if (entry === undefined) throw new UsageError(`no mapping for ${proto} port ${internalPort}`)
    this.#entries.delete(key)
    await this.#release(entry, options.signal)
  }

  /** Deletes every mapping this object made and stops every timer. Idempotent. */
  async close (): Promise<void> {
    this.#closed ??= (async () => {
      const entries = [...this.#entries.values()]
      this.#entries.clear()
      const signal = AbortSignal.timeout(this.#closeTimeoutMs)
      await Promise.all(entries.map(async (entry) => { await this.#release(entry, signal) }))
      this.#gateway.close()
    })()
    await this.#closed
  }

  #refresh (entry: Entry, signal?: AbortSignal): void {
    const run = async (): Promise<void> => {
      const previous = entry.mapping
      try {
        const mapping = previous === undefined
          ? await this.#gateway.map({
            protocol: entry.protocol,
            internalPort: entry.internalPort,
            lifetimeSeconds: this.#lifetimeSeconds,
            ...(entry.options.externalPort === undefined ? {} : { suggestedExternalPort: entry.options.externalPort }),
            ...(entry.options.description === undefined ? {} : { description: entry.options.description })
          }, { timeoutMs: this.#requestTimeoutMs, ...(signal === undefined ? {} : { signal }) })
          : await this.#gateway.renew(previous, { timeoutMs: this.#requestTimeoutMs })
        if (!this.#isLive(entry)) {
          // Removed or closed while the request was in flight: undo it.
          await this.#gateway.unmap(mapping, { timeoutMs: this.#requestTimeoutMs }).catch(() => {})
          return
        }
        entry.mapping = mapping
        entry.failures = 0
        if (mapping.externalAddress !== undefined && mapping.externalAddress !== this.#externalAddress) {
          this.#externalAddress = mapping.externalAddress
          this.emit('external-address', { address: mapping.externalAddress })
        }
        this.emit(previous === undefined ? 'mapped' : 'renewed', toEvent(mapping))
        this.#schedule(entry, renewAtMs(mapping) - this.#clock.now())
      } catch (err) {
        if (!this.#isLive(entry)) return
        const error = err as Error
        if (error instanceof AbortError && previous === undefined) {
          // The first attempt was cancelled by the caller of addMapping: forget the entry.
          this.#entries.delete(`${entry.protocol}/${entry.internalPort}`)
          return
        }
        entry.failures++
        this.#logger('%s %d: %s', entry.protocol, entry.internalPort, error.message)
        if (previous !== undefined && this.#clock.now() >= previous.expiresAtMs) {
          entry.mapping = undefined
          this.emit('lost', { protocol: entry.protocol, internalPort: entry.internalPort, reason: error })
        }
        if (this.listenerCount('error') > 0) this.emit('error', error)
        // Try once more right at expiry, so a mapping that cannot be renewed is reported lost
        // when it ends rather than at the next back-off step.
        const untilExpiryMs = entry.mapping === undefined ? Infinity : entry.mapping.expiresAtMs - this.#clock.now()
        this.#schedule(entry, Math.min(retryDelayMs(entry, error), untilExpiryMs))
      }
    }
    entry.pending = run().finally(() => { entry.pending = undefined })
  }

  #schedule (entry: Entry, delayMs: number): void {
    if (entry.timer !== undefined) this.#clock.clearTimeout(entry.timer)
    if (!Number.isFinite(delayMs)) return
    entry.timer = this.#clock.setTimeout(() => {
      entry.timer = undefined
      if (this.#isLive(entry)) this.#refresh(entry)
    }, Math.max(0, delayMs))
    entry.timer.unref?.()
  }

  #isLive (entry: Entry): boolean {
    return this.#closed === undefined && this.#entries.get(`${entry.protocol}/${entry.internalPort}`) === entry
  }

  async #release (entry: Entry, signal?: AbortSignal): Promise<void> {
    if (entry.timer !== undefined) this.#clock.clearTimeout(entry.timer)
    entry.timer = undefined
    await entry.pending?.catch(() => {})
    const mapping = entry.mapping
    entry.mapping = undefined
    if (mapping === undefined) return
    try {
      await this.#gateway.unmap(mapping, { timeoutMs: this.#requestTimeoutMs, ...(signal === undefined ? {} : { signal }) })
      this.emit('unmapped', { protocol: entry.protocol, internalPort: entry.internalPort })
    } catch (err) {
      this.#logger('could not delete %s %d: %s', entry.protocol, entry.internalPort, (err as Error).message)
      if (this.listenerCount('error') > 0) this.emit('error', err as Error)
    }
  }
}

/**
 * A refusal that carries its own lifetime (PCP NO_RESOURCES and friends, RFC 6887 §7.4) is
 * retried after it; anything else backs off exponentially.
 */
function retryDelayMs (entry: Entry, error: Error): number {
  if (error instanceof GatewayRefusedError && error.lifetimeSeconds !== undefined && error.lifetimeSeconds > 0) {
    return error.lifetimeSeconds * 1000
  }
  return Math.min(RETRY_BASE_MS * 2 ** (entry.failures - 1), RETRY_MAX_MS)
}

function toEvent (mapping: PortMapping): MappingEvent {
  return {
    protocol: mapping.protocol,
    internalPort: mapping.internalPort,
    externalAddress: mapping.externalAddress,
    externalPort: mapping.externalPort,
    method: mapping.method,
    lifetimeSeconds: mapping.lifetimeSeconds
  }
}

function checkProtocol (protocol: string): TransportProtocol {
  if (protocol === 'tcp' || protocol === 'udp') return protocol
  throw new UsageError(`invalid protocol: ${JSON.stringify(protocol)} (expected "tcp" or "udp")`)
}

function checkPort (port: number, what: string): void {
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new UsageError(`invalid ${what}: ${String(port)} (expected 1-65535)`)
}
