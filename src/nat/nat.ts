import { EventEmitter, setMaxListeners } from 'node:events'
import { deadline, nextTurn, systemClock, type Clock } from '../clock.js'
import { AbortError, ClosedError, NoResponseError, TimeoutError, UsageError } from '../errors.js'
import { addCounters, natChannel } from '../counters.js'
import type { AddressFamily, Gateway, MappingMethod, PortMapping, ProtocolCounters, TransportProtocol } from '../gateway.js'
import { createLogger, type Logger } from '../log.js'
import type { AddressClass } from '../net/address-class.js'
import { AddressState } from './address-state.js'
import { familiesOf, familyOf, forwardSideEvents, natFor } from './family.js'
import { deleteAll, expandRequests, type MappingRequest, type MappingResult, type RemovalResult } from './bulk.js'
import { Keeper, type KeeperHost } from './keeper.js'
import { Ipv6Follower } from './ipv6-follow.js'
import { Recovery } from './recovery.js'
import { isNotAuthorized } from './retry.js'
import { RequestSlots } from './slots.js'
import type { AddMappingOptions, LeftMapping, NatEvents, NatOptions, NatStats } from './types.js'

/**
 * The mapping manager: the behaviour contract of go-libp2p's p2p/net/nat NAT object (add, get,
 * remove, close; map once synchronously, then keep the mapping alive in the background), with
 * renewal driven by the lifetime the gateway granted instead of a fixed 20 s poll, and recovery
 * driven by what the gateway says (epochs, announcements) instead of three failures. Each port is
 * kept by a Keeper; Recovery handles resets and gateway changes; AddressState the external address.
 */

export type { MappingRequest, MappingResult, RemovalResult } from './bulk.js'
export type { AddMappingOptions, LeftMapping, MappingEvent, MappingKey, NatEvents, NatOptions, NatStats } from './types.js'

/** The events stats() counts. */
type TalliedEvent = 'mapped' | 'renewed' | 'lost' | 'gateway-changed' | 'error'

/** Requests in flight to one gateway at most, by default (see RequestSlots). */
const DEFAULT_CONCURRENCY = { pcp: 8, natpmp: 8, upnp: 4, 'upnp-pinhole': 4 } as const

export class NAT extends EventEmitter<NatEvents> {
  #gateway: Gateway
  readonly #clock: Clock
  readonly #logger: Logger
  readonly #keep: boolean
  readonly #requestTimeoutMs: number
  readonly #closeTimeoutMs: number
  readonly #concurrency: number
  readonly #keepers = new Map<string, Keeper>()
  readonly #address: AddressState
  readonly #recovery: Recovery
  readonly #host: KeeperHost
  readonly #closing = new AbortController()
  readonly #slots: RequestSlots
  #closed: Promise<LeftMapping[]> | undefined
  /** Set while the gateway refuses us with NOT_AUTHORIZED / 606 (see retry.ts). */
  #refusal: Error | undefined
  #asking: Promise<void> | undefined
  /** Event counts for stats(), and the counters of gateways this NAT used before the current one. */
  readonly #tally: Record<TalliedEvent, number> = { mapped: 0, renewed: 0, lost: 0, 'gateway-changed': 0, error: 0 }
  #pastCounters: Partial<Record<MappingMethod, ProtocolCounters>> = {}
  readonly #family: AddressFamily
  /** The IPv6 side (NatOptions.ipv6): a NAT of its own on the IPv6 gateway (see family.ts). */
  readonly #side: NAT | undefined
  /** Moves the pinholes when the host's IPv6 address changes (family 6 only: see ipv6-follow.ts). */
  readonly #follower: Ipv6Follower | undefined
  /** Gateways for addresses the host no longer uses, closed once nothing made on them is kept. */
  readonly #retired = new Set<Gateway>()

  constructor (gateway: Gateway, options: NatOptions = {}) {
    super()
    this.#gateway = gateway
    this.#clock = options.clock ?? systemClock
    this.#logger = options.logger ?? createLogger('nat')
    this.#keep = options.keep ?? true
    this.#family = options.family ?? 4
    this.#requestTimeoutMs = options.requestTimeoutMs ?? 10_000
    this.#closeTimeoutMs = options.closeTimeoutMs ?? 5_000
    this.#concurrency = options.maxConcurrentRequests ?? DEFAULT_CONCURRENCY[gateway.method]
    this.#slots = new RequestSlots(this.#concurrency)
    // Every request waiting for a slot listens to it: a thousand ports asked at once are a thousand listeners.
    setMaxListeners(0, this.#closing.signal)
    this.#address = new AddressState(this.#logger, (event, ...args) => { this.#emit(event, ...args) },
      { address: options.externalAddress, notPublicReason: options.notPublicReason })
    // Listeners added once the NAT is made still hear what discovery knew.
    if (!this.#address.unknown) nextTurn(this.#clock, () => { if (this.#closed === undefined) this.#address.announceKnown() })
    this.#host = {
      clock: this.#clock,
      logger: this.#logger,
      family: this.#family,
      lifetimeSeconds: options.lifetimeSeconds ?? 7200,
      requestTimeoutMs: this.#requestTimeoutMs,
      verifyIntervalMs: options.verifyIntervalMs,
      keep: this.#keep,
      random: options.random ?? Math.random,
      slots: this.#slots,
      closing: this.#closing.signal,
      gateway: () => this.#gateway,
      isLive: (keeper) => this.#closed === undefined && this.#keepers.get(keeper.key) === keeper,
      forget: (keeper) => { if (this.#keepers.get(keeper.key) === keeper) this.#keepers.delete(keeper.key) },
      granted: (mapping) => { this.#granted(mapping) },
      failed: (error) => this.#failed(error),
      emit: (event, ...args) => { this.#emit(event, ...args) }
    }
    this.#recovery = new Recovery({
      clock: this.#clock,
      logger: this.#logger,
      random: options.random ?? Math.random,
      gateway: () => this.#gateway,
      replaceGateway: (next, reason) => { this.#replaceGateway(next, reason) },
      keepers: () => this.#keepers.values(),
      isClosed: () => this.#closed !== undefined,
      learnAddress: (address) => { this.#address.learn(address) },
      error: (err) => { this.#emit('error', err, undefined) }
    }, { rediscover: this.#keep ? options.rediscover : undefined, listen: this.#keep ? options.listen : false })
    this.#recovery.watch(gateway)
    if (this.#keep && options.watchRoute !== undefined) this.#recovery.watchRoute(options.watchRoute)
    if (options.externalAddress === undefined && options.askExternalAddress === true) {
      nextTurn(this.#clock, () => { void this.askExternalAddress().catch(() => {}) })
    }
    if (this.#family === 6 && this.#keep && options.followAddress !== false && Ipv6Follower.canFollow(gateway)) {
      this.#follower = new Ipv6Follower({
        clock: this.#clock,
        logger: this.#logger,
        gateway: () => this.#gateway,
        isClosed: () => this.#closed !== undefined,
        move: async (next, previous, address) => { await this.#move(next, previous, address) }
      }, options.followAddress)
    }
    if (options.ipv6 !== undefined) {
      if (this.#family === 6) throw new UsageError('NatOptions.ipv6 is for a NAT whose own gateway is IPv4')
      const { lifetimeSeconds, clock, logger, requestTimeoutMs, closeTimeoutMs, keep, maxConcurrentRequests, random, verifyIntervalMs, followAddress } = options
      // No rediscovery, route watch or listener: those follow the IPv4 gateway only, for now.
      this.#side = new NAT(options.ipv6.gateway, { lifetimeSeconds, clock, logger, requestTimeoutMs, closeTimeoutMs, keep, maxConcurrentRequests, random, verifyIntervalMs, followAddress, family: 6 })
      // Already counted and published by the side's own #emit: passed on as they are.
      forwardSideEvents(this.#side, (event, ...args) => {
        if (event !== 'error' || this.listenerCount('error') > 0) (this.emit as (e: string, ...a: unknown[]) => boolean)(event, ...args)
      })
    }
  }

  /** The IP version of this NAT's own gateway (4 unless made on an IPv6 gateway alone). */
  get family (): AddressFamily { return this.#family }
  /** The IPv6 side's gateway, when the NAT has one (NatOptions.ipv6). */
  get ipv6Gateway (): { address: string, method: MappingMethod } | undefined {
    return this.#side === undefined ? undefined : { address: this.#side.gatewayAddress, method: this.#side.method }
  }

  get method (): MappingMethod { return this.#gateway.method }
  get gatewayAddress (): string { return this.#gateway.address }
  /** The gateway's external address, undefined while unknown. */
  get externalAddress (): string | undefined { return this.#address.address }
  get externalAddressClass (): AddressClass | undefined { return this.#address.addressClass }

  /**
   * Why a mapping on this gateway will not be reachable from the internet (double NAT, CGNAT, no
   * external address), or undefined when the external address is public or not yet known.
   */
  get notPublicReason (): string | undefined { return this.#address.notPublicReason }

  /**
   * Set while the gateway refuses mappings for this host (PCP or NAT-PMP NOT_AUTHORIZED, UPnP
   * 606): the refusal, said once as an `error` event; mappings are then retried every 15 min
   * and more rarely after, quietly, until one succeeds.
   */
  get refusal (): Error | undefined { return this.#refusal }

  /**
   * Maps `protocol`/`internalPort` once before resolving, then keeps it alive. A failed first
   * attempt does not reject: it is retried in the background, as go-libp2p does, and the failure
   * is emitted as an `error` event (with `keep: false` it rejects). Repeated calls for the same
   * port share one mapping.
   */
  async addMapping (protocol: TransportProtocol, internalPort: number, options: AddMappingOptions = {}): Promise<void> {
    const proto = checkProtocol(protocol)
    checkPort(internalPort, 'internal port')
    if (options.externalPort !== undefined) checkPort(options.externalPort, 'external port')
    const nats = familiesOf(options.family, this.#family).map((family) => this.#natFor(family))
    if (this.#closed !== undefined) throw new ClosedError('NAT')
    if (nats.length > 1 || nats[0] !== this) {
      await Promise.all(nats.map(async (nat) => { await nat.addMapping(proto, internalPort, { ...options, family: nat.family }) }))
      return
    }
    const keeper = await this.#keeperFor(proto, internalPort, options)
    // The caller gave up on this attempt: say so, rather than resolve as if it had been made.
    if (options.signal?.aborted === true) throw new AbortError(options.signal.reason)
    if (!this.#keep && keeper.held === undefined) throw keeper.lastError ?? new ClosedError('NAT')
  }

  /**
   * Maps many ports: `{ protocol, port }` each, or ranges `{ protocol, ports: [first, last] }`
   * (at most 4096 ports; a bad or repeated one rejects the call with a UsageError before
   * anything is sent). The requests go a few at a time (maxConcurrentRequests). Resolves, once
   * each port's first attempt is over, with one result per port in the order asked: its
   * `mapping`, or its `error` (`retrying`: kept and retried in the background, as addMapping
   * does). An abort ends the attempts not yet made, each with an AbortError; the ports already
   * mapped stay mapped.
   */
  async addMappings (requests: readonly MappingRequest[], options: Omit<AddMappingOptions, 'externalPort'> = {}): Promise<MappingResult[]> {
    const ports = expandRequests(requests)
    const nats = familiesOf(options.family, this.#family).map((family) => this.#natFor(family))
    if (this.#closed !== undefined) throw new ClosedError('NAT')
    if (nats.length > 1 || nats[0] !== this) return (await Promise.all(nats.map(async (nat) => await nat.addMappings(requests, { ...options, family: nat.family })))).flat()
    if (options.signal?.aborted === true) throw new AbortError(options.signal.reason)
    return await Promise.all(ports.map(async ({ protocol, internalPort, externalPort }): Promise<MappingResult> => {
      const keeper = await this.#keeperFor(protocol, internalPort, { ...options, externalPort })
      const mapping = keeper.mapping
      if (mapping !== undefined) return { protocol, internalPort, mapping }
      const retrying = this.#closed === undefined && this.#keepers.get(keeper.key) === keeper
      return { protocol, internalPort, error: keeper.lastError ?? (options.signal?.aborted === true ? new AbortError(options.signal.reason) : new ClosedError('NAT')), retrying }
    }))
  }

  /** The keeper of a port, made and asked for now if there is none, once its request in flight is over. */
  async #keeperFor (protocol: TransportProtocol, internalPort: number, options: AddMappingOptions): Promise<Keeper> {
    const key = `${protocol}/${internalPort}`
    let keeper = this.#keepers.get(key)
    if (keeper === undefined) {
      keeper = new Keeper(this.#host, protocol, internalPort, options)
      this.#keepers.set(key, keeper)
      this.#logger('%s %s %d', this.#keep ? 'keeping' : 'mapping once', protocol, internalPort)
      keeper.refresh(options.signal)
    }
    await keeper.pending
    return keeper
  }

  /** The external address and port (for `family: 6` the host's address opened), or undefined while the mapping or the address is unknown. */
  getMapping (protocol: TransportProtocol, internalPort: number, options: { family?: AddressFamily } = {}): { address: string, port: number } | undefined {
    const nat = this.#natFor(familyOf(options.family, this.#family))
    if (nat !== this) return nat.getMapping(protocol, internalPort)
    const mapping = this.#keepers.get(`${protocol}/${internalPort}`)?.mapping
    // The latest address the gateway told us (a mapping reply or an announcement) wins; a pinhole's is the host's own.
    const address = this.#family === 6 ? mapping?.externalAddress : this.#address.address ?? mapping?.externalAddress
    if (mapping === undefined || address === undefined) return undefined
    return { address, port: mapping.externalPort }
  }

  /** The mappings held now, both families, with what a later process needs to renew or delete them (see mappingToJSON). */
  mappings (): Array<PortMapping & { family: AddressFamily }> {
    const own = [...this.#keepers.values()].flatMap((keeper) => keeper.held === undefined ? [] : [{ ...keeper.held, family: this.#family }])
    return [...own, ...(this.#side?.mappings() ?? [])]
  }

  #natFor (family: AddressFamily): NAT {
    return natFor(family, this, this.#family, { nat: this.#side, family: 6 })
  }

  /** What this NAT has done so far: requests per protocol (on every gateway it used), mappings, renewals, losses, recoveries. */
  stats (): NatStats {
    const current = this.#gateway.describe().counters?.() ?? {}
    return {
      method: this.#gateway.method,
      gateway: this.#gateway.address,
      protocols: addCounters(this.#pastCounters, current),
      mappingsHeld: this.mappings().length,
      mapped: this.#tally.mapped,
      renewals: this.#tally.renewed,
      lost: this.#tally.lost,
      recoveries: this.#recovery.recoveries,
      rediscoveries: this.#recovery.rediscoveries,
      gatewayChanges: this.#tally['gateway-changed'],
      errors: this.#tally.error
    }
  }

  /** Stops keeping the mapping and deletes it on the router. */
  async removeMapping (protocol: TransportProtocol, internalPort: number, options: { signal?: AbortSignal, family?: AddressFamily | 'both' } = {}): Promise<void> {
    const proto = checkProtocol(protocol)
    const nats = familiesOf(options.family, this.#family).map((family) => this.#natFor(family))
    if (nats.length > 1 || nats[0] !== this) {
      await Promise.all(nats.map(async (nat) => { await nat.removeMapping(proto, internalPort, { signal: options.signal, family: nat.family }) }))
      return
    }
    const key = `${proto}/${internalPort}`
    const keeper = this.#keepers.get(key)
    if (keeper === undefined) throw new UsageError(`no mapping for ${proto} port ${internalPort}`)
    this.#keepers.delete(key)
    const left = await keeper.release({ signal: options.signal })
    if (left !== undefined) throw left.error
  }

  /**
   * Stops keeping many ports and deletes their mappings (the same requests as addMappings),
   * a few at a time; a contiguous range in one request where the gateway can and every entry in
   * it is ours (UPnP IGD v2 DeletePortMappingRange). One result per port, in order: no `error`
   * when deleted (or there was nothing to delete), else why not (a port not kept is a UsageError).
   */
  async removeMappings (requests: readonly MappingRequest[], options: { signal?: AbortSignal } = {}): Promise<RemovalResult[]> {
    const ports = expandRequests(requests)
    const results: RemovalResult[] = ports.map(({ protocol, internalPort }) => ({ protocol, internalPort }))
    const taking = results.map(async (result) => {
      const key = `${result.protocol}/${result.internalPort}`
      const keeper = this.#keepers.get(key)
      if (keeper === undefined) {
        result.error = new UsageError(`no mapping for ${result.protocol} port ${result.internalPort}`)
        return undefined
      }
      this.#keepers.delete(key)
      const held = await keeper.take(options.signal)
      if (held === undefined) return undefined
      return {
        ...held,
        done: (error: Error | undefined) => {
          if (error === undefined) keeper.released()
          else result.error = keeper.notReleased(held.mapping, error, options.signal).error
        }
      }
    })
    const removals = (await Promise.all(taking)).filter((r) => r !== undefined)
    await deleteAll(removals, this.#slots, { timeoutMs: this.#requestTimeoutMs, signal: options.signal })
    return results
  }

  /**
   * Asks the gateway for its external address, unless known (one request shared by concurrent
   * callers). Asked in the background after the first mappings when discovery did not learn it:
   * a PCP MAP reply carries the address and a UPnP client asks alongside its first add, so an
   * application that maps at once costs the router nothing more. An answer with no usable
   * address is the double-NAT sign that discovery would have reported.
   */
  async askExternalAddress (): Promise<void> {
    this.#asking ??= (async () => {
      await Promise.allSettled([...this.#keepers.values()].map(async (keeper) => { await keeper.pending }))
      const gateway = this.#gateway
      if (this.#closed !== undefined || !this.#address.unknown) return
      try {
        const address = await gateway.externalAddress({ timeoutMs: this.#requestTimeoutMs, signal: this.#closing.signal })
        if (this.#closed === undefined && this.#gateway === gateway) this.#address.learn(address)
      } catch (err) {
        this.#logger('external address: %s', (err as Error).message)
        this.#address.noteFailure(err)
      }
    })().finally(() => { this.#asking = undefined })
    await this.#asking
  }

  /**
   * Deletes every mapping this object made (with `keep: false`, leaves them) and stops every timer
   * and socket. Resolves with the mappings it could not delete, which stay on the gateway until
   * their lease ends. Idempotent.
   */
  async close (): Promise<LeftMapping[]> {
    this.#closed ??= Promise.all([this.#close(), this.#side?.close() ?? []]).then(([own, side]) => [...own, ...side])
    return await this.#closed
  }

  async #close (): Promise<LeftMapping[]> {
    this.#recovery.close()
    this.#follower?.close()
    const keepers = [...this.#keepers.values()]
    this.#keepers.clear()
    // Requests not yet sent are not sent; those in flight are given up on, and what they may have made is deleted.
    this.#slots.close()
    this.#closing.abort(new ClosedError('NAT'))
    await this.#recovery.rediscovering?.catch(() => {})
    if (!this.#keep) {
      await Promise.all(keepers.map(async (keeper) => { await keeper.settle() }))
      this.#gateway.close()
      return []
    }
    await this.#follower?.moving?.catch(() => {})
    const left = await this.#releaseAll(keepers)
    this.#gateway.close()
    for (const gateway of this.#retired) gateway.close()
    return left
  }

  /**
   * Deletes with the same bound on requests in flight as the mapping. Once a delete goes
   * unanswered the router is taken for gone: the other deletes are given up at once, each left
   * with that reason (naming the delete that went unanswered), not with that delete's own error.
   */
  async #releaseAll (keepers: Keeper[]): Promise<LeftMapping[]> {
    const slots = new RequestSlots(this.#concurrency)
    const gone = new AbortController()
    // As #closing: every delete waiting for a slot listens to it.
    setMaxListeners(0, gone.signal)
    const left: LeftMapping[] = []
    await Promise.all(keepers.map(async (keeper) => {
      try {
        await slots.run(async () => {
          const limit = deadline(this.#clock, this.#closeTimeoutMs, () => new TimeoutError(`no answer to the delete within ${this.#closeTimeoutMs} ms`), gone.signal)
          try {
            const failed = await keeper.release({ timeoutMs: this.#closeTimeoutMs, signal: limit.signal })
            if (failed === undefined) return
            left.push(failed)
            if (!gone.signal.aborted && (failed.error instanceof TimeoutError || failed.error instanceof NoResponseError)) {
              gone.abort(new NoResponseError(`given up: the router stopped answering (the delete of ${keeper.protocol} ${keeper.internalPort}: ${failed.error.message})`, { cause: failed.error }))
            }
          } finally {
            limit.cancel()
          }
        }, gone.signal)
      } catch (err) {
        const mapping = keeper.held
        if (mapping !== undefined) left.push({ mapping, error: gone.signal.reason instanceof Error ? gone.signal.reason : err as Error })
      }
    }))
    // A delete cut short by the give-up may have failed as a bare abort (a lower layer's shared
    // wait, aborted for another request): it was given up, and says why.
    if (!(gone.signal.reason instanceof Error)) return left
    const reason = gone.signal.reason
    return left.map((l) => l.error.name === 'AbortError' ? { mapping: l.mapping, error: reason } : l)
  }

  #granted (mapping: PortMapping): void {
    this.#recovery.answered()
    if (this.#refusal !== undefined) {
      this.#logger('the gateway accepts mappings again')
      this.#refusal = undefined
    }
    if (mapping.externalAddress !== undefined) this.#address.learn(mapping.externalAddress)
  }

  /** Accounting for a failed request; true when it repeats a standing refusal (said once, not per retry: quirk 23). */
  #failed (error: Error): boolean {
    this.#address.noteFailure(error)
    const repeated = isNotAuthorized(error) && this.#refusal !== undefined
    if (isNotAuthorized(error)) this.#refusal ??= error
    if (error instanceof NoResponseError) this.#recovery.refused()
    return repeated
  }

  /**
   * The host's IPv6 address changed: `next` is the gateway for `address`, and every pinhole is
   * made there, then deleted on `previous` (Keeper.move). The old gateway stays open while a
   * pinhole whose move failed is still on it (a retry moves it; close() deletes it there).
   */
  async #move (next: Gateway, previous: string, address: string): Promise<void> {
    if (this.#closed !== undefined) {
      next.close()
      return
    }
    const old = this.#gateway
    this.#pastCounters = addCounters(this.#pastCounters, old.describe().counters?.() ?? {})
    this.#gateway = next
    this.#retired.add(old)
    this.#recovery.watch(next)
    this.#emit('address-changed', { family: 6, previous, address })
    await Promise.all([...this.#keepers.values()].map(async (keeper) => { await keeper.move() }))
    for (const gateway of this.#retired) {
      if (this.#closed !== undefined || [...this.#keepers.values()].some((keeper) => keeper.madeOn === gateway)) continue
      this.#retired.delete(gateway)
      gateway.close()
    }
  }

  #replaceGateway (gateway: Gateway, reason: string): void {
    const previous = this.#gateway
    this.#pastCounters = addCounters(this.#pastCounters, previous.describe().counters?.() ?? {})
    this.#gateway = gateway
    previous.close()
    this.#emit('gateway-changed', { previous: previous.address, address: gateway.address, method: gateway.method, reason })
  }

  /** Counted, published on `natmapper:nat`; an `error` nobody listens to is not thrown (EventEmitter would throw it). */
  #emit<E extends keyof NatEvents> (event: E, ...args: NatEvents[E]): void {
    if (Object.hasOwn(this.#tally, event)) this.#tally[event as TalliedEvent]++
    if (natChannel.hasSubscribers) natChannel.publish({ event, gateway: this.#gateway.address, method: this.#gateway.method, detail: args[0] })
    if (event === 'error' && this.listenerCount('error') === 0) return
    ;(this.emit as (event: E, ...args: NatEvents[E]) => boolean)(event, ...args)
  }
}

function checkProtocol (protocol: unknown): TransportProtocol {
  if (protocol === 'tcp' || protocol === 'udp') return protocol
  throw new UsageError(`invalid protocol: ${JSON.stringify(protocol)} (expected "tcp" or "udp")`)
}

function checkPort (port: unknown, what: string): void {
  if (typeof port !== 'number') throw new UsageError(`invalid ${what}: ${JSON.stringify(port)} is a ${typeof port}, not a number (expected an integer from 1 to 65535)`)
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new UsageError(`invalid ${what}: ${String(port)} (expected an integer from 1 to 65535)`)
}
