import { EventEmitter } from 'node:events'
import { systemClock, type Clock, type TimerHandle } from './clock.js'
import { AbortError, ClosedError, NoResponseError, UsageError } from './errors.js'
import { pendingCheckOf, renewAtMs, uncertainMappingOf, type Gateway, type MappingMethod, type PortMapping, type TransportProtocol } from './gateway.js'
import { createLogger, type Logger } from './log.js'
import { isNotAuthorized, nextRecoveryStreak, recoveryHoldMs, rediscoveryIntervalMs, retryDelayMs } from './nat-retry.js'
import { classifyAddress, notPublicReason, notPublicReasonOf, type AddressClass } from './net/address-class.js'
import type { Announcement } from './net/announcements.js'
import type { AddMappingOptions, AnnouncementSource, MappingEvent, NatEvents, NatOptions } from './nat-types.js'

/**
 * The mapping manager: the behaviour contract of go-libp2p's p2p/net/nat NAT object (add,
 * get, remove, close; map once synchronously, then keep the mapping alive in the background),
 * with renewal driven by the lifetime the gateway granted instead of a fixed 20 s poll, and
 * recovery driven by what the gateway says (epochs, announcements) instead of three failures.
 */

export type { AddMappingOptions, AnnouncementSource, MappingEvent, NatEvents, NatOptions } from './nat-types.js'

interface Entry {
  key: string
  protocol: TransportProtocol
  internalPort: number
  options: AddMappingOptions
  mapping: PortMapping | undefined
  /** The gateway `mapping` was made on; a renewal elsewhere is a new mapping. */
  madeOn: Gateway | undefined
  timer: TimerHandle | undefined
  /** The next verification (see Gateway.verify), and the one in flight. */
  verifyTimer: TimerHandle | undefined
  verifying: Promise<void> | undefined
  /** The background check of a new mapping (MapRequest.deferCheck), while it runs. */
  checking: Promise<void> | undefined
  /** The request in flight, shared by concurrent callers. */
  pending: Promise<void> | undefined
  failures: number
  /** A mapping a failed first attempt may have made anyway (see attachUncertainMapping). */
  uncertain: { mapping: PortMapping, gateway: Gateway } | undefined
}

/** An epoch reset seen this soon after a recovery fired is the one it handled. */
const SAME_RESET_WINDOW_MS = 10_000
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
  #announcements: AnnouncementSource | undefined
  readonly #announcementsFor: NatOptions['announcementsFor']
  readonly #entries = new Map<string, Entry>()
  #externalAddress: string | undefined
  #notPublicReason: string | undefined
  #closed: Promise<void> | undefined
  #refusals = 0
  #rediscovering: Promise<void> | undefined
  #recoveryTimer: TimerHandle | undefined
  #routeTimer: TimerHandle | undefined
  #routeGateway: string | undefined
  readonly #verifyIntervalMs: number | undefined
  /** Set while the gateway refuses us with NOT_AUTHORIZED / 606 (see DISABLED_RETRY_BASE_MS). */
  #disabled: Error | undefined
  #lastRediscoveryMs: number | undefined
  #rediscoveryFailures = 0
  #lastRecoveryMs: number | undefined
  #recoveryStreak = 0

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
    this.#verifyIntervalMs = options.verifyIntervalMs
    this.#notPublicReason = options.notPublicReason
    if (options.externalAddress !== undefined) this.#learnExternalAddress(options.externalAddress, false)
    else if (options.askExternalAddress === true) this.#askExternalAddress()
    this.#watchGateway(gateway)
    this.#announcementsFor = options.announcementsFor
    this.#listenTo(options.announcements)
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
   * Set while the gateway refuses mappings for this host (PCP or NAT-PMP NOT_AUTHORIZED, UPnP
   * 606): the refusal, said once as an `error` event; mappings are then retried every 15 min
   * and more rarely after, quietly, until one succeeds.
   */
  get refusal (): Error | undefined { return this.#disabled }

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
      entry = { key, protocol: proto, internalPort, options, mapping: undefined, madeOn: undefined, timer: undefined, verifyTimer: undefined, verifying: undefined, checking: undefined, pending: undefined, failures: 0, uncertain: undefined }
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
    this.#clearTimers(entry)
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
            ...(entry.options.description === undefined ? {} : { description: entry.options.description }),
            // addMapping returns once the mapping is granted; a read-back runs after (#followCheck).
            deferCheck: true
          }, callOptions)
        await this.#refreshed(entry, gateway, previous, mapping)
      } catch (err) {
        await this.#refreshFailed(entry, gateway, previous, err as Error)
      }
    }
    entry.pending = run().finally(() => { entry.pending = undefined })
  }

  /** A request of #refresh granted `mapping`. (Apart from #refreshFailed: a cold process compiles only the one that runs.) */
  async #refreshed (entry: Entry, gateway: Gateway, previous: PortMapping | undefined, mapping: PortMapping): Promise<void> {
    if (!this.#isLive(entry)) {
      // Removed or closed while the request was in flight: undo it.
      await gateway.unmap(mapping, { timeoutMs: this.#requestTimeoutMs }).catch(() => {})
      return
    }
    entry.mapping = mapping
    entry.madeOn = gateway
    entry.failures = 0
    this.#refusals = 0
    this.#settleUncertain(entry, mapping)
    if (this.#disabled !== undefined) {
      this.#logger('the gateway accepts mappings again')
      this.#disabled = undefined
    }
    if (mapping.externalAddress !== undefined) this.#learnExternalAddress(mapping.externalAddress, true)
    this.emit(previous === undefined ? 'mapped' : 'renewed', toEvent(mapping))
    this.#schedule(entry, renewAtMs(mapping) - this.#clock.now())
    this.#scheduleVerify(entry)
    const check = pendingCheckOf(mapping)
    if (check !== undefined) this.#followCheck(entry, gateway, mapping, check)
  }

  /** A request of #refresh failed: keep what may have been made, report, retry later. */
  async #refreshFailed (entry: Entry, gateway: Gateway, previous: PortMapping | undefined, error: Error): Promise<void> {
    if (this.#externalAddress === undefined) this.#noteNotPublic(notPublicReasonOf(error))
    // A first attempt that may have been applied although it failed (no answer): remember
    // it, so that giving up on the port deletes it (quirk 11).
    const uncertain = uncertainMappingOf(error)
    if (uncertain !== undefined && entry.mapping === undefined) entry.uncertain = { mapping: uncertain, gateway }
    if (!this.#isLive(entry)) {
      // Removed or closed meanwhile: #release waits for this, so the delete goes out before close() ends.
      await this.#dropUncertain(entry)
      return
    }
    if (error instanceof AbortError && previous === undefined) {
      // The first attempt was cancelled by the caller of addMapping: forget the entry.
      this.#entries.delete(entry.key)
      void this.#dropUncertain(entry)
      return
    }
    entry.failures++
    // A refusal for this host says nothing new the second time: one log line and one event
    // while it lasts, not one per mapping and retry (quirk 23).
    const repeated = isNotAuthorized(error) && this.#disabled !== undefined
    if (isNotAuthorized(error)) this.#disabled ??= error
    if (!repeated) this.#logger('%s %d: %s', entry.protocol, entry.internalPort, error.message)
    if (previous !== undefined && this.#clock.now() >= previous.expiresAtMs) {
      entry.mapping = undefined
      entry.madeOn = undefined
      this.emit('lost', { protocol: entry.protocol, internalPort: entry.internalPort, reason: error })
    }
    if (!repeated && this.listenerCount('error') > 0) this.emit('error', error)
    if (error instanceof NoResponseError && ++this.#refusals >= REFUSALS_BEFORE_REDISCOVERY) {
      this.#rediscover(`${this.#refusals} requests refused in a row`)
    }
    // Try once more right at expiry, so a mapping that cannot be renewed is reported lost
    // when it ends rather than at the next back-off step.
    const untilExpiryMs = entry.mapping === undefined ? Infinity : entry.mapping.expiresAtMs - this.#clock.now()
    this.#schedule(entry, Math.min(retryDelayMs(entry.failures, error), untilExpiryMs))
  }

  #schedule (entry: Entry, delayMs: number): void {
    this.#clearTimers(entry)
    if (!Number.isFinite(delayMs)) return
    // A gateway may grant a lifetime whose half exceeds what a timer can wait (about 24.8 days;
    // beyond it Node fires at once, which would renew in a loop): wake up then and renew early.
    entry.timer = this.#clock.setTimeout(() => {
      entry.timer = undefined
      if (this.#isLive(entry)) this.#refresh(entry)
    }, Math.min(Math.max(0, delayMs), MAX_TIMER_DELAY_MS))
    entry.timer.unref?.()
  }

  #clearTimers (entry: Entry): void {
    for (const timer of [entry.timer, entry.verifyTimer]) if (timer !== undefined) this.#clock.clearTimeout(timer)
    entry.timer = undefined
    entry.verifyTimer = undefined
  }

  /**
   * Checks, every verify interval until the renewal is due, that the gateway still holds the
   * mapping (Gateway.verify), and makes it again when it does not: routers that purge their
   * table (ASUS: quirk 26) or drop leased entries early (old DD-WRT: quirk 10) would otherwise
   * leave the port closed until the next renewal, hours later. A verification that fails (no
   * answer) changes nothing; the next one or the renewal will tell.
   */
  #scheduleVerify (entry: Entry): void {
    const gateway = entry.madeOn
    const mapping = entry.mapping
    if (gateway?.verify === undefined || mapping === undefined) return
    const intervalMs = this.#verifyIntervalMs ?? gateway.verifyIntervalMs ?? 0
    if (!(intervalMs > 0)) return
    if (renewAtMs(mapping) - this.#clock.now() <= intervalMs) return
    this.#armVerify(entry, gateway, mapping, intervalMs)
  }

  /** The timer of #scheduleVerify, apart so that a gateway that cannot verify (PCP, NAT-PMP) never compiles it. */
  #armVerify (entry: Entry, gateway: Gateway, mapping: PortMapping, intervalMs: number): void {
    entry.verifyTimer = this.#clock.setTimeout(() => {
      entry.verifyTimer = undefined
      if (!this.#isLive(entry) || entry.pending !== undefined || entry.mapping !== mapping) return
      const run = async (): Promise<void> => {
        let present: boolean
        try {
          present = await gateway.verify!(mapping, { timeoutMs: this.#requestTimeoutMs })
        } catch (err) {
          this.#logger('could not verify %s %d: %s', entry.protocol, entry.internalPort, (err as Error).message)
          present = true
        }
        // Renewed, removed or closed meanwhile: this answer is about a mapping no longer kept.
        if (!this.#isLive(entry) || entry.mapping !== mapping || entry.pending !== undefined) return
        if (present) {
          this.#scheduleVerify(entry)
          return
        }
        this.#logger('%s %d: the gateway no longer holds external port %d; making it again', entry.protocol, entry.internalPort, mapping.externalPort)
        this.#refresh(entry)
      }
      const verifying: Promise<void> = run().finally(() => { if (entry.verifying === verifying) entry.verifying = undefined })
      entry.verifying = verifying
    }, Math.min(intervalMs, MAX_TIMER_DELAY_MS))
    entry.verifyTimer.unref?.()
  }

  /**
   * The outcome of a new mapping's background check (UPnP read-back): the gateway holds it as
   * made (nothing to do), holds it another way the client had to make it (a permanent lease, equal
   * ports: this is the mapping now), or could not be made to keep it (lost; retried later).
   */
  #followCheck (entry: Entry, gateway: Gateway, mapping: PortMapping, check: Promise<PortMapping>): void {
    const run = async (): Promise<void> => {
      let checked: PortMapping
      try {
        checked = await check
      } catch (err) {
        if (!this.#isLive(entry) || entry.mapping !== mapping) return
        const error = err as Error
        entry.mapping = undefined
        entry.madeOn = undefined
        entry.failures++
        this.#logger('%s %d: %s', entry.protocol, entry.internalPort, error.message)
        this.emit('lost', { protocol: entry.protocol, internalPort: entry.internalPort, reason: error })
        if (this.listenerCount('error') > 0) this.emit('error', error)
        this.#schedule(entry, retryDelayMs(entry.failures, error))
        return
      }
      if (checked === mapping) return
      if (!this.#isLive(entry) || entry.mapping !== mapping) {
        // Removed, closed or renewed meanwhile: what the check made is kept by no one.
        if (entry.mapping !== checked) await gateway.unmap(checked, { timeoutMs: this.#requestTimeoutMs }).catch(() => {})
        return
      }
      entry.mapping = checked
      this.emit('mapped', toEvent(checked))
      this.#schedule(entry, renewAtMs(checked) - this.#clock.now())
      this.#scheduleVerify(entry)
    }
    const checking: Promise<void> = run().finally(() => { if (entry.checking === checking) entry.checking = undefined })
    entry.checking = checking
  }

  /** After a success: an uncertain earlier attempt on another port is deleted, one on this port was overwritten. */
  #settleUncertain (entry: Entry, mapping: PortMapping): void {
    const uncertain = entry.uncertain
    entry.uncertain = undefined
    if (uncertain === undefined || (uncertain.mapping.externalPort === mapping.externalPort && uncertain.gateway === entry.madeOn)) return
    void uncertain.gateway.unmap(uncertain.mapping, { timeoutMs: this.#requestTimeoutMs }).catch(() => {})
  }

  /** Deletes, best effort, what an unanswered first attempt may have made, for a port given up. */
  #dropUncertain (entry: Entry, signal?: AbortSignal): Promise<void> {
    const uncertain = entry.uncertain
    entry.uncertain = undefined
    if (uncertain === undefined) return Promise.resolve()
    this.#logger('%s %d: deleting what an unanswered request may have made (external port %d)', entry.protocol, entry.internalPort, uncertain.mapping.externalPort)
    return uncertain.gateway.unmap(uncertain.mapping, { timeoutMs: this.#requestTimeoutMs, ...(signal === undefined ? {} : { signal }) }).catch(() => {})
  }

  #isLive (entry: Entry): boolean {
    return this.#closed === undefined && this.#entries.get(entry.key) === entry
  }

  async #release (entry: Entry, signal?: AbortSignal): Promise<void> {
    this.#clearTimers(entry)
    await entry.verifying
    await entry.pending?.catch(() => {})
    await entry.checking
    const { mapping, madeOn } = entry
    entry.mapping = undefined
    if (mapping === undefined || madeOn === undefined) {
      await this.#dropUncertain(entry, signal)
      return
    }
    try {
      await madeOn.unmap(mapping, { timeoutMs: this.#requestTimeoutMs, ...(signal === undefined ? {} : { signal }) })
      this.emit('unmapped', { protocol: entry.protocol, internalPort: entry.internalPort })
    } catch (err) {
      this.#logger('could not delete %s %d: %s', entry.protocol, entry.internalPort, (err as Error).message)
      if (this.listenerCount('error') > 0) this.emit('error', err as Error)
    }
  }

  /**
   * Asks the gateway for its external address in the background, once the mappings asked for in
   * the same turn have had their first attempt: a PCP MAP reply carries the address, and a UPnP
   * client asks alongside its first add, so an application that maps at once costs the router
   * nothing more, and one that only reads the address gets it a round trip later. An answer
   * with no usable address is the double-NAT sign that discovery would have reported.
   */
  #askExternalAddress (): void {
    setImmediate(() => {
      void (async () => {
        await Promise.allSettled([...this.#entries.values()].map(async (entry) => { await entry.pending }))
        const gateway = this.#gateway
        if (this.#closed !== undefined || this.#externalAddress !== undefined || this.#notPublicReason !== undefined) return
        try {
          const address = await gateway.externalAddress({ timeoutMs: this.#requestTimeoutMs })
          if (this.#closed === undefined && this.#gateway === gateway) this.#learnExternalAddress(address, true)
        } catch (err) {
          this.#logger('external address: %s', (err as Error).message)
          if (this.#externalAddress === undefined) this.#noteNotPublic(notPublicReasonOf(err))
        }
      })()
    })
  }

  #learnExternalAddress (address: string, emit: boolean): void {
    if (address === this.#externalAddress) return
    const previous = this.#externalAddress
    const wasNotPublic = this.#notPublicReason
    this.#externalAddress = address
    const addressClass = classifyAddress(address)
    this.#notPublicReason = notPublicReason(address, addressClass)
    this.#logger('external address %s (%s)', address, addressClass)
    if (!emit) return
    this.emit('external-address', { address, previous, addressClass })
    if (this.#notPublicReason !== undefined && this.#notPublicReason !== wasNotPublic) this.emit('not-public', { reason: this.#notPublicReason })
  }

  /**
   * A refusal or an answer that shows the gateway has no public address (NETWORK_FAILURE): said
   * once, as it may come after addMapping has resolved (from the NAT's own address request).
   */
  #noteNotPublic (reason: string | undefined): void {
    if (reason === undefined || this.#notPublicReason !== undefined) return
    this.#notPublicReason = reason
    this.#logger('%s', reason)
    this.emit('not-public', { reason })
  }

  #watchGateway (gateway: Gateway): void {
    gateway.onReset = () => {
      // The replies to a recovery's own re-maps carry the gateway's new, small epoch: that is the
      // reset being handled, not another one (it cost a second re-map per reboot in the lab).
      if (this.#lastRecoveryMs !== undefined && this.#clock.now() - this.#lastRecoveryMs < SAME_RESET_WINDOW_MS) return
      this.#recoverAll('the gateway lost its state (epoch)', true)
    }
  }

  #listenTo (source: AnnouncementSource | undefined): void {
    this.#announcements?.close()
    this.#announcements = source
    source?.on('announcement', (a) => { if (this.#announcements === source) this.#onAnnouncement(a) })
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
  #recoverAll (reason: string, jitter: boolean, limited = true): void {
    if (this.#closed !== undefined || this.#recoveryTimer !== undefined) return
    const nowMs = this.#clock.now()
    const holdMs = limited ? recoveryHoldMs(this.#lastRecoveryMs, this.#recoveryStreak, nowMs) : 0
    const delayMs = Math.max(holdMs, jitter && this.#gateway.method !== 'upnp' ? Math.floor(this.#random() * RESET_JITTER_MS) : 0)
    this.#logger('%s: re-mapping %d mapping(s) in %d ms', reason, this.#entries.size, delayMs)
    this.#recoveryTimer = this.#clock.setTimeout(() => {
      this.#recoveryTimer = undefined
      if (limited) {
        const firedMs = this.#clock.now()
        this.#recoveryStreak = nextRecoveryStreak(this.#lastRecoveryMs, this.#recoveryStreak, firedMs)
        this.#lastRecoveryMs = firedMs
      }
      for (const entry of this.#entries.values()) {
        // The gateway lost the mapping: a renewal re-creates it on the same port (RFC 6886 §3.7).
        if (entry.pending === undefined) this.#refresh(entry)
      }
    }, delayMs)
    this.#recoveryTimer.unref?.()
  }

  /** Finds the gateway again, swaps it in, and re-applies every mapping on it. */
  #rediscover (reason: string, urgent = false): void {
    const find = this.#rediscoverGateway
    if (find === undefined || this.#rediscovering !== undefined || this.#closed !== undefined) return
    // Each rediscovery probes PCP, NAT-PMP and SSDP: on a network where the gateway is gone for
    // good, once per failed retry would be several probes a second (quirk 41: tailscale#4237).
    // A new default route is a new network: it is looked at at once.
    const nowMs = this.#clock.now()
    const intervalMs = rediscoveryIntervalMs(this.#rediscoveryFailures)
    if (!urgent && this.#lastRediscoveryMs !== undefined && nowMs - this.#lastRediscoveryMs < intervalMs) {
      this.#logger('not rediscovering yet (%s): the last attempt was %d ms ago', reason, Math.round(nowMs - this.#lastRediscoveryMs))
      return
    }
    if (urgent) this.#rediscoveryFailures = 0
    this.#lastRediscoveryMs = nowMs
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
        this.#rediscoveryFailures = 0
        previous.onReset = undefined
        previous.close()
        // Announcements come from the gateway's address, to the group its protocol uses.
        if (this.#announcementsFor !== undefined) this.#listenTo(this.#announcementsFor(gateway))
        this.emit('gateway-changed', { previous: previous.address, address: gateway.address, method: gateway.method, reason })
        this.#recoverAll('new gateway', false, false)
      } catch (err) {
        this.#rediscoveryFailures++
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
        this.#rediscover(`the default route now goes via ${gateway}`, true)
      }
      this.#routeGateway = gateway ?? this.#routeGateway
      schedule()
    }
    const schedule = (): void => {
      this.#routeTimer = this.#clock.setTimeout(() => { void check() }, watch.intervalMs)
      this.#routeTimer.unref?.()
    }
    if (watch.initialGateway === undefined) {
      void check()
    } else {
      this.#routeGateway = watch.initialGateway
      schedule()
    }
  }
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
