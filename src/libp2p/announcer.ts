import type { Clock, TimerHandle } from '../clock.js'
import type { TransportProtocol } from '../gateway.js'
import type { AddressManagerLike, Libp2pLogger } from './types.js'

/**
 * The external addresses the service has put in the node's address manager, kept equal to what
 * the NAT holds: each apply() adds what is new, replaces what changed (another external address
 * or port), and removes what is gone, except that a mapping the NAT is making again (a router
 * reboot) keeps its address for a grace period, and with it AutoNAT's confirmation.
 */

/** One public address: what libp2p's addPublicAddressMapping takes. */
export interface Announcement {
  internalIp: string
  internalPort: number
  protocol: TransportProtocol
  externalIp: string
  externalPort: number
}

interface Entry {
  announcement: Announcement
  /** Set while the mapping is gone and may come back. */
  graceTimer: TimerHandle | undefined
  /** The grace ran out: the next apply() removes it. */
  expired: boolean
}

/** addressManager.confirmObservedAddr's ttl for "until removed", as @libp2p/upnp-nat gives it: up to the largest Date. */
const MAX_DATE_MS = 8_640_000_000_000_000

export interface AnnouncerOptions {
  addressManager: AddressManagerLike
  log: Libp2pLogger
  clock: Clock
  graceMs: number
  autoConfirm: boolean
  /** Called when a grace period ends, so that the owner applies its state again. */
  onExpired: () => void
}

export class Announcer {
  readonly #entries = new Map<string, Entry>()
  readonly #options: AnnouncerOptions

  constructor (options: AnnouncerOptions) {
    this.#options = options
  }

  /** What is announced now. */
  list (): Announcement[] {
    return [...this.#entries.values()].map((e) => ({ ...e.announcement }))
  }

  /**
   * Makes the announced set equal to `desired` (by port key). A key missing from `desired` but in
   * `recovering` (the NAT still keeps that port) waits out the grace before its address goes.
   */
  apply (desired: ReadonlyMap<string, Announcement>, recovering: ReadonlySet<string>): void {
    for (const [key, entry] of this.#entries) {
      const wanted = desired.get(key)
      if (wanted !== undefined && same(wanted, entry.announcement)) {
        this.#endGrace(entry)
        continue
      }
      if (wanted === undefined && recovering.has(key) && !entry.expired) {
        this.#startGrace(key, entry)
        continue
      }
      this.#endGrace(entry)
      this.#remove(entry.announcement)
      this.#entries.delete(key)
    }
    for (const [key, wanted] of desired) {
      if (this.#entries.has(key)) continue
      this.#add(wanted)
      this.#entries.set(key, { announcement: wanted, graceTimer: undefined, expired: false })
    }
  }

  /** Removes every announced address (the service stops). */
  clear (): void {
    this.apply(new Map(), new Set())
  }

  #startGrace (key: string, entry: Entry): void {
    if (entry.graceTimer !== undefined) return
    const { clock, graceMs, log } = this.#options
    log('%s lost: keeping its address %s:%d for %d ms while it is made again', key, entry.announcement.externalIp, entry.announcement.externalPort, graceMs)
    entry.graceTimer = clock.setTimeout(() => {
      entry.graceTimer = undefined
      if (this.#entries.get(key) !== entry) return
      entry.expired = true
      this.#options.onExpired()
    }, graceMs)
    entry.graceTimer.unref?.()
  }

  #endGrace (entry: Entry): void {
    if (entry.graceTimer === undefined) return
    this.#options.clock.clearTimeout(entry.graceTimer)
    entry.graceTimer = undefined
  }

  #add (a: Announcement): void {
    const { addressManager, log, autoConfirm } = this.#options
    addressManager.addPublicAddressMapping(a.internalIp, a.internalPort, a.externalIp, a.externalPort, a.protocol)
    log('announcing %s:%d (%s, mapped to %s:%d)', a.externalIp, a.externalPort, a.protocol, a.internalIp, a.internalPort)
    if (!autoConfirm) return
    // The address manager made the public multiaddrs itself (the listener's own, with the
    // external IP and port): confirm those objects, so no multiaddr package is needed here.
    const prefix = `/ip4/${a.externalIp}/${a.protocol}/${a.externalPort}`
    for (const address of addressManager.getAddressesWithMetadata()) {
      const text = address.multiaddr.toString()
      if (address.type !== 'ip-mapping' || (text !== prefix && !text.startsWith(prefix + '/'))) continue
      addressManager.confirmObservedAddr(address.multiaddr, { type: 'ip-mapping', ttl: MAX_DATE_MS - Date.now() })
    }
  }

  #remove (a: Announcement): void {
    this.#options.addressManager.removePublicAddressMapping(a.internalIp, a.internalPort, a.externalIp, a.externalPort, a.protocol)
    this.#options.log('no longer announcing %s:%d (%s)', a.externalIp, a.externalPort, a.protocol)
  }
}

function same (a: Announcement, b: Announcement): boolean {
  return a.internalIp === b.internalIp && a.internalPort === b.internalPort && a.protocol === b.protocol &&
    a.externalIp === b.externalIp && a.externalPort === b.externalPort
}
