import { deadline, type Clock, type TimerHandle } from '../clock.js'
import { TimeoutError } from '../errors.js'
import type { Gateway, GatewayReset, ListenOptions } from '../gateway.js'
import type { Logger } from '../log.js'
import type { Keeper } from './keeper.js'
import { nextRecoveryStreak, recoveryHoldMs, rediscoveryIntervalMs } from './retry.js'
import type { NatOptions } from './types.js'

/** An epoch reset seen this soon after a recovery fired is the one it handled. */
const SAME_RESET_WINDOW_MS = 10_000
/** "Connection refused" twice in a row: the service moved or the router restarted. */
const REFUSALS_BEFORE_REDISCOVERY = 2
/** RFC 6887 §14.1.3 and RFC 6886 §3.7: wait a random 0-5 s before renewing after a reset. */
const RESET_JITTER_MS = 5_000
/** How long one rediscovery may take. */
const REDISCOVERY_TIMEOUT_MS = 10_000

/** What recovery needs from the NAT that owns it. */
export interface RecoveryHost {
  readonly clock: Clock
  readonly logger: Logger
  readonly random: () => number
  gateway(): Gateway
  /** Puts a gateway found by rediscovery in the place of the current one. */
  replaceGateway(gateway: Gateway, reason: string): void
  keepers(): Iterable<Keeper>
  isClosed(): boolean
  learnAddress(address: string): void
  error(err: Error): void
}

/**
 * Brings the mappings back when the gateway loses them or goes away: re-maps after a reset (an
 * epoch that went backwards, an announcement), finds the gateway again after repeated refusals or
 * a new default route, and paces both so that a broken or hostile network cannot make it spin.
 */
export class Recovery {
  readonly #host: RecoveryHost
  readonly #rediscover: NatOptions['rediscover']
  readonly #listen: ListenOptions | false
  #unsubscribe: (() => void) | undefined
  #refusals = 0
  #rediscovering: Promise<void> | undefined
  #lastRediscoveryMs: number | undefined
  #rediscoveryFailures = 0
  #recoveryTimer: TimerHandle | undefined
  #lastRecoveryMs: number | undefined
  #recoveryStreak = 0
  #routeTimer: TimerHandle | undefined
  #routeGateway: string | undefined
  /** Re-mapping rounds fired, and rediscoveries started (for stats). */
  recoveries = 0
  rediscoveries = 0

  constructor (host: RecoveryHost, options: Pick<NatOptions, 'rediscover' | 'listen'>) {
    this.#host = host
    this.#rediscover = options.rediscover
    this.#listen = options.listen ?? false
  }

  get rediscovering (): Promise<void> | undefined { return this.#rediscovering }

  /** Follows `gateway`'s resets (and, where asked, its announcements) instead of the previous one's. */
  watch (gateway: Gateway): void {
    this.#unsubscribe?.()
    this.#unsubscribe = gateway.onReset((reset) => { this.#onReset(reset) })
    const listen = this.#listen
    if (listen !== false) {
      // The router announces nothing while it is up: binding waits for the turn after, and what
      // the first mapping request is waiting on goes first.
      void new Promise<void>((resolve) => { this.#host.clock.setTimeout(resolve, 0).unref?.() })
        .then(async () => { if (!this.#host.isClosed() && this.#host.gateway() === gateway) await gateway.describe().listen?.(listen) })
    }
  }

  /** An answer from the gateway: the count of refusals in a row starts over. */
  answered (): void {
    this.#refusals = 0
  }

  /** "Connection refused" (ICMP unreachable, a refused TCP connection): twice in a row, find the gateway again. */
  refused (): void {
    if (++this.#refusals >= REFUSALS_BEFORE_REDISCOVERY) this.rediscover(`${this.#refusals} requests refused in a row`)
  }

  #onReset (reset: GatewayReset): void {
    if (this.#host.isClosed()) return
    // The replies to a recovery's own re-maps carry the gateway's new, small epoch: that is the
    // reset being handled, not another one (it cost a second re-map per reboot in the lab).
    if (reset.source === 'epoch' && this.#lastRecoveryMs !== undefined && this.#host.clock.now() - this.#lastRecoveryMs < SAME_RESET_WINDOW_MS) return
    if (reset.externalAddress !== undefined) this.#host.learnAddress(reset.externalAddress)
    this.recoverAll(reset.reason, reset.spread, { lost: reset.lost })
  }

  /**
   * Makes every mapping again, asking for the ports they had. After a PCP/NAT-PMP reset the RFCs
   * ask for a random 0-5 s wait first (`spread`); no such rule applies to UPnP, which re-maps at once.
   */
  recoverAll (reason: string, spread: boolean, how: { lost: boolean, limited?: boolean }): void {
    const limited = how.limited ?? true
    const host = this.#host
    if (host.isClosed() || this.#recoveryTimer !== undefined) return
    const nowMs = host.clock.now()
    const holdMs = limited ? recoveryHoldMs(this.#lastRecoveryMs, this.#recoveryStreak, nowMs) : 0
    const delayMs = Math.max(holdMs, spread ? Math.floor(host.random() * RESET_JITTER_MS) : 0)
    const keepers = [...host.keepers()]
    host.logger('%s: re-mapping %d mapping(s) in %d ms', reason, keepers.length, delayMs)
    // Say now what is gone, not when it is back.
    if (how.lost) for (const keeper of keepers) keeper.markLost(reason)
    this.#recoveryTimer = host.clock.setTimeout(() => {
      this.#recoveryTimer = undefined
      this.recoveries++
      if (limited) {
        const firedMs = host.clock.now()
        this.#recoveryStreak = nextRecoveryStreak(this.#lastRecoveryMs, this.#recoveryStreak, firedMs)
        this.#lastRecoveryMs = firedMs
      }
      // The gateway lost the mappings: a renewal re-creates each on its port (RFC 6886 §3.7).
      for (const keeper of host.keepers()) keeper.refresh()
    }, delayMs)
    this.#recoveryTimer.unref?.()
  }

  /** Finds the gateway again, swaps it in, and re-applies every mapping on it. */
  rediscover (reason: string, urgent = false): void {
    const find = this.#rediscover
    const host = this.#host
    if (find === undefined || this.#rediscovering !== undefined || host.isClosed()) return
    // Each rediscovery probes PCP, NAT-PMP and SSDP: on a network where the gateway is gone for
    // good, once per failed retry would be several probes a second (quirk 41: tailscale#4237).
    // A new default route is a new network: it is looked at at once.
    const nowMs = host.clock.now()
    const intervalMs = rediscoveryIntervalMs(this.#rediscoveryFailures)
    if (!urgent && this.#lastRediscoveryMs !== undefined && nowMs - this.#lastRediscoveryMs < intervalMs) {
      host.logger('not rediscovering yet (%s): the last attempt was %d ms ago', reason, Math.round(nowMs - this.#lastRediscoveryMs))
      return
    }
    if (urgent) this.#rediscoveryFailures = 0
    this.#lastRediscoveryMs = nowMs
    this.rediscoveries++
    host.logger('rediscovering the gateway: %s', reason)
    this.#rediscovering = (async () => {
      const limit = deadline(host.clock, REDISCOVERY_TIMEOUT_MS, () => new TimeoutError(`rediscovery took over ${REDISCOVERY_TIMEOUT_MS} ms`))
      try {
        const gateway = await find(limit.signal)
        if (host.isClosed()) {
          gateway.close()
          return
        }
        this.#refusals = 0
        this.#rediscoveryFailures = 0
        host.replaceGateway(gateway, reason)
        this.watch(gateway)
        this.recoverAll('new gateway', false, { lost: false, limited: false })
      } catch (err) {
        this.#rediscoveryFailures++
        host.logger('rediscovery failed: %s', (err as Error).message)
        host.error(err as Error)
      } finally {
        limit.cancel()
        this.#rediscovering = undefined
      }
    })()
  }

  /** Looks at the default route every `intervalMs`; a new one means a new network, rediscovered at once. */
  watchRoute (watch: NonNullable<NatOptions['watchRoute']>): void {
    const host = this.#host
    const check = async (): Promise<void> => {
      const gateway = await watch.lookup().catch(() => undefined)
      if (host.isClosed()) return
      if (gateway !== undefined && this.#routeGateway !== undefined && gateway !== this.#routeGateway) {
        this.rediscover(`the default route now goes via ${gateway}`, true)
      }
      this.#routeGateway = gateway ?? this.#routeGateway
      schedule()
    }
    const schedule = (): void => {
      this.#routeTimer = host.clock.setTimeout(() => { void check() }, watch.intervalMs)
      this.#routeTimer.unref?.()
    }
    if (watch.initialGateway === undefined) {
      void check()
    } else {
      this.#routeGateway = watch.initialGateway
      schedule()
    }
  }

  /** Stops every timer and subscription. */
  close (): void {
    for (const timer of [this.#recoveryTimer, this.#routeTimer]) if (timer !== undefined) this.#host.clock.clearTimeout(timer)
    this.#recoveryTimer = undefined
    this.#routeTimer = undefined
    this.#unsubscribe?.()
  }
}
