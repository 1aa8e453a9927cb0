import type { RemoteInfo, Socket } from 'node:dgram'
import { EventEmitter } from 'node:events'
import { systemClock, type Clock } from '../clock.js'
import { createLogger, type Logger } from '../log.js'
import { isIpv6Literal } from '../net/address.js'
import { createUdpSocket, type CreateSocket } from '../net/udp.js'
import { SSDP_MULTICAST_ADDRESS, SSDP_PORT } from './codes.js'
import type { SsdpNotify } from './ssdp-codec.js'
import { bind, isMulticast, readSsdpDatagram, type SsdpTarget } from './ssdp.js'

/**
 * Listening to SSDP NOTIFY announcements (UDA 1.1 §1.2): devices say they are alive, leaving
 * (byebye) or about to change (update). A router that restarts says so with a new BOOTID or
 * LOCATION, which this listener reports as a `restart` event.
 */

export interface SsdpListenerOptions {
  /** The group to join, default 239.255.255.250. A unicast address (tests) is bound instead of joined. */
  group?: string
  /** Default 1900, bound with SO_REUSEADDR so the OS's own SSDP service keeps working. */
  port?: number
  /** Join the group on this local address: a host with two interfaces otherwise joins on the default route's (LAB.md). */
  interfaceAddress?: string
  /** Which sources to believe; others are dropped with a `warning`. Default: all. */
  acceptFrom?: (address: string) => boolean
  clock?: Clock
  createSocket?: CreateSocket
  logger?: Logger
}

/** A NOTIFY, with where it came from. */
export interface SsdpNotification {
  readonly notify: SsdpNotify
  readonly from: SsdpTarget
  /** The device UUID from the USN (`uuid:<this>::...`), or undefined. */
  readonly uuid: string | undefined
  readonly atMs: number
}

/** A device that announced itself again with another BOOTID.UPNP.ORG or LOCATION: it restarted. */
export interface SsdpRestart {
  readonly address: string
  readonly previousBootId: number | undefined
  readonly bootId: number | undefined
  readonly previousLocation: string | undefined
  readonly location: string | undefined
  readonly notification: SsdpNotification
}

export interface SsdpListenerEvents {
  alive: [SsdpNotification]
  byebye: [SsdpNotification]
  update: [SsdpNotification]
  /**
   * Once per change of BOOTID or LOCATION seen from a host (UDA 1.1 §1.2.2: BOOTID stays the same
   * while a device is up and grows at each boot). miniupnpd, restarted, sends byebye then alive
   * with a new BOOTID and, if its HTTP port changed, a new LOCATION (LAB.md): a listener can then
   * re-map at once instead of waiting for a renewal to fail.
   */
  restart: [SsdpRestart]
  warning: [Error]
}

/** Listens to SSDP NOTIFY announcements and reports them as events. close() when done. */
export class SsdpListener extends EventEmitter<SsdpListenerEvents> {
  readonly #socket: Socket
  readonly #clock: Clock
  readonly #logger: Logger
  readonly #acceptFrom: (address: string) => boolean
  /** Per announcing host: the last BOOTID and, per USN, the last LOCATION. */
  readonly #hosts = new Map<string, { bootId: number | undefined, locations: Map<string, string> }>()
  #closed = false

  private constructor (socket: Socket, options: SsdpListenerOptions) {
    super()
    this.#socket = socket
    this.#clock = options.clock ?? systemClock
    this.#logger = options.logger ?? createLogger('ssdp')
    this.#acceptFrom = options.acceptFrom ?? (() => true)
    socket.on('message', (message, rinfo) => { this.#onMessage(message, rinfo) })
    socket.on('error', (err) => { this.#warn(err) })
  }

  static async start (options: SsdpListenerOptions = {}): Promise<SsdpListener> {
    const group = options.group ?? SSDP_MULTICAST_ADDRESS
    const multicast = isMulticast(group)
    const type = isIpv6Literal(group) ? 'udp6' : 'udp4'
    const socket = options.createSocket?.(type) ?? createUdpSocket({ type, reuseAddr: true })
    await bind(socket, multicast ? undefined : group, options.port ?? SSDP_PORT)
    if (multicast) {
      try {
        socket.addMembership(group, options.interfaceAddress)
      } catch (err) {
        socket.close()
        throw err
      }
    }
    socket.unref()
    return new SsdpListener(socket, options)
  }

  get address (): SsdpTarget {
    const { address, port } = this.#socket.address()
    return { address, port }
  }

  close (): void {
    if (this.#closed) return
    this.#closed = true
    this.#socket.close()
  }

  #onMessage (message: Buffer, rinfo: RemoteInfo): void {
    if (this.#closed) return
    const parsed = readSsdpDatagram(message, rinfo, this.#acceptFrom, 'not an accepted source')
    if (parsed instanceof Error) {
      this.#warn(parsed)
      return
    }
    // Other control points' M-SEARCHes and unicast answers are no announcements.
    if (parsed.kind !== 'notify') return
    const notification: SsdpNotification = {
      notify: parsed,
      from: { address: rinfo.address, port: rinfo.port },
      uuid: /^uuid:([^:]+)/i.exec(parsed.usn ?? '')?.[1],
      atMs: this.#clock.now()
    }
    this.#track(notification)
    switch (parsed.nts) {
      case 'ssdp:alive': this.emit('alive', notification); break
      case 'ssdp:byebye': this.emit('byebye', notification); break
      case 'ssdp:update': this.emit('update', notification); break
    }
  }

  #track (n: SsdpNotification): void {
    const { notify } = n
    if (notify.nts === 'ssdp:byebye') return
    let host = this.#hosts.get(n.from.address)
    if (host === undefined) {
      host = { bootId: notify.bootId, locations: new Map() }
      this.#hosts.set(n.from.address, host)
    }
    const key = notify.usn ?? notify.nt
    const previousLocation = host.locations.get(key)
    const previousBootId = host.bootId
    // ssdp:update announces the *next* BOOTID in advance (UDA 1.1 §1.2.4): that is a planned
    // change of the network, not a restart.
    const bootId = notify.nts === 'ssdp:update' ? notify.nextBootId : notify.bootId
    const bootChanged = bootId !== undefined && previousBootId !== undefined && bootId !== previousBootId
    const locationChanged = notify.location !== undefined && previousLocation !== undefined && notify.location !== previousLocation
    if (bootId !== undefined) host.bootId = bootId
    if (notify.location !== undefined) {
      // A new BOOTID makes every LOCATION of the old instance stale.
      if (bootChanged) host.locations.clear()
      host.locations.set(key, notify.location)
    }
    if (notify.nts === 'ssdp:alive' && (bootChanged || locationChanged)) {
      this.#logger('%s restarted: BOOTID %s -> %s, LOCATION %s -> %s', n.from.address, previousBootId, bootId, previousLocation, notify.location)
      this.emit('restart', {
        address: n.from.address, previousBootId, bootId, previousLocation, location: notify.location, notification: n
      })
    }
  }

  #warn (err: Error): void {
    this.#logger('%s', err.message)
    if (this.listenerCount('warning') > 0) this.emit('warning', err)
  }
}
