import type { Clock } from '../clock.js'
import { ClosedError, NoResponseError } from '../errors.js'
import type { CallOptions } from '../gateway.js'
import type { Logger } from '../log.js'
import { soapCall, type ExchangeContext } from './control.js'
import type { IgdSelection } from './discovery.js'
import type { UrlPolicy } from './guard.js'
import type { SoapRequest } from './soap.js'
import { RequestCounters } from '../counters.js'

/**
 * What the parts of a UpnpClient share: the service and how an action reaches it, our LAN
 * address, what the router has taught. The client makes one ClientContext and hands it to
 * add.ts, read-back.ts, ownership.ts and listing.ts, which never import client.ts.
 */

/** The WAN connection service a client controls. */
export interface UpnpService {
  readonly serviceType: string
  /** Absolute http URL at the gateway. */
  readonly controlURL: string
  /** IGD v2 brings AddAnyPortMapping (on WANIPConnection:2) and the 604800 s lease cap. */
  readonly igdVersion: 1 | 2
}

/** What a client has learnt about its router from its answers; the parts that learn it set it. */
export interface Learnt {
  /** Learnt from 725 or 402: the router takes permanent leases only. */
  permanentOnly: boolean
  /** Learnt from 401/602 or a reset: AddAnyPortMapping is not there, despite IGD v2. */
  noAddAny: boolean
  /** Learnt from 401/602 to GetSpecificPortMappingEntry: adds and deletes then go ahead without looking. */
  noEntryLookup: boolean
  /** Set once an add has been read back as made: later ones are trusted (see read-back.ts). */
  addsCheckedOut: boolean
  /** Learnt from 401/602 to DeletePortMappingRange: ranges are deleted port by port (range-delete.ts). */
  noRangeDelete: boolean
}

export type Rediscover = (signal: AbortSignal | undefined) => Promise<IgdSelection>

export interface ClientContextOptions {
  service: UpnpService
  policy: UrlPolicy
  internalClient: string | undefined
  /** The local address connections are made from (the chosen interface's), if chosen. */
  localAddress: string | undefined
  clock: Clock
  logger: Logger
  requestTimeoutMs: number
  rediscover: Rediscover | undefined
}

/** The shared part of one UpnpClient (see the top of this file); closed with it. */
export class ClientContext {
  readonly clock: Clock
  readonly logger: Logger
  readonly learnt: Learnt = { permanentOnly: false, noAddAny: false, noEntryLookup: false, addsCheckedOut: false, noRangeDelete: false }
  /** The client's exchanges with the router, counted. */
  readonly counters: RequestCounters
  readonly #requestTimeoutMs: number
  readonly #localAddress: string | undefined
  readonly #rediscover: Rediscover | undefined
  #service: UpnpService
  #policy: UrlPolicy
  #internalClient: string | undefined
  #pendingRediscovery: Promise<void> | undefined
  #closed = false

  constructor (options: ClientContextOptions) {
    this.#service = options.service
    this.#policy = options.policy
    this.#internalClient = options.internalClient
    this.clock = options.clock
    this.logger = options.logger
    this.#requestTimeoutMs = options.requestTimeoutMs
    this.#localAddress = options.localAddress
    this.#rediscover = options.rediscover
    this.counters = new RequestCounters(options.policy.gateway)
  }

  /** The service as it is now: a rediscovery may have replaced it. */
  get service (): UpnpService { return this.#service }

  /** Our LAN address as the router sees it: from discovery, then from each connection's local address. */
  get internalClient (): string | undefined { return this.#internalClient }

  /** Later exchanges throw ClosedError. */
  close (): void {
    this.#closed = true
  }

  /** The context of one call's exchanges. */
  exchange (options: CallOptions): ExchangeContext {
    if (this.#closed) throw new ClosedError('UPnP client')
    return {
      policy: this.#policy,
      clock: this.clock,
      logger: this.logger,
      requestTimeoutMs: this.#requestTimeoutMs,
      signal: options.signal,
      deadlineMs: options.timeoutMs === undefined ? undefined : this.clock.now() + options.timeoutMs,
      localAddress: this.#localAddress,
      onLocalAddress: (address) => { this.#internalClient = address },
      count: (event, result) => { this.counters.count('upnp', event, result) }
    }
  }

  /**
   * One action. When the control URL refuses connections the router has probably restarted on
   * another HTTP port (miniupnpd picks a new one at each start unless configured: LAB.md), so the
   * service is looked up again and the action sent once more.
   */
  async call<T> (build: (serviceType: string) => SoapRequest, decode: (xml: string, serviceType: string) => T, context: ExchangeContext): Promise<T> {
    const service = this.#service
    try {
      return await soapCall({ ...context, policy: this.#policy }, service.controlURL, build(service.serviceType), decode)
    } catch (err) {
      if (!(err instanceof NoResponseError) || this.#rediscover === undefined) throw err
      this.logger('%s: %s; looking for the router again', service.controlURL, err.message)
      if (this.#service === service) {
        this.#pendingRediscovery ??= this.#rediscover(context.signal).then((selection) => {
          this.#service = selection.service
          this.#policy = selection.policy
          if (selection.internalClient !== undefined) this.#internalClient = selection.internalClient
          this.logger('the router is back at %s', selection.service.controlURL)
        }).finally(() => { this.#pendingRediscovery = undefined })
        await this.#pendingRediscovery
      }
      return await soapCall({ ...context, policy: this.#policy }, this.#service.controlURL, build(this.#service.serviceType), decode)
    }
  }
}
