import type { Clock, TimerHandle } from '../clock.js'
import type { Gateway } from '../gateway.js'
import type { Logger } from '../log.js'
import { followIpv6Address, hostIpv6Addresses, isGlobalUnicast6, type HostIpv6Address } from '../net/ipv6-addresses.js'

/**
 * The IPv6 side follows the host's address: a pinhole opens one address, and temporary (privacy,
 * RFC 8981) addresses are deprecated and removed every day or so, a renumbered prefix takes
 * the stable ones too. Every poll the host's addresses are read; when followIpv6Address names
 * another one, the NAT moves its pinholes there (made on the new address first, then deleted on
 * the old). Polled rather than told: Node has no address-change event, and a netlink socket is
 * Linux alone.
 */

/** How often the host's addresses are read, by default: a deprecated address still works for its valid lifetime. */
export const FOLLOW_INTERVAL_MS = 30_000

export interface Ipv6FollowOptions {
  /** The host's addresses now, preferred first; default: hostIpv6Addresses() (os.networkInterfaces and /proc/net/if_inet6). */
  addresses?: (() => HostIpv6Address[]) | undefined
  intervalMs?: number | undefined
}

/** What following needs from the NAT that owns it. */
export interface FollowHost {
  readonly clock: Clock
  readonly logger: Logger
  gateway(): Gateway
  isClosed(): boolean
  /** Puts `next` (the gateway for `address`) in place and moves every mapping onto it. */
  move(next: Gateway, previous: string, address: string): Promise<void>
}

export class Ipv6Follower {
  readonly #host: FollowHost
  readonly #addresses: () => HostIpv6Address[]
  readonly #intervalMs: number
  #timer: TimerHandle | undefined
  /** The interface the address was last seen on: its addresses are the candidates (not a VPN's). */
  #interface: string | undefined
  #moving: Promise<void> | undefined

  constructor (host: FollowHost, options: Ipv6FollowOptions = {}) {
    this.#host = host
    this.#addresses = options.addresses ?? (() => hostIpv6Addresses(undefined))
    this.#intervalMs = options.intervalMs ?? FOLLOW_INTERVAL_MS
    this.#schedule()
  }

  /** Whether a NAT on `gateway` can follow: it opens one global address and can be made for another. */
  static canFollow (gateway: Gateway): boolean {
    return gateway.forAddress !== undefined && gateway.localAddress !== undefined && isGlobalUnicast6(gateway.localAddress)
  }

  /** The move under way, if any (tests wait on it). */
  get moving (): Promise<void> | undefined { return this.#moving }

  /** Reads the addresses now and moves if the rule says so; resolves once the move (if any) is done. */
  async check (): Promise<void> {
    if (this.#moving !== undefined) return await this.#moving
    const host = this.#host
    const gateway = host.gateway()
    const old = gateway.localAddress
    if (host.isClosed() || old === undefined || gateway.forAddress === undefined) return
    let all: HostIpv6Address[]
    try {
      all = this.#addresses()
    } catch (err) {
      host.logger('could not read the host\'s IPv6 addresses: %s', (err as Error).message)
      return
    }
    this.#interface = all.find((a) => a.address === old)?.interface ?? this.#interface
    const candidates = this.#interface === undefined ? all : all.filter((a) => a.interface === this.#interface)
    const next = followIpv6Address(old, candidates.length > 0 ? candidates : all)
    if (next === undefined || next === old) return
    host.logger('IPv6 address %s %s: moving the pinholes to %s', old, all.some((a) => a.address === old) ? 'deprecated' : 'gone', next)
    this.#moving = host.move(gateway.forAddress(next), old, next).finally(() => { this.#moving = undefined })
    await this.#moving
  }

  close (): void {
    if (this.#timer !== undefined) this.#host.clock.clearTimeout(this.#timer)
    this.#timer = undefined
  }

  #schedule (): void {
    this.#timer = this.#host.clock.setTimeout(() => {
      this.#timer = undefined
      if (this.#host.isClosed()) return
      void this.check().catch((err: unknown) => { this.#host.logger('following the IPv6 address: %s', (err as Error).message) }).finally(() => {
        if (!this.#host.isClosed()) this.#schedule()
      })
    }, this.#intervalMs)
    this.#timer.unref?.()
  }
}
