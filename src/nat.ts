import { EventEmitter } from 'node:events'
import { systemClock, type Clock, type TimerHandle } from './clock.js'
import { AbortError, ClosedError, GatewayRefusedError, NoResponseError, UsageError } from './errors.js'
import { renewAtMs, type Gateway, type MappingMethod, type PortMapping, type TransportProtocol } from './gateway.js'
import { createLogger, type Logger } from './log.js'
import { classifyAddress, notPublicReason, type AddressClass } from './net/address-class.js'
import type { Announcement } from './net/announcements.js'

/**
 * The mapping manager: the behaviour contract of go-libp2p's p2p/net/nat NAT object (add,
 * get, remove, close; map once synchronously, then keep the mapping alive in the background),
 * with renewal driven by the lifetime the gateway granted instead of a fixed 20 s poll, and
 * recovery driven by what the gateway says (epochs, announcements) instead of three failures.
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
  /** Finds the gateway again after repeated refusals or a route change; discoverNAT passes it. */
  rediscover?: (signal: AbortSignal) => Promise<Gateway>
  /** The gateway's external address, if discovery already learnt it. */
  externalAddress?: string
  /** Why the gateway cannot give a public mapping, if discovery already knows (e.g. no external address). */
  notPublicReason?: string
  /** Gateway announcements (PCP ANNOUNCE, NAT-PMP address packets, SSDP alive); the NAT closes it. */
  announcements?: AnnouncementSource
  /** Returns the current default gateway; when it changes, the gateway is discovered again. */
  watchRoute?: { lookup: () => Promise<string | undefined>, intervalMs: number }
  /** Random numbers in [0, 1) for the RFCs' random wait; tests pass a fixed one. */
  random?: () => number
}

export interface AnnouncementSource {
  on(event: 'announcement', listener: (announcement: Announcement) => void): unknown
  close(): void
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
  'external-address': [{ address: string, previous: string | undefined, addressClass: AddressClass }]
  'gateway-changed': [{ previous: string, address: string, method: MappingMethod, reason: string }]
  error: [Error]
}

interface Entry {
  key: string
  protocol: TransportProtocol
  internalPort: number
  options: AddMappingOptions
  mapping: PortMapping | undefined
  /** The gateway `mapping` was made on; a renewal elsewhere is a new mapping. */
  madeOn: Gateway | undefined
  timer: TimerHandle | undefined
  /** The request in flight, shared by concurrent callers. */
  pending: Promise<void> | undefined
  failures: number
}

/** Retry waits after a failed request, before the mapping's own renewal time applies. */
const RETRY_BASE_MS = 5_000
const RETRY_MAX_MS = 5 * 60_000
/** "Connection refused" twice in a row: the service moved or the router restarted. */
const REFUSALS_BEFORE_REDISCOVERY = 2
/** Node's timers cannot wait longer than 2^31 - 1 ms. */
const MAX_TIMER_DELAY_MS = 2 ** 31 - 1
/** RFC 6887 §14.1.3 and RFC 6886 §3.7: wait a random 0-5 s before renewing after a reset. */
const RESET_JITTER_MS = 5_000

export class NAT extends EventEmitter<NatEvents> {
  #gateway: Gateway
  readonly #clock: Clock
  readonly #logger: Logger
  readonly #lifetimeSeconds: number
  readonly #requestTimeoutMs: number
  readonly #closeTimeoutMs: number
  readonly #rediscoverGateway: NatOptions['rediscover']
  readonly #random: () => number
  readonly #announcements: AnnouncementSource | undefined
  readonly #entries = new Map<string, Entry>()
  #externalAddress: string | undefined
  #notPublicReason: string | undefined
  #closed: Promise<void> | undefined
  #refusals = 0
  #rediscovering: Promise<void> | undefined
  #recoveryTimer: TimerHandle | undefined
  #routeTimer: TimerHandle | undefined
  #routeGateway: string | undefined

  constructor (gateway: Gateway, options: NatOptions = {}) {
    super()
    this.#gateway = gateway
    this.#clock = options.clock ?? systemClock
    this.#logger = options.logger ?? createLogger('nat')
    this.#lifetimeSeconds = options.lifetimeSeconds ?? 7200
    this.#requestTimeoutMs = options.requestTimeoutMs ?? 10_000
    this.#closeTimeoutMs = options.closeTimeoutMs ?? 5_000
    this.#rediscoverGateway = options.rediscover
    this.#random = options.random ?? Math.random
    this.#notPublicReason = options.notPublicReason
    if (options.externalAddress !== undefined) this.#learnExternalAddress(options.externalAddress, false)
    this.#watchGateway(gateway)
    this.#announcements = options.announcements
    this.#announcements?.on('announcement', (a) => { this.#onAnnouncement(a) })
    if (options.watchRoute !== undefined) this.#watchRoute(options.watchRoute)
  }

  get method (): MappingMethod { return this.#gateway.method }
  get gatewayAddress (): string { return this.#gateway.address }
  /** The gateway's external address, undefined while unknown. */
  get externalAddress (): string | undefined { return this.#externalAddress }
  get externalAddressClass (): AddressClass | undefined {
    return this.#externalAddress === undefined ? undefined : classifyAddress(this.#externalAddress)
  }

  /**
   * Why a mapping on this gateway will not be reachable from the internet (double NAT, CGNAT, no
   * external address), or undefined when the external address is public or not yet known.
   */
  get notPublicReason (): string | undefined { return this.#notPublicReason }

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
      entry = { key, protocol: proto, internalPort, options, mapping: undefined, madeOn: undefined, timer: undefined, pending: undefined, failures: 0 }
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
    // The latest address the gateway told us (a mapping reply or an announcement) wins.
    const address = this.#externalAddress ?? mapping?.externalAddress
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

  /** Deletes every mapping this object made and stops every timer and socket. Idempotent. */
  async close (): Promise<void> {
    this.#closed ??= (async () => {
      for (const timer of [this.#recoveryTimer, this.#routeTimer]) if (timer !== undefined) this.#clock.clearTimeout(timer)
      this.#announcements?.close()
      const entries = [...this.#entries.values()]
      this.#entries.clear()
      const signal = AbortSignal.timeout(this.#closeTimeoutMs)
      await this.#rediscovering?.catch(() => {})
      await Promise.all(entries.map(async (entry) => { await this.#release(entry, signal) }))
      this.#gateway.close()
    })()
    await this.#closed
  }

  #refresh (entry: Entry, signal?: AbortSignal): void {
    if (entry.pending !== undefined) return
    if (entry.timer !== undefined) this.#clock.clearTimeout(entry.timer)
    entry.timer = undefined
    const run = async (): Promise<void> => {
      const gateway = this.#gateway
      const previous = entry.mapping
      const callOptions = { timeoutMs: this.#requestTimeoutMs, ...(signal === undefined ? {} : { signal }) }
      try {
        // A renewal asks for the port the mapping had; on a new gateway (or after the old one
        // lost it) a fresh request asks for that port too, so peers that know it keep working.
        const mapping = previous !== undefined && entry.madeOn === gateway
          ? await gateway.renew(previous, callOptions)
          : await gateway.map({
            protocol: entry.protocol,
            internalPort: entry.internalPort,
            lifetimeSeconds: this.#lifetimeSeconds,
            ...(previous !== undefined
              ? { suggestedExternalPort: previous.externalPort }
              : entry.options.externalPort === undefined ? {} : { suggestedExternalPort: entry.options.externalPort }),
            ...(entry.options.description === undefined ? {} : { description: entry.options.description })
          }, callOptions)
        if (!this.#isLive(entry)) {
          // Removed or closed while the request was in flight: undo it.
          await gateway.unmap(mapping, { timeoutMs: this.#requestTimeoutMs }).catch(() => {})
          return
        }
        entry.mapping = mapping
        entry.madeOn = gateway
        entry.failures = 0
        this.#refusals = 0
        if (mapping.externalAddress !== undefined) this.#learnExternalAddress(mapping.externalAddress, true)
        this.emit(previous === undefined ? 'mapped' : 'renewed', toEvent(mapping))
        this.#schedule(entry, renewAtMs(mapping) - this.#clock.now())
      } catch (err) {
        if (!this.#isLive(entry)) return
        const error = err as Error
        if (error instanceof AbortError && previous === undefined) {
          // The first attempt was cancelled by the caller of addMapping: forget the entry.
          this.#entries.delete(entry.key)
          return
        }
        entry.failures++
        this.#logger('%s %d: %s', entry.protocol, entry.internalPort, error.message)
        if (previous !== undefined && this.#clock.now() >= previous.expiresAtMs) {
          entry.mapping = undefined
          entry.madeOn = undefined
          this.emit('lost', { protocol: entry.protocol, internalPort: entry.internalPort, reason: error })
        }
        if (this.listenerCount('error') > 0) this.emit('error', error)
        if (error instanceof NoResponseError && ++this.#refusals >= REFUSALS_BEFORE_REDISCOVERY) {
          this.#rediscover(`${this.#refusals} requests refused in a row`)
        }
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
    entry.timer = undefined
    if (!Number.isFinite(delayMs)) return
    // A gateway may grant a lifetime whose half exceeds what a timer can wait (about 24.8 days;
    // beyond it Node fires at once, which would renew in a loop): wake up then and renew early.
    entry.timer = this.#clock.setTimeout(() => {
      entry.timer = undefined
      if (this.#isLive(entry)) this.#refresh(entry)
    }, Math.min(Math.max(0, delayMs), MAX_TIMER_DELAY_MS))
    entry.timer.unref?.()
  }

  #isLive (entry: Entry): boolean {
    return this.#closed === undefined && this.#entries.get(entry.key) === entry
  }

  async #release (entry: Entry, signal?: AbortSignal): Promise<void> {
    if (entry.timer !== undefined) this.#clock.clearTimeout(entry.timer)
    entry.timer = undefined
    await entry.pending?.catch(() => {})
    const { mapping, madeOn } = entry
    entry.mapping = undefined
    if (mapping === undefined || madeOn === undefined) return
    try {
      await madeOn.unmap(mapping, { timeoutMs: this.#requestTimeoutMs, ...(signal === undefined ? {} : { signal }) })
      this.emit('unmapped', { protocol: entry.protocol, internalPort: entry.internalPort })
    } catch (err) {
      this.#logger('could not delete %s %d: %s', entry.protocol, entry.internalPort, (err as Error).message)
      if (this.listenerCount('error') > 0) this.emit('error', err as Error)
    }
  }

  #learnExternalAddress (address: string, emit: boolean): void {
    if (address === this.#externalAddress) return
    const previous = this.#externalAddress
    this.#externalAddress = address
    const addressClass = classifyAddress(address)
    this.#notPublicReason = notPublicReason(address, addressClass)
    this.#logger('external address %s (%s)', address, addressClass)
    if (emit) this.emit('external-address', { address, previous, addressClass })
  }

  #watchGateway (gateway: Gateway): void {
    gateway.onReset = () => { this.#recoverAll('the gateway lost its state (epoch)', true) }
  }

  #onAnnouncement (announcement: Announcement): void {
    if (this.#closed !== undefined) return
    switch (announcement.kind) {
      case 'natpmp':
        this.#learnExternalAddress(announcement.externalAddress, true)
        this.#recoverAll('NAT-PMP address announcement from the gateway', true)
        break
      case 'pcp':
        this.#recoverAll('PCP ANNOUNCE from the gateway', true)
        break
      case 'ssdp':
        // No RFC asks UPnP clients to wait: re-map at once. A moved control URL is found again
        // by the client when the old one refuses.
        this.#recoverAll(`the UPnP router restarted (BOOTID ${String(announcement.bootId)}, ${announcement.location ?? 'no LOCATION'})`, false)
        break
    }
  }

  /**
   * Makes every mapping again, asking for the ports they had. After a PCP/NAT-PMP reset the RFCs
   * ask for a random 0-5 s wait first, so that a rebooted gateway is not flooded by every host at
   * once; no such rule applies to UPnP, where we re-map at once.
   */
  #recoverAll (reason: string, jitter: boolean): void {
    if (this.#closed !== undefined || this.#recoveryTimer !== undefined) return
    const delayMs = jitter && this.#gateway.method !== 'upnp' ? Math.floor(this.#random() * RESET_JITTER_MS) : 0
    this.#logger('%s: re-mapping %d mapping(s) in %d ms', reason, this.#entries.size, delayMs)
    this.#recoveryTimer = this.#clock.setTimeout(() => {
      this.#recoveryTimer = undefined
      for (const entry of this.#entries.values()) {
        // The gateway lost the mapping: a renewal re-creates it on the same port (RFC 6886 §3.7).
        if (entry.pending === undefined) this.#refresh(entry)
      }
    }, delayMs)
    this.#recoveryTimer.unref?.()
  }

  /** Finds the gateway again, swaps it in, and re-applies every mapping on it. */
  #rediscover (reason: string): void {
    const find = this.#rediscoverGateway
    if (find === undefined || this.#rediscovering !== undefined || this.#closed !== undefined) return
    this.#logger('rediscovering the gateway: %s', reason)
    this.#rediscovering = (async () => {
      try {
        const gateway = await find(AbortSignal.timeout(10_000))
        if (this.#closed !== undefined) {
          gateway.close()
          return
        }
        const previous = this.#gateway
        this.#gateway = gateway
        this.#watchGateway(gateway)
        this.#refusals = 0
        previous.onReset = undefined
        previous.close()
        this.emit('gateway-changed', { previous: previous.address, address: gateway.address, method: gateway.method, reason })
        this.#recoverAll('new gateway', false)
      } catch (err) {
        this.#logger('rediscovery failed: %s', (err as Error).message)
        if (this.listenerCount('error') > 0) this.emit('error', err as Error)
      } finally {
        this.#rediscovering = undefined
      }
    })()
  }

  #watchRoute (watch: NonNullable<NatOptions['watchRoute']>): void {
    const check = async (): Promise<void> => {
      const gateway = await watch.lookup().catch(() => undefined)
      if (this.#closed !== undefined) return
      if (gateway !== undefined && this.#routeGateway !== undefined && gateway !== this.#routeGateway) {
        this.#rediscover(`the default route now goes via ${gateway}`)
      }
      this.#routeGateway = gateway ?? this.#routeGateway
      this.#routeTimer = this.#clock.setTimeout(() => { void check() }, watch.intervalMs)
      this.#routeTimer.unref?.()
    }
    void check()
  }
}

/**
 * A refusal that carries its own lifetime (PCP NO_RESOURCES and friends, RFC 6887 §7.4) is
 * retried after it; a refused connection soon, since rediscovery may have found the gateway;
 * anything else backs off exponentially.
 */
function retryDelayMs (entry: Entry, error: Error): number {
  if (error instanceof GatewayRefusedError && error.lifetimeSeconds !== undefined && error.lifetimeSeconds > 0) {
    return error.lifetimeSeconds * 1000
  }
  if (error instanceof NoResponseError) return 1_000
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
