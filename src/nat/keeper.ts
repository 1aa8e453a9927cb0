import type { Clock, TimerHandle } from '../clock.js'
import { AbortError, GatewayResetError, UncertainMappingError } from '../errors.js'
import { renewAtMs, renewalAtMs, type AddressFamily, type CallOptions, type Gateway, type PortMapping, type TransportProtocol } from '../gateway.js'
import type { Logger } from '../log.js'
import { retryDelayMs } from './retry.js'
import type { RequestSlots } from './slots.js'
import type { AddMappingOptions, LeftMapping, MappingEvent, NatEvents } from './types.js'

/** Node's timers cannot wait longer than 2^31 - 1 ms. */
const MAX_TIMER_DELAY_MS = 2 ** 31 - 1

/** What a keeper needs from the NAT that owns it. */
export interface KeeperHost {
  readonly clock: Clock
  readonly logger: Logger
  readonly family: AddressFamily
  readonly lifetimeSeconds: number
  readonly requestTimeoutMs: number
  /** NatOptions.verifyIntervalMs: undefined takes the gateway's, 0 turns verification off. */
  readonly verifyIntervalMs: number | undefined
  readonly keep: boolean
  /** Random numbers in [0, 1), for the renewal time (renewalDelayMs). */
  readonly random: () => number
  readonly slots: RequestSlots
  /** Aborts at close(): what is in flight then is given up on, and deleted if it may have been made. */
  readonly closing: AbortSignal
  gateway(): Gateway
  isLive(keeper: Keeper): boolean
  /** A first attempt was cancelled by its caller: the port is no longer kept. */
  forget(keeper: Keeper): void
  /** A request succeeded (the NAT learns the address, clears refusals). */
  granted(mapping: PortMapping): void
  /** A request failed; true when the failure is a repeat not worth saying again (a standing refusal). */
  failed(error: Error): boolean
  emit<E extends keyof NatEvents>(event: E, ...args: NatEvents[E]): void
}

/**
 * Keeps one port mapped: the first request, renewal at half the granted lifetime, checks that the
 * gateway still holds it, retries after failures, and its removal. The NAT owns one per port.
 */
export class Keeper {
  readonly key: string
  readonly protocol: TransportProtocol
  readonly internalPort: number
  readonly #options: AddMappingOptions
  readonly #host: KeeperHost
  #mapping: PortMapping | undefined
  /** The gateway `mapping` was made on; a renewal elsewhere is a new mapping. */
  #madeOn: Gateway | undefined
  /** The gateway lost it (a reset): it is being made again, and is not reachable meanwhile. */
  #lost = false
  #timer: TimerHandle | undefined
  #verifyTimer: TimerHandle | undefined
  #verifying: Promise<void> | undefined
  /** The background check of a new mapping (MapResult.check), while it runs. */
  #checking: Promise<void> | undefined
  /** The request in flight, shared by concurrent callers. */
  #pending: Promise<void> | undefined
  #failures = 0
  /** The last failure of a first attempt, for addMapping under `keep: false`. */
  #lastError: Error | undefined
  /** What an unanswered request may have made anyway (see UncertainMappingError). */
  #uncertain: { mapping: PortMapping, gateway: Gateway } | undefined
  /** The mapping being moved to the current gateway (a new local address): deleted once the new one is made. */
  #moving: { mapping: PortMapping, gateway: Gateway } | undefined

  constructor (host: KeeperHost, protocol: TransportProtocol, internalPort: number, options: AddMappingOptions) {
    this.#host = host
    this.key = `${protocol}/${internalPort}`
    this.protocol = protocol
    this.internalPort = internalPort
    this.#options = options
  }

  /** The mapping held, or undefined while there is none (not yet made, lost, being made again). */
  get mapping (): PortMapping | undefined { return this.#lost ? undefined : this.#mapping }
  get pending (): Promise<void> | undefined { return this.#pending }
  get lastError (): Error | undefined { return this.#lastError }
  /** The gateway the mapping held was made on. */
  get madeOn (): Gateway | undefined { return this.#madeOn }

  /** Asks the gateway now, unless a request is already in flight. */
  refresh (signal?: AbortSignal): void {
    if (this.#pending !== undefined) return
    this.#clearTimers()
    this.#pending = this.#request(signal).finally(() => { this.#pending = undefined })
  }

  /** The gateway lost the mapping (it restarted): say so now; refresh() makes it again. */
  markLost (reason: string): void {
    if (this.#mapping === undefined || this.#lost) return
    this.#lost = true
    this.#host.emit('lost', { family: this.#host.family, protocol: this.protocol, internalPort: this.internalPort, reason: new GatewayResetError(reason) })
  }

  /**
   * The host's address changed (the NAT's gateway is now the one for the new address): makes the
   * mapping there, and only once it is made deletes it where it was, so the port is never closed
   * in between. Resolves when both are done (or the first failed: it is retried as a failed
   * renewal would be, and the old one deleted when a retry succeeds).
   */
  async move (): Promise<void> {
    while (this.#pending !== undefined) await this.#pending
    const on = this.#madeOn
    if (this.#mapping !== undefined && on !== undefined && on !== this.#host.gateway()) this.#moving = { mapping: this.#mapping, gateway: on }
    this.refresh()
    await this.#pending
    await this.#deleting
  }

  /** The delete of a moved mapping's old copy, while it runs. */
  #deleting: Promise<void> | undefined

  async #request (signal: AbortSignal | undefined): Promise<void> {
    const host = this.#host
    const gateway = host.gateway()
    const previous = this.#mapping
    const stop = signal === undefined ? host.closing : AbortSignal.any([signal, host.closing])
    const call: CallOptions = { timeoutMs: host.requestTimeoutMs, signal: stop }
    try {
      const mapping = await host.slots.run(async () => {
        // A renewal asks for the port the mapping had; on a new gateway (or after the old one lost
        // it) a fresh request asks for that port too, so peers that know it keep working.
        if (previous !== undefined && this.#madeOn === gateway) return { mapping: await gateway.renew(previous, call) }
        // What an unanswered first attempt may have made is asked for again as it was asked (a PCP
        // server holds it under that nonce, and refuses the port to another: RFC 6887 §11.5).
        const uncertain = this.#uncertain
        if (previous === undefined && uncertain !== undefined && uncertain.gateway === gateway) return { mapping: await gateway.renew(uncertain.mapping, call) }
        return await gateway.map({
          protocol: this.protocol,
          internalPort: this.internalPort,
          lifetimeSeconds: host.lifetimeSeconds,
          suggestedExternalPort: previous?.externalPort ?? this.#options.externalPort,
          description: this.#options.description
        }, call)
      }, stop)
      // Mapping once: the check is part of the answer. Kept: addMapping returns once the mapping
      // is granted, and the check's outcome is followed after.
      const checked = !host.keep && mapping.check !== undefined ? { mapping: await mapping.check } : mapping
      await this.#granted(gateway, previous, checked.mapping)
      if (checked.check !== undefined && this.#host.isLive(this)) this.#followCheck(gateway, checked.mapping, checked.check)
    } catch (err) {
      await this.#failed(gateway, previous, err as Error)
    }
  }

  async #granted (gateway: Gateway, previous: PortMapping | undefined, mapping: PortMapping): Promise<void> {
    const host = this.#host
    if (!host.isLive(this)) {
      // Removed or closed while the request was in flight: undo it.
      if (host.keep) await gateway.unmap(mapping, { timeoutMs: host.requestTimeoutMs }).catch(() => {})
      return
    }
    const wasLost = this.#lost
    this.#mapping = mapping
    this.#madeOn = gateway
    this.#lost = false
    this.#failures = 0
    this.#lastError = undefined
    this.#settleUncertain(mapping)
    host.granted(mapping)
    const moved = this.#moving !== undefined && this.#moving.gateway !== gateway ? this.#moving : undefined
    if (moved !== undefined) this.#dropMoved(moved)
    // Moved: a new mapping (a new external address), not a renewal.
    host.emit(previous === undefined || wasLost || moved !== undefined ? 'mapped' : 'renewed', toEvent(mapping, host.family))
    if (!host.keep) return
    this.#schedule(this.#renewalDelayMs(mapping))
    this.#scheduleVerify()
  }

  /** When to renew `mapping`, from now (see renewalAtMs). */
  #renewalDelayMs (mapping: PortMapping): number {
    return renewalAtMs(mapping, this.#host.random()) - this.#host.clock.now()
  }

  async #failed (gateway: Gateway, previous: PortMapping | undefined, error: Error): Promise<void> {
    const host = this.#host
    const reason = error instanceof UncertainMappingError ? error.reason : error
    // A first attempt that may have been applied although it failed (no answer): remember it,
    // so that giving up on the port deletes it (quirk 11).
    if (error instanceof UncertainMappingError && this.#mapping === undefined) this.#uncertain = { mapping: error.mapping, gateway }
    if (!host.isLive(this)) {
      // Removed or closed meanwhile: release() waits for this, so the delete goes out before close() ends.
      await this.#dropUncertain()
      return
    }
    const quiet = host.failed(reason)
    // What addMappings reports for a port whose first attempt failed (kept, it is retried).
    if (previous === undefined) this.#lastError = error
    if (previous === undefined && (reason instanceof AbortError || !host.keep)) {
      // The first attempt was cancelled by the caller of addMapping, or mapping once failed: forget the port.
      host.forget(this)
      await this.#dropUncertain()
      return
    }
    this.#failures++
    if (!quiet) host.logger('%s %d: %s', this.protocol, this.internalPort, error.message)
    if (previous !== undefined && host.clock.now() >= previous.expiresAtMs && !this.#lost) {
      this.#mapping = undefined
      this.#madeOn = undefined
      host.emit('lost', { family: this.#host.family, protocol: this.protocol, internalPort: this.internalPort, reason: error })
    }
    if (!quiet) host.emit('error', error, { family: this.#host.family, protocol: this.protocol, internalPort: this.internalPort })
    // Try once more right at expiry, so a mapping that cannot be renewed is reported lost when it
    // ends rather than at the next back-off step.
    const untilExpiryMs = this.#mapping === undefined || this.#lost ? Infinity : this.#mapping.expiresAtMs - host.clock.now()
    this.#schedule(Math.min(retryDelayMs(this.#failures, reason), untilExpiryMs))
  }

  #schedule (delayMs: number): void {
    this.#clearTimers()
    if (!Number.isFinite(delayMs)) return
    // A gateway may grant a lifetime whose half exceeds what a timer can wait (about 24.8 days;
    // beyond it Node fires at once, which would renew in a loop): wake up then and renew early.
    this.#timer = this.#host.clock.setTimeout(() => {
      this.#timer = undefined
      if (this.#host.isLive(this)) this.refresh()
    }, Math.min(Math.max(0, delayMs), MAX_TIMER_DELAY_MS))
    this.#timer.unref?.()
  }

  #clearTimers (): void {
    for (const timer of [this.#timer, this.#verifyTimer]) if (timer !== undefined) this.#host.clock.clearTimeout(timer)
    this.#timer = undefined
    this.#verifyTimer = undefined
  }

  /**
   * Checks, every verify interval until the renewal is due, that the gateway still holds the
   * mapping, and makes it again when it does not: routers that purge their table (ASUS: quirk 26)
   * or drop leased entries early (old DD-WRT: quirk 10) would otherwise leave the port closed
   * until the next renewal, hours later. A check that fails (no answer) changes nothing.
   */
  #scheduleVerify (): void {
    const { clock, verifyIntervalMs } = this.#host
    const gateway = this.#madeOn
    const mapping = this.#mapping
    const verify = gateway?.describe().verify
    if (gateway === undefined || mapping === undefined || verify === undefined) return
    const intervalMs = verifyIntervalMs ?? verify.intervalMs
    if (!(intervalMs > 0) || renewAtMs(mapping) - clock.now() <= intervalMs) return
    this.#verifyTimer = clock.setTimeout(() => {
      this.#verifyTimer = undefined
      const verifying: Promise<void> = this.#verify(mapping, verify.check).finally(() => { if (this.#verifying === verifying) this.#verifying = undefined })
      this.#verifying = verifying
    }, Math.min(intervalMs, MAX_TIMER_DELAY_MS))
    this.#verifyTimer.unref?.()
  }

  async #verify (mapping: PortMapping, check: (mapping: PortMapping, options?: CallOptions) => Promise<boolean>): Promise<void> {
    const host = this.#host
    const current = (): boolean => host.isLive(this) && this.#pending === undefined && this.#mapping === mapping && !this.#lost
    if (!current()) return
    let present: boolean
    try {
      present = await host.slots.run(async () => await check(mapping, { timeoutMs: host.requestTimeoutMs, signal: host.closing }), host.closing)
    } catch (err) {
      host.logger('could not verify %s %d: %s', this.protocol, this.internalPort, (err as Error).message)
      present = true
    }
    // Renewed, removed or closed meanwhile: this answer is about a mapping no longer kept.
    if (!current()) return
    if (present) {
      this.#scheduleVerify()
      return
    }
    host.logger('%s %d: the gateway no longer holds external port %d; making it again', this.protocol, this.internalPort, mapping.externalPort)
    this.refresh()
  }

  /**
   * The outcome of a new mapping's background check (UPnP read-back): the gateway holds it as made
   * (nothing to do), holds it another way the client had to make it (this is the mapping now), or
   * could not be made to keep it (lost; retried later).
   */
  #followCheck (gateway: Gateway, mapping: PortMapping, check: Promise<PortMapping>): void {
    const host = this.#host
    const run = async (): Promise<void> => {
      let checked: PortMapping
      try {
        checked = await check
      } catch (err) {
        if (!host.isLive(this) || this.#mapping !== mapping) return
        const error = err as Error
        if (error instanceof UncertainMappingError) this.#uncertain = { mapping: error.mapping, gateway }
        this.#mapping = undefined
        this.#madeOn = undefined
        this.#failures++
        host.logger('%s %d: %s', this.protocol, this.internalPort, error.message)
        host.emit('lost', { family: this.#host.family, protocol: this.protocol, internalPort: this.internalPort, reason: error })
        host.emit('error', error, { family: this.#host.family, protocol: this.protocol, internalPort: this.internalPort })
        this.#schedule(retryDelayMs(this.#failures, error))
        return
      }
      if (checked === mapping) return
      if (!host.isLive(this) || this.#mapping !== mapping) {
        // Removed, closed or renewed meanwhile: what the check made is kept by no one.
        if (this.#mapping !== checked) await gateway.unmap(checked, { timeoutMs: host.requestTimeoutMs }).catch(() => {})
        return
      }
      this.#mapping = checked
      host.emit('mapped', toEvent(checked, host.family))
      this.#schedule(this.#renewalDelayMs(checked))
      this.#scheduleVerify()
    }
    const checking: Promise<void> = run().finally(() => { if (this.#checking === checking) this.#checking = undefined })
    this.#checking = checking
  }

  /** After a success: an uncertain earlier attempt on another port is deleted; one on this port was overwritten. */
  #settleUncertain (mapping: PortMapping): void {
    const uncertain = this.#uncertain
    this.#uncertain = undefined
    if (uncertain === undefined || (uncertain.mapping.externalPort === mapping.externalPort && uncertain.gateway === this.#madeOn)) return
    void uncertain.gateway.unmap(uncertain.mapping, { timeoutMs: this.#host.requestTimeoutMs }).catch(() => {})
  }

  /** The old copy of a moved mapping, deleted now that the new one is made (best effort: else it ends with its lease). */
  #dropMoved (moved: { mapping: PortMapping, gateway: Gateway }): void {
    this.#moving = undefined
    const host = this.#host
    this.#deleting = moved.gateway.unmap(moved.mapping, { timeoutMs: host.requestTimeoutMs })
      .then(() => { host.logger('%s %d: deleted on %s, the old address', this.protocol, this.internalPort, moved.mapping.externalAddress) },
        (err: unknown) => { host.logger('%s %d: could not delete it on the old address %s: %s', this.protocol, this.internalPort, moved.mapping.externalAddress, (err as Error).message) })
      .finally(() => { this.#deleting = undefined })
  }

  /** Deletes, best effort, what an unanswered attempt may have made, for a port given up. */
  async #dropUncertain (signal?: AbortSignal): Promise<void> {
    const uncertain = this.#uncertain
    this.#uncertain = undefined
    if (uncertain === undefined) return
    this.#host.logger('%s %d: deleting what an unanswered request may have made (external port %d)', this.protocol, this.internalPort, uncertain.mapping.externalPort)
    await uncertain.gateway.unmap(uncertain.mapping, { timeoutMs: this.#host.requestTimeoutMs, signal }).catch(() => {})
  }

  /** Waits for what is in flight; what it waited for now settled. */
  async settle (): Promise<void> {
    this.#clearTimers()
    await this.#verifying
    await this.#pending?.catch(() => {})
    await this.#checking
    await this.#deleting
  }

  /**
   * Stops keeping the mapping and deletes it on the gateway (call once the keeper is no longer
   * live). Returns what could not be deleted.
   */
  async release (options: CallOptions = {}): Promise<LeftMapping | undefined> {
    const held = await this.take(options.signal)
    if (held === undefined) return undefined
    try {
      await held.gateway.unmap(held.mapping, { timeoutMs: options.timeoutMs ?? this.#host.requestTimeoutMs, signal: options.signal })
      this.released()
      return undefined
    } catch (err) {
      return this.notReleased(held.mapping, err as Error, options.signal)
    }
  }

  /**
   * The first half of release(): waits for what is in flight and hands over the mapping to
   * delete, with the gateway it was made on (undefined when there is none: what an unanswered
   * attempt may have made is deleted here). The caller deletes it and says how it went
   * (released, notReleased): removeMappings deletes many in one request where it can.
   */
  async take (signal?: AbortSignal): Promise<{ mapping: PortMapping, gateway: Gateway } | undefined> {
    await this.settle()
    const mapping = this.#mapping
    const madeOn = this.#madeOn
    this.#mapping = undefined
    if (mapping === undefined || madeOn === undefined) {
      await this.#dropUncertain(signal)
      return undefined
    }
    return { mapping, gateway: madeOn }
  }

  /** The mapping take() handed over was deleted. */
  released (): void {
    this.#host.emit('unmapped', { family: this.#host.family, protocol: this.protocol, internalPort: this.internalPort })
  }

  /** The mapping take() handed over could not be deleted: said, and returned as left. */
  notReleased (mapping: PortMapping, err: Error, signal?: AbortSignal): LeftMapping {
    // Given up by close()'s deadline: its reason says more than "aborted".
    const error = err instanceof AbortError && signal?.reason instanceof Error ? signal.reason : err
    this.#host.logger('could not delete %s %d: %s', this.protocol, this.internalPort, error.message)
    this.#host.emit('error', error, { family: this.#host.family, protocol: this.protocol, internalPort: this.internalPort })
    return { mapping, error }
  }

  /** The mapping as it stands, for close() under `keep: false`, which leaves it. */
  get held (): PortMapping | undefined { return this.#mapping }
}

export function toEvent (mapping: PortMapping, family: AddressFamily): MappingEvent {
  return {
    family,
    protocol: mapping.protocol,
    internalPort: mapping.internalPort,
    externalAddress: mapping.externalAddress,
    externalPort: mapping.externalPort,
    method: mapping.method,
    lifetimeSeconds: mapping.lifetimeSeconds
  }
}
