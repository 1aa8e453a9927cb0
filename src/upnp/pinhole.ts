import { systemClock, type Clock, type TimerHandle } from '../clock.js'
import { FirewallDisabledError, InboundPinholeNotAllowedError, UsageError } from '../errors.js'
import type { CallOptions, TransportProtocol } from '../gateway.js'
import { createLogger, type Logger } from '../log.js'
import { ServiceType, PinholeErrorCode } from './codes.js'
import { soapCall, type ExchangeContext } from './control.js'
import { hostOf } from './guard.js'
import {
  canonicalIpv6, decodeAddPinhole, decodeCheckPinholeWorking, decodeDeletePinhole, decodeGetFirewallStatus,
  decodeGetPinholePackets, decodeUpdatePinhole, encodeAddPinhole, encodeCheckPinholeWorking, encodeDeletePinhole,
  encodeGetFirewallStatus, encodeGetPinholePackets, encodeUpdatePinhole, type FirewallStatus
} from './pinhole-actions.js'
import { isRefused } from './codes.js'

/**
 * A client of one router's WANIPv6FirewallControl:1 service: IPv6 pinholes (IGD v2). Every
 * request that names a pinhole is sent FROM the pinhole's internal address (the TCP connection's
 * local address is bound to it): miniupnpd answers 606 Action not authorized when the sender is
 * not the InternalClient (upnpsoap.c PinholeVerification compares the two as text), and so
 * does any router that follows the template's security advice. The control URL must name the
 * router by an IPv6 address the host reaches from that address (miniupnpd announces
 * http://[its LAN address]:port/ over SSDP on IPv6); a link-local router address needs a zone,
 * which a URL cannot carry, so it is not supported here yet.
 */

export interface PinholeClientOptions {
  /** http://[2001:db8:1::1]:5000/ctl/IP6FCtl: the service's control URL at the router's IPv6 address. */
  controlURL: string
  /** Verbatim from the description; WANIPv6FirewallControl:1 by default. */
  serviceType?: string | undefined
  clock?: Clock | undefined
  logger?: Logger | undefined
  /** Per HTTP exchange, connect included. Default 5000 ms. */
  requestTimeoutMs?: number | undefined
}

export interface PinholeRequest {
  /** The host's own global IPv6 address to open (ipv6-addresses.ts chooses it). */
  internalClient: string
  internalPort: number
  protocol: TransportProtocol
  /** 1..86400 s. */
  leaseTimeSeconds: number
  /** Default '' and 0: from any host and port. */
  remoteHost?: string
  remotePort?: number
}

/** A pinhole the router made: the key to update, check and delete it is its UniqueID. */
export interface Pinhole {
  readonly method: 'upnp-pinhole'
  readonly uniqueId: number
  readonly internalClient: string
  readonly internalPort: number
  readonly protocol: TransportProtocol
  readonly remoteHost: string
  readonly remotePort: number
  readonly leaseTimeSeconds: number
  readonly grantedAtMs: number
  readonly expiresAtMs: number
  /** Half the lease: an UpdatePinhole then leaves half the lease to retry in. */
  readonly renewAtMs: number
}

export class PinholeClient {
  readonly controlURL: string
  readonly serviceType: string
  readonly #clock: Clock
  readonly #logger: Logger
  readonly #requestTimeoutMs: number
  readonly #gateway: string
  #status: Promise<FirewallStatus> | undefined

  constructor (options: PinholeClientOptions) {
    this.controlURL = options.controlURL
    this.serviceType = options.serviceType ?? ServiceType.WANIPv6FirewallControl1
    this.#clock = options.clock ?? systemClock
    this.#logger = options.logger ?? createLogger('upnp-pinhole')
    this.#requestTimeoutMs = options.requestTimeoutMs ?? 5000
    let host: string
    try {
      host = hostOf(new URL(options.controlURL))
    } catch {
      throw new UsageError(`not a control URL: ${JSON.stringify(options.controlURL)}`)
    }
    // The guard (guard.ts) then allows exactly this host, as it allows the gateway for IPv4.
    this.#gateway = host
  }

  /** GetFirewallStatus: whether the router filters IPv6 and lets control points open pinholes. */
  async firewallStatus (options: CallOptions = {}): Promise<FirewallStatus> {
    return await this.#call(encodeGetFirewallStatus(this.serviceType), decodeGetFirewallStatus, options, undefined)
  }

  /**
   * AddPinhole, after a GetFirewallStatus the first time (its answer is kept): a firewall that is
   * off throws FirewallDisabledError, pinholes not allowed InboundPinholeNotAllowedError, before
   * anything is asked for. 606 (a foreign address, a port below 1024 on miniupnpd) throws
   * GatewayRefusedError like any refusal.
   */
  async open (request: PinholeRequest, options: CallOptions = {}): Promise<Pinhole> {
    const internalClient = canonicalIpv6(request.internalClient)
    this.#status ??= this.firewallStatus(options)
    let status: FirewallStatus
    try {
      status = await this.#status
    } catch (err) {
      this.#status = undefined
      throw err
    }
    if (!status.firewallEnabled) throw new FirewallDisabledError('GetFirewallStatus: the router\'s IPv6 firewall is disabled (FirewallEnabled 0)')
    if (!status.inboundPinholeAllowed) throw new InboundPinholeNotAllowedError('GetFirewallStatus: the router does not allow inbound pinholes (InboundPinholeAllowed 0)')
    const args = { ...request, internalClient }
    const uniqueId = await this.#call(encodeAddPinhole(this.serviceType, args), decodeAddPinhole, options, internalClient)
    this.#logger('AddPinhole %s [%s]:%d lease %d s: UniqueID %d', request.protocol, internalClient, request.internalPort, request.leaseTimeSeconds, uniqueId)
    return this.#granted(uniqueId, { ...args, remoteHost: request.remoteHost ?? '', remotePort: request.remotePort ?? 0 })
  }

  /** UpdatePinhole with the same lease (or `leaseTimeSeconds`); 704 NoSuchEntry throws: the caller opens it again. */
  async update (pinhole: Pinhole, options: CallOptions & { leaseTimeSeconds?: number } = {}): Promise<Pinhole> {
    const lease = options.leaseTimeSeconds ?? pinhole.leaseTimeSeconds
    await this.#call(encodeUpdatePinhole(this.serviceType, pinhole.uniqueId, lease), decodeUpdatePinhole, options, pinhole.internalClient)
    return this.#granted(pinhole.uniqueId, { ...pinhole, leaseTimeSeconds: lease })
  }

  /** DeletePinhole. One already gone (704 NoSuchEntry) counts as deleted. */
  async delete (pinhole: Pinhole, options: CallOptions = {}): Promise<void> {
    try {
      await this.#call(encodeDeletePinhole(this.serviceType, pinhole.uniqueId), decodeDeletePinhole, options, pinhole.internalClient)
    } catch (err) {
      if (isRefused(err, PinholeErrorCode.NoSuchEntry)) return
      throw err
    }
  }

  /** CheckPinholeWorking: whether traffic has passed (false for 709 NoPacketSent). */
  async checkWorking (pinhole: Pinhole, options: CallOptions = {}): Promise<boolean> {
    return await this.#call(encodeCheckPinholeWorking(this.serviceType, pinhole.uniqueId), decodeCheckPinholeWorking, options, pinhole.internalClient)
  }

  /** GetPinholePackets: packets the pinhole let through. */
  async packets (pinhole: Pinhole, options: CallOptions = {}): Promise<number> {
    return await this.#call(encodeGetPinholePackets(this.serviceType, pinhole.uniqueId), decodeGetPinholePackets, options, pinhole.internalClient)
  }

  /**
   * Keeps a pinhole open: UpdatePinhole at half of each lease; when the router no longer has it
   * (704 NoSuchEntry: it restarted or the lease ran out) AddPinhole again. `onChange` hears each
   * new state, `onError` each failure (the next attempt then comes at half of what is left of
   * the lease, or after 5 s doubling to 5 min once it has run out).
   * stop() cancels the timer; it does not delete the pinhole.
   */
  keep (pinhole: Pinhole, handlers: { onChange?: (pinhole: Pinhole) => void, onError?: (err: unknown) => void } = {}): { stop: () => void, readonly current: Pinhole } {
    let current = pinhole
    let timer: TimerHandle | undefined
    let stopped = false
    let failures = 0
    const schedule = (atMs: number): void => {
      if (stopped) return
      timer = this.#clock.setTimeout(() => { void renew() }, Math.max(0, atMs - this.#clock.now()))
      timer.unref?.()
    }
    const renew = async (): Promise<void> => {
      try {
        current = await this.update(current).catch(async (err: unknown) => {
          if (!isRefused(err, PinholeErrorCode.NoSuchEntry)) throw err
          return await this.open(current)
        })
        if (stopped) return
        handlers.onChange?.(current)
        schedule(current.renewAtMs)
        failures = 0
      } catch (err) {
        if (stopped) return
        handlers.onError?.(err)
        // Half of what is left while the lease runs; once it is over, 5 s doubling to 5 min, not a tight loop.
        const now = this.#clock.now()
        schedule(now + Math.max((current.expiresAtMs - now) / 2, Math.min(5000 * 2 ** failures++, 300_000)))
      }
    }
    schedule(current.renewAtMs)
    return {
      stop: () => {
        stopped = true
        if (timer !== undefined) this.#clock.clearTimeout(timer)
      },
      get current () { return current }
    }
  }

  #granted (uniqueId: number, args: Omit<Pinhole, 'method' | 'uniqueId' | 'grantedAtMs' | 'expiresAtMs' | 'renewAtMs'>): Pinhole {
    const grantedAtMs = this.#clock.now()
    return {
      method: 'upnp-pinhole',
      uniqueId,
      internalClient: args.internalClient,
      internalPort: args.internalPort,
      protocol: args.protocol,
      remoteHost: args.remoteHost,
      remotePort: args.remotePort,
      leaseTimeSeconds: args.leaseTimeSeconds,
      grantedAtMs,
      expiresAtMs: grantedAtMs + args.leaseTimeSeconds * 1000,
      renewAtMs: grantedAtMs + args.leaseTimeSeconds * 500
    }
  }

  async #call<T> (request: ReturnType<typeof encodeGetFirewallStatus>, decode: (xml: string, serviceType: string) => T,
    options: CallOptions, localAddress: string | undefined): Promise<T> {
    const context: ExchangeContext = {
      policy: { gateway: this.#gateway },
      clock: this.#clock,
      logger: this.#logger,
      requestTimeoutMs: this.#requestTimeoutMs,
      signal: options.signal,
      localAddress
    }
    return await soapCall(context, this.controlURL, request, decode)
  }
}
