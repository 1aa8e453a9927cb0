import type { GatewayReset, ListenOptions } from '../gateway.js'
import type { Logger } from '../log.js'
import { localAddressToward, type CreateSocket } from '../net/udp.js'
import { SsdpListener } from './ssdp-listener.js'

/**
 * A UPnP router's restarts, heard as SSDP NOTIFY: a byebye, or an alive with another BOOTID or
 * LOCATION than discovery saw, means its mappings are gone (miniupnpd sends both: LAB.md).
 * No RFC asks UPnP clients to wait before re-mapping, so resets are not spread.
 */
export async function listenForRestarts (gateway: string, seen: { bootId: number | undefined, location: string | undefined },
  options: { ssdp?: ListenOptions['ssdp'], createSocket?: CreateSocket | undefined, localAddress?: string | undefined, logger: Logger },
  onRestart: (reset: GatewayReset) => void): Promise<SsdpListener | undefined> {
  const where = options.ssdp
  if (where === false) return undefined
  // A gateway on loopback is a simulated one: the real group would reach nothing.
  if (where === undefined && (gateway.startsWith('127.') || gateway === '::1')) return undefined
  try {
    const listener = await SsdpListener.start({
      ...where,
      // Join the group on the chosen interface, or the one that reaches the gateway (multi-homed hosts).
      interfaceAddress: options.localAddress ?? await localAddressToward(gateway),
      acceptFrom: (address) => address === gateway,
      logger: options.logger,
      ...(options.createSocket === undefined ? {} : { createSocket: options.createSocket })
    })
    listener.on('warning', (err) => { options.logger('SSDP listener: %s', err.message) })
    let known = { ...seen, down: false }
    listener.on('byebye', () => { known = { ...known, down: true } })
    listener.on('alive', ({ notify }) => {
      const bootId = notify.bootId ?? known.bootId
      const location = notify.location ?? known.location
      if (!known.down && bootId === known.bootId && location === known.location) return
      known = { bootId, location, down: false }
      onRestart({ reason: `the UPnP router restarted (BOOTID ${String(bootId)}, ${location ?? 'no LOCATION'})`, source: 'announcement', lost: true, spread: false })
    })
    return listener
  } catch (err) {
    options.logger('cannot listen for SSDP announcements (%s); recovery will rely on renewals', (err as Error).message)
    return undefined
  }
}

/** A client's restart listening: started once (listen), each restart told to every onReset listener, stopped by close. */
export class RestartWatch {
  readonly #gateway: string
  readonly #seen: { bootId: number | undefined, location: string | undefined }
  readonly #createSocket: CreateSocket | undefined
  readonly #localAddress: string | undefined
  readonly #logger: Logger
  readonly #listeners = new Set<(reset: GatewayReset) => void>()
  #listening: Promise<SsdpListener | undefined> | undefined
  #closed = false

  constructor (gateway: string, seen: { bootId: number | undefined, location: string | undefined }, options: { createSocket: CreateSocket | undefined, localAddress?: string | undefined, logger: Logger }) {
    this.#gateway = gateway
    this.#seen = seen
    this.#createSocket = options.createSocket
    this.#localAddress = options.localAddress
    this.#logger = options.logger
  }

  onReset (listener: (reset: GatewayReset) => void): () => void {
    this.#listeners.add(listener)
    return () => { this.#listeners.delete(listener) }
  }

  /** Where it listens; undefined when it cannot (or is closed). */
  async listen (options: ListenOptions = {}): Promise<{ address: string, port: number } | undefined> {
    if (this.#closed) return undefined
    this.#listening ??= listenForRestarts(this.#gateway, this.#seen,
      { ssdp: options.ssdp, createSocket: this.#createSocket, localAddress: this.#localAddress, logger: this.#logger },
      (reset) => { for (const listener of [...this.#listeners]) listener(reset) }
    ).then((listener) => {
      if (this.#closed) listener?.close()
      return listener
    })
    return (await this.#listening)?.address
  }

  close (): void {
    this.#closed = true
    void this.#listening?.then((listener) => { listener?.close() })
  }
}
