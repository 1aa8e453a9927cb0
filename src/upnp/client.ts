import { systemClock, type Clock } from '../clock.js'
import { EntryNotOursError, NoExternalAddressError, RemoteProtocolError, throwIfAborted, type PortMappingEntry } from '../errors.js'
import type { CallOptions, Gateway, GatewayAbilities, GatewayReset, ListedTable, MapRequest, MapResult, PortMapping, TransportProtocol } from '../gateway.js'
import { createLogger, type Logger } from '../log.js'
import type { CreateSocket } from '../net/udp.js'
import { decodeGetExternalIPAddress, decodeGetSpecificPortMappingEntry, encodeGetExternalIPAddress, encodeGetSpecificPortMappingEntry } from './actions.js'
import { addMapping, addOnFreePort, checkRequest } from './add.js'
import { ClientContext, type UpnpService } from './client-context.js'
import { isRefused, UpnpErrorCode } from './codes.js'
import { discoverIgd, type IgdSelection, type UpnpDiscoverOptions } from './discovery.js'
import type { Ipv4Subnet, UrlPolicy } from './guard.js'
import { listTable } from './listing.js'
import { deleteIfOurs, entryState } from './ownership.js'
import { canDeleteRange, deleteRangeIfOurs } from './range-delete.js'
import { needsReadBack, readBack } from './read-back.js'
import { RestartWatch } from './restarts.js'
import { sessionOf, type UpnpSession } from './session.js'

export interface UpnpClientOptions {
  gateway: string
  service: UpnpService
  /** The host that answered SSDP, and the gateway's subnet: where control URLs may point (guard.ts). */
  responder?: string | undefined
  subnet?: Ipv4Subnet | undefined
  /** For an IPv6 gateway, the prefixes of its link (guard.ts). */
  prefixes6?: UrlPolicy['prefixes6']
  /** Our LAN address if already known (from the description fetch). */
  internalClient?: string | undefined
  /** The local address every connection and the SSDP listener use (the chosen interface's); default: the route's choice. */
  localAddress?: string | undefined
  /** The external address if already known. */
  externalAddress?: string | undefined
  /** Per HTTP exchange. Default 3000 ms. */
  requestTimeoutMs?: number | undefined
  /** External ports tried when the router answers 718 ConflictInMappingEntry. Default 8. */
  maxPortAttempts?: number | undefined
  clock?: Clock | undefined
  logger?: Logger | undefined
  /** Finds the service again when the router stops answering at its control URL (it restarted on another port). */
  rediscover?: ((signal: AbortSignal | undefined) => Promise<IgdSelection>) | undefined
  /** How often the manager should check that the router still holds each mapping (see verify()). Default 30 min. */
  verifyIntervalMs?: number | undefined
  /**
   * Renew by DeletePortMapping and a fresh add instead of adding over the entry. Some routers
   * keep listing and "renewing" an entry whose forwarding has died, and only a delete and an add
   * bring it back (Technicolor CGA4131COM, RDK-B firmware: tailscale#21208, quirk 27). Off by
   * default: nothing a client can see tells such a router apart, and it costs a request and a
   * moment without the mapping at each renewal.
   */
  refreshByDeleteAdd?: boolean | undefined
  /** For the SSDP listener (see describe().listen). */
  createSocket?: CreateSocket | undefined
}

export type UpnpClientTuning = Pick<UpnpClientOptions, 'requestTimeoutMs' | 'maxPortAttempts' | 'verifyIntervalMs' | 'refreshByDeleteAdd'>

/**
 * ASUS routers purge their UPnP table every 600 s once it holds more than 20 entries
 * (tailscale#10597). Checking every 30 min brings a purged mapping back within half an hour for
 * one GetSpecificPortMappingEntry: with the renewal at half the 2 h lease, 1 check and 1 renewal
 * an hour. Checking every 10 min would cost 6 requests per mapping-hour, against natmapper's
 * budget of 2 (the seed's design costs about 300, the JS peer 3).
 */
const DEFAULT_VERIFY_INTERVAL_MS = 30 * 60_000

/**
 * A UPnP IGD client (WANIPConnection / WANPPPConnection, IGD v1 and v2) behind the
 * protocol-neutral Gateway interface. Every action is one HTTP exchange on a fresh connection
 * (miniupnpd closes each one anyway). Router behaviours it works around, each with its source at
 * the line that handles it: AddAnyPortMapping missing or answered with a reset, leases refused
 * (725, 402), conflicts (718), low ports (add.ts), entries of other programs (ownership.ts),
 * adds the router lies about (read-back.ts), no external address, a restart on another HTTP port
 * (client-context.ts).
 */
export class UpnpClient implements Gateway {
  readonly method = 'upnp' as const
  readonly address: string
  /** What discovery found, when the client came from discover(). */
  readonly selection: IgdSelection | undefined
  readonly verifyIntervalMs: number
  /** The service, our LAN address and what the router taught: what add.ts, read-back.ts, ownership.ts and listing.ts work with. */
  readonly #ctx: ClientContext
  readonly #restarts: RestartWatch
  readonly #maxPortAttempts: number
  readonly #refreshByDeleteAdd: boolean
  #externalAddress: string | undefined
  #pendingExternalAddress: Promise<string> | undefined
  /** Mappings whose port verify() found holding another program's entry: renew() maps another port for them. */
  readonly #takenOver = new WeakSet<PortMapping>()

  constructor (options: UpnpClientOptions, selection?: IgdSelection) {
    this.address = options.gateway
    this.selection = selection
    const logger = options.logger ?? createLogger('upnp')
    this.#ctx = new ClientContext({
      service: options.service,
      policy: { gateway: options.gateway, responder: options.responder, subnet: options.subnet, prefixes6: options.prefixes6 },
      internalClient: options.internalClient,
      localAddress: options.localAddress,
      clock: options.clock ?? systemClock,
      logger,
      requestTimeoutMs: options.requestTimeoutMs ?? 3000,
      rediscover: options.rediscover
    })
    this.#restarts = new RestartWatch(options.gateway, { bootId: selection?.bootId, location: selection?.location }, { createSocket: options.createSocket, localAddress: options.localAddress, logger })
    this.#externalAddress = options.externalAddress
    this.#maxPortAttempts = options.maxPortAttempts ?? 8
    this.verifyIntervalMs = options.verifyIntervalMs ?? DEFAULT_VERIFY_INTERVAL_MS
    this.#refreshByDeleteAdd = options.refreshByDeleteAdd ?? false
  }

  /**
   * SSDP search, description, service choice (see discovery.ts), then a client for the chosen
   * service. Rejects with TimeoutError when no usable IGD answered, the guard's UnsafeUrlError or
   * RemoteProtocolError when the only answers were unusable, AbortError.
   */
  static async discover (options: UpnpDiscoverOptions & UpnpClientTuning = {}): Promise<UpnpClient> {
    const selection = await discoverIgd(options)
    return UpnpClient.fromSelection(selection, {
      clock: options.clock,
      logger: options.logger,
      requestTimeoutMs: options.requestTimeoutMs,
      maxPortAttempts: options.maxPortAttempts,
      verifyIntervalMs: options.verifyIntervalMs,
      refreshByDeleteAdd: options.refreshByDeleteAdd,
      createSocket: options.createSocket,
      // A new search each time: the one discovery was given (options.started) is closed.
      rediscover: async (signal) => await discoverIgd({ ...options, started: undefined, gateway: selection.gateway, signal })
    })
  }

  static fromSelection (selection: IgdSelection, options: UpnpClientTuning & Pick<UpnpClientOptions, 'clock' | 'logger' | 'rediscover' | 'createSocket'> = {}): UpnpClient {
    return new UpnpClient({
      ...options,
      gateway: selection.gateway,
      service: selection.service,
      responder: selection.responder.address,
      subnet: selection.policy.subnet,
      prefixes6: selection.policy.prefixes6,
      internalClient: selection.internalClient,
      localAddress: selection.localAddress,
      externalAddress: selection.externalAddress?.ok === true ? selection.externalAddress.address : undefined
    }, selection)
  }

  get service (): UpnpService { return this.#ctx.service }

  /**
   * GetExternalIPAddress, strictly: an empty answer (miniupnpd behind a reserved WAN address),
   * 0.0.0.0 or 127.0.0.1 (tailscale corp#23538) or garbage (Asus Merlin, miniupnp#567) is a
   * NoExternalAddressError. A private or CGNAT address is returned: mappings work one NAT up.
   */
  async externalAddress (options: CallOptions = {}): Promise<string> {
    // Asks made while one is in flight share it (concurrent first maps, a renewal and the manager's ask).
    this.#pendingExternalAddress ??= this.#askExternalAddress(options).finally(() => { this.#pendingExternalAddress = undefined })
    return await this.#pendingExternalAddress
  }

  async #askExternalAddress (options: CallOptions): Promise<string> {
    const result = await this.#ctx.call(encodeGetExternalIPAddress, decodeGetExternalIPAddress, this.#ctx.exchange(options))
    if (!result.ok) {
      this.#externalAddress = undefined
      throw new NoExternalAddressError(result.reason, result.text)
    }
    this.#externalAddress = result.address
    return result.address
  }

  async map (request: MapRequest, options: CallOptions = {}): Promise<MapResult> {
    checkRequest(request)
    // Nothing sent yet: a plain abort, not an uncertain mapping.
    throwIfAborted(options.signal)
    const context = this.#ctx.exchange(options)
    let externalAddress = this.#ctx.internalClient === undefined ? undefined : this.#externalAddress
    // A permanent mapping made and then forgotten because the next call failed leaks on the
    // router (MikroTik filled up: tailscale#10602). So an unknown address is learnt before any
    // add, except where a failure can leave nothing for good behind: then GetExternalIPAddress
    // runs alongside a leased add, a round trip sooner, and the add is taken back if the address
    // is unusable. The overlap ends before any permanent lease is asked for (see addMapping in add.ts).
    let addressing: Promise<string> | undefined
    if (externalAddress === undefined) {
      if (this.#ctx.internalClient === undefined || this.#ctx.learnt.permanentOnly || request.lifetimeSeconds === 0) {
        externalAddress = await this.#knownExternalAddress(options)
      } else {
        addressing = this.#knownExternalAddress(options)
        addressing.catch(() => {})
      }
    }
    const internalClient = this.#ctx.internalClient
    if (internalClient === undefined) throw new RemoteProtocolError('could not learn our LAN address from the connection to the router')
    const { mapping, externalAddress: address } = await addOnFreePort(this.#ctx, request,
      { internalClient, externalAddress, addressing, maxPortAttempts: this.#maxPortAttempts }, context, options)
    if (!needsReadBack(this.#ctx.learnt, mapping)) return { mapping }
    // The caller's signal is for this call, which ends here; the check has its own deadline.
    const checkContext = this.#ctx.exchange(options.timeoutMs === undefined ? {} : { timeoutMs: options.timeoutMs })
    const check = readBack(this.#ctx, mapping, internalClient, address, checkContext)
    check.catch(() => {})
    return { mapping, check }
  }

  /**
   * Whether the router still holds `mapping` for us: its GetSpecificPortMappingEntry shows our
   * internal port and address. The manager calls it every `verifyIntervalMs` (30 min by
   * default) and makes a missing mapping again (quirks 10 and 26). Errors are the caller's to
   * weigh: a router that does not answer says nothing about the entry.
   */
  async verify (mapping: PortMapping, options: CallOptions = {}): Promise<boolean> {
    sessionOf(mapping)
    const internalClient = this.#ctx.internalClient
    const state = await entryState(this.#ctx, mapping, internalClient, this.#ctx.exchange(options))
    // Another program took the port (an add over ours): the renewal must not take it back (see renew).
    if (state === 'wrong-port' || state === 'wrong-client') this.#takenOver.add(mapping)
    return state === 'ok'
  }

  /**
   * The same external port again (an add of the same entry refreshes it); another one if it was
   * taken meanwhile. A renewal does not look at the entry first (that would be a third request
   * per mapping-hour): between the 30-min checks (verify) an entry is ours unless another
   * program added over it, and once verify has seen that, the mapping moves to another port
   * instead of taking that one back.
   */
  async renew (mapping: PortMapping, options: CallOptions = {}): Promise<PortMapping> {
    const session = sessionOf(mapping)
    if (this.#takenOver.has(mapping)) {
      this.#ctx.logger('%s %d: external port %d now holds another program\'s entry; mapping another', mapping.protocol, mapping.internalPort, mapping.externalPort)
      return await this.#remap(mapping, session, options)
    }
    const context = this.#ctx.exchange(options)
    const externalAddress = await this.externalAddress(options)
    const internalClient = this.#ctx.internalClient
    if (internalClient === undefined) throw new RemoteProtocolError('could not learn our LAN address from the connection to the router')
    if (this.#refreshByDeleteAdd) {
      try {
        await this.unmap(mapping, options)
      } catch (err) {
        if (!(err instanceof EntryNotOursError)) throw err
        this.#ctx.logger('%s %d: %s; mapping another', mapping.protocol, mapping.internalPort, err.message)
        return await this.#remap(mapping, session, options)
      }
    }
    try {
      return await addMapping(this.#ctx, mapping.protocol, mapping.internalPort, mapping.externalPort, session.requestedLifetimeSeconds,
        session.description, internalClient, externalAddress, context, { exactPort: true })
    } catch (err) {
      if (!isRefused(err, UpnpErrorCode.ConflictInMappingEntry, UpnpErrorCode.ConflictWithOtherMechanisms)) throw err
      this.#ctx.logger('%s %d: external port %d was taken meanwhile, mapping another', mapping.protocol, mapping.internalPort, mapping.externalPort)
      return await this.#remap(mapping, session, options)
    }
  }

  /** A mapping made anew for `mapping`'s internal port, on another external port, checked. */
  async #remap (mapping: PortMapping, session: UpnpSession, options: CallOptions): Promise<PortMapping> {
    const { mapping: moved, check } = await this.map({
      protocol: mapping.protocol, internalPort: mapping.internalPort, lifetimeSeconds: session.requestedLifetimeSeconds, description: session.description
    }, options)
    return check === undefined ? moved : await check
  }

  /**
   * DeletePortMapping, once GetSpecificPortMappingEntry shows the entry is ours (the same internal
   * client and internal port); another's entry is left alone and EntryNotOursError thrown, and an
   * entry already gone counts as deleted. The details and their reasons: deleteIfOurs in ownership.ts.
   */
  async unmap (mapping: PortMapping, options: CallOptions = {}): Promise<void> {
    await deleteIfOurs(this.#ctx, mapping, options)
  }

  /**
   * One DeletePortMappingRange (IGD v2) for mappings on contiguous external ports of one
   * protocol, once each entry is seen to be ours; false, with nothing deleted, when the router
   * cannot or the range holds another's entry (then delete each with unmap). See range-delete.ts.
   */
  async unmapRange (mappings: readonly PortMapping[], options: CallOptions = {}): Promise<boolean> {
    for (const mapping of mappings) sessionOf(mapping)
    return await deleteRangeIfOurs(this.#ctx, mappings, options)
  }

  /** GetSpecificPortMappingEntry: the router's entry for an external port, undefined when it has none. */
  async getPortMappingEntry (externalPort: number, protocol: TransportProtocol, options: CallOptions = {}): Promise<PortMappingEntry | undefined> {
    return await this.#ctx.call((st) => encodeGetSpecificPortMappingEntry(st, { externalPort, protocol }), decodeGetSpecificPortMappingEntry, this.#ctx.exchange(options))
  }

  /**
   * The router's whole table, by GetGenericPortMappingEntry from index 0 until the router says the
   * index is past the end, 1024 entries at most; an answer that cannot be read is skipped and
   * listed as unreadable. The details and their reasons: listTable in listing.ts.
   */
  async list (options: CallOptions = {}): Promise<ListedTable> {
    return await listTable(this.#ctx, options)
  }

  onReset (listener: (reset: GatewayReset) => void): () => void {
    return this.#restarts.onReset(listener)
  }

  describe (): GatewayAbilities {
    return {
      detail: this.selection === undefined ? undefined : describeIgd(this.selection),
      list: async (options) => await this.list(options),
      ...(canDeleteRange(this.#ctx) ? { unmapRange: async (mappings, options) => await this.unmapRange(mappings, options) } : {}),
      ...(this.verifyIntervalMs > 0 ? { verify: { intervalMs: this.verifyIntervalMs, check: async (mapping, options) => await this.verify(mapping, options) } } : {}),
      // Listens for the router's SSDP announcements, once: a restart comes as a reset.
      listen: async (options) => await this.#restarts.listen(options),
      counters: () => this.#ctx.counters.snapshot()
    }
  }

  /** No connection outlives its request; later calls throw ClosedError. */
  close (): void {
    this.#ctx.close()
    this.#restarts.close()
  }

  async #knownExternalAddress (options: CallOptions): Promise<string> {
    if (this.#externalAddress !== undefined && this.#ctx.internalClient !== undefined) return this.#externalAddress
    return await this.externalAddress(options)
  }
}

/** "MiniUPnPd, IGD v2, WANIPConnection:2", for people. */
function describeIgd (selection: IgdSelection): string {
  const name = selection.device.friendlyName !== '' ? selection.device.friendlyName : selection.device.modelName !== '' ? selection.device.modelName : 'unnamed device'
  const service = selection.service.serviceType.split(':').slice(-2).join(':')
  return `${name}, IGD v${selection.service.igdVersion}, ${service}`
}
