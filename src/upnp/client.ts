import { systemClock, type Clock } from '../clock.js'
import { AbortError, ClosedError, ConnectionResetError, EntryNotOursError, GatewayRefusedError, NoExternalAddressError, NoResponseError, RemoteProtocolError, throwIfAborted, TimeoutError, UncertainMappingError, UsageError, type PortMappingEntry } from '../errors.js'
import type { CallOptions, Gateway, GatewayAbilities, GatewayReset, ListedMapping, ListedTable, ListenOptions, MapRequest, MapResult, PortMapping, TransportProtocol } from '../gateway.js'
import { createLogger, type Logger } from '../log.js'
import { isIpv4Literal } from '../net/address.js'
import type { CreateSocket } from '../net/udp.js'
import { lowPortHint } from '../port-rules.js'
import {
  decodeGetGenericPortMappingEntry, encodeGetGenericPortMappingEntry,
  decodeAddAnyPortMapping, decodeAddPortMapping, decodeDeletePortMapping, decodeGetExternalIPAddress,
  decodeGetSpecificPortMappingEntry, encodeAddAnyPortMapping, encodeAddPortMapping, encodeDeletePortMapping,
  encodeGetExternalIPAddress, encodeGetSpecificPortMappingEntry, IGD2_MAX_LEASE_SECONDS,
  type PortMappingArgs
} from './actions.js'
import { UpnpErrorCode } from './codes.js'
import { soapCall, type ExchangeContext } from './control.js'
import { discoverIgd, type IgdSelection, type UpnpDiscoverOptions } from './discovery.js'
import type { Ipv4Subnet, UrlPolicy } from './guard.js'
import { capDescription } from './mapping-description.js'
import { notOursBecause, type WantedEntry } from './ownership.js'
import { listenForRestarts } from './restarts.js'
import type { SoapRequest } from './soap.js'
import type { SsdpListener } from './ssdp-listener.js'

/** The WAN connection service a client controls. */
export interface UpnpService {
  readonly serviceType: string
  /** Absolute http URL at the gateway. */
  readonly controlURL: string
  /** IGD v2 brings AddAnyPortMapping (on WANIPConnection:2) and the 604800 s lease cap. */
  readonly igdVersion: 1 | 2
}

export interface UpnpClientOptions {
  gateway: string
  service: UpnpService
  /** The host that answered SSDP, and the gateway's subnet: where control URLs may point (guard.ts). */
  responder?: string | undefined
  subnet?: Ipv4Subnet | undefined
  /** Our LAN address if already known (from the description fetch). */
  internalClient?: string | undefined
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

/** What a renewal or delete needs. */
export interface UpnpSession {
  readonly requestedLifetimeSeconds: number
  readonly description: string
  /** The lease the router was asked for: 0 is permanent (604800 s on IGD v2). */
  readonly leaseSeconds?: number
}

export function isUpnpSession (session: unknown): session is UpnpSession {
  const s = session as Partial<UpnpSession> | null | undefined
  return typeof s?.requestedLifetimeSeconds === 'number' && typeof s.description === 'string'
}

/**
 * ASUS routers purge their UPnP table every 600 s once it holds more than 20 entries
 * (tailscale#10597). Checking every 30 min brings a purged mapping back within half an hour for
 * one GetSpecificPortMappingEntry: with the renewal at half the 2 h lease, 1 check and 1 renewal
 * an hour. Checking every 10 min would cost 6 requests per mapping-hour, against natmapper's
 * budget of 2 (the seed's design costs about 300, the JS peer 3).
 */
const DEFAULT_VERIFY_INTERVAL_MS = 30 * 60_000

/** The look-ups of one map() call (see #takenBy). */
interface EntryLook {
  unreadableInARow: number
  /** The last look-up found the port free: a refusal of the add that follows is no conflict. */
  sawFree: boolean
}

/** What GetSpecificPortMappingEntry says about a mapping we made. */
type EntryState = 'ok' | 'missing' | 'wrong-port' | 'wrong-client'

/** Entries `list` reads at most. */
const MAX_LISTED = 1024
/** Unreadable answers in a row after which `list` stops: a router that answers every index with garbage. */
const MAX_UNREADABLE_IN_A_ROW = 8

/**
 * A UPnP IGD client (WANIPConnection / WANPPPConnection, IGD v1 and v2) behind the
 * protocol-neutral Gateway interface. Every action is one HTTP exchange on a fresh connection
 * (miniupnpd closes each one anyway). Router behaviours it works around, each with its source at
 * the line that handles it: AddAnyPortMapping missing or answered with a reset, leases refused
 * (725, 402), conflicts (718), low ports, no external address, a restart on another HTTP port.
 */
export class UpnpClient implements Gateway {
  readonly method = 'upnp' as const
  readonly address: string
  /** What discovery found, when the client came from discover(). */
  readonly selection: IgdSelection | undefined
  readonly #clock: Clock
  readonly #logger: Logger
  readonly #requestTimeoutMs: number
  readonly #maxPortAttempts: number
  readonly #rediscover: UpnpClientOptions['rediscover']
  readonly verifyIntervalMs: number
  readonly #refreshByDeleteAdd: boolean
  #service: UpnpService
  #policy: UrlPolicy
  #internalClient: string | undefined
  #externalAddress: string | undefined
  #pendingExternalAddress: Promise<string> | undefined
  #pendingRediscovery: Promise<void> | undefined
  /** Learnt from 725 or 402: the router takes permanent leases only. */
  #permanentOnly = false
  /** Learnt from 401/602 or a reset: AddAnyPortMapping is not there, despite IGD v2. */
  #noAddAny = false
  /** Learnt from 401/602 to GetSpecificPortMappingEntry: adds and deletes then go ahead without looking. */
  #noEntryLookup = false
  /** Mappings whose port verify() found holding another program's entry: renew() maps another port for them. */
  readonly #takenOver = new WeakSet<PortMapping>()
  /** Set once an add has been read back as made: later ones are trusted (see #readBack). */
  #addsCheckedOut = false
  readonly #createSocket: CreateSocket | undefined
  readonly #resetListeners = new Set<(reset: GatewayReset) => void>()
  #listening: Promise<SsdpListener | undefined> | undefined
  #closed = false

  constructor (options: UpnpClientOptions, selection?: IgdSelection) {
    this.address = options.gateway
    this.selection = selection
    this.#service = options.service
    this.#policy = { gateway: options.gateway, responder: options.responder, subnet: options.subnet }
    this.#internalClient = options.internalClient
    this.#externalAddress = options.externalAddress
    this.#clock = options.clock ?? systemClock
    this.#logger = options.logger ?? createLogger('upnp')
    this.#requestTimeoutMs = options.requestTimeoutMs ?? 3000
    this.#maxPortAttempts = options.maxPortAttempts ?? 8
    this.#rediscover = options.rediscover
    this.verifyIntervalMs = options.verifyIntervalMs ?? DEFAULT_VERIFY_INTERVAL_MS
    this.#refreshByDeleteAdd = options.refreshByDeleteAdd ?? false
    this.#createSocket = options.createSocket
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
      internalClient: selection.internalClient,
      externalAddress: selection.externalAddress?.ok === true ? selection.externalAddress.address : undefined
    }, selection)
  }

  get service (): UpnpService { return this.#service }

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
    const result = await this.#call(encodeGetExternalIPAddress, decodeGetExternalIPAddress, this.#context(options))
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
    const context = this.#context(options)
    let externalAddress = this.#internalClient === undefined ? undefined : this.#externalAddress
    // A permanent mapping made and then forgotten because the next call failed leaks on the
    // router (MikroTik filled up: tailscale#10602). So an unknown address is learnt before any
    // add, except where a failure can leave nothing for good behind: then GetExternalIPAddress
    // runs alongside a leased add, a round trip sooner, and the add is taken back if the address
    // is unusable. The overlap ends before any permanent lease is asked for (see #add).
    let addressing: Promise<string> | undefined
    if (externalAddress === undefined) {
      if (this.#internalClient === undefined || this.#permanentOnly || request.lifetimeSeconds === 0) {
        externalAddress = await this.#knownExternalAddress(options)
      } else {
        addressing = this.#knownExternalAddress(options)
        addressing.catch(() => {})
      }
    }
    const internalClient = this.#internalClient
    if (internalClient === undefined) throw new RemoteProtocolError('could not learn our LAN address from the connection to the router')
    // As routers keep it (miniupnpd: 63 bytes escaped), so that what is read back compares equal.
    const description = capDescription(request.description ?? 'natmapper')
    let conflict: Error | undefined
    const wanted = { internalClient, internalPort: request.internalPort, description }
    const looking: EntryLook = { unreadableInARow: 0, sawFree: false }
    for (let attempt = 0; attempt < this.#maxPortAttempts; attempt++) {
      const port = candidatePort(request, internalClient, attempt)
      // The router would overwrite an entry of our host made by another program (ownership.ts): look first.
      looking.sawFree = false
      const taken = await this.#takenBy(request.protocol, port, wanted, looking, context)
      if (taken !== undefined) {
        this.#logger('%s %d: %s; trying another external port', request.protocol, request.internalPort, taken.message)
        conflict = taken
        continue
      }
      let mapping: PortMapping
      try {
        mapping = await this.#add(request.protocol, request.internalPort, port, request.lifetimeSeconds, description, internalClient, externalAddress, context, { beforePermanent: addressing })
      } catch (err) {
        // No answer does not mean no mapping: say which one it may be, for the caller to delete (quirk 11).
        if (isUncertain(err)) {
          throw new UncertainMappingError(this.#mapping(request.protocol, request.internalPort, port, externalAddress, request.lifetimeSeconds, request.lifetimeSeconds, description), err as Error)
        }
        const outsideRules = lowPortRefusal(err, request.internalPort, looking.sawFree)
        if (outsideRules !== undefined) throw outsideRules
        // 718: another host holds this port; 729: another mechanism (NAT-PMP, PCP, a static rule) does.
        if (!isRefused(err, UpnpErrorCode.ConflictInMappingEntry, UpnpErrorCode.ConflictWithOtherMechanisms)) throw err
        this.#logger('%s %d: external port %d is taken (%s), trying another', request.protocol, request.internalPort, port, (err as Error).message)
        conflict = err as Error
        continue
      }
      const address = externalAddress ?? await this.#addressFor(mapping, addressing!, options)
      if (mapping.externalAddress !== address) mapping = { ...mapping, externalAddress: address }
      if (!this.#needsReadBack(mapping)) return { mapping }
      // The caller's signal is for this call, which ends here; the check has its own deadline.
      const checkContext = this.#context(options.timeoutMs === undefined ? {} : { timeoutMs: options.timeoutMs })
      const check = this.#readBack(mapping, internalClient, address, checkContext)
      check.catch(() => {})
      return { mapping, check }
    }
    throw conflict!
  }

  /**
   * Whether the router still holds `mapping` for us: its GetSpecificPortMappingEntry shows our
   * internal port and address. The manager calls it every `verifyIntervalMs` (30 min by
   * default) and makes a missing mapping again (quirks 10 and 26). Errors are the caller's to
   * weigh: a router that does not answer says nothing about the entry.
   */
  async verify (mapping: PortMapping, options: CallOptions = {}): Promise<boolean> {
    sessionOf(mapping)
    const internalClient = this.#internalClient
    const state = await this.#entryState(mapping, internalClient, this.#context(options))
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
      this.#logger('%s %d: external port %d now holds another program\'s entry; mapping another', mapping.protocol, mapping.internalPort, mapping.externalPort)
      return await this.#remap(mapping, session, options)
    }
    const context = this.#context(options)
    const externalAddress = await this.externalAddress(options)
    const internalClient = this.#internalClient
    if (internalClient === undefined) throw new RemoteProtocolError('could not learn our LAN address from the connection to the router')
    if (this.#refreshByDeleteAdd) {
      try {
        await this.unmap(mapping, options)
      } catch (err) {
        if (!(err instanceof EntryNotOursError)) throw err
        this.#logger('%s %d: %s; mapping another', mapping.protocol, mapping.internalPort, err.message)
        return await this.#remap(mapping, session, options)
      }
    }
    try {
      return await this.#add(mapping.protocol, mapping.internalPort, mapping.externalPort, session.requestedLifetimeSeconds,
        session.description, internalClient, externalAddress, context, { exactPort: true })
    } catch (err) {
      if (!isRefused(err, UpnpErrorCode.ConflictInMappingEntry, UpnpErrorCode.ConflictWithOtherMechanisms)) throw err
      this.#logger('%s %d: external port %d was taken meanwhile, mapping another', mapping.protocol, mapping.internalPort, mapping.externalPort)
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
   * DeletePortMapping, once GetSpecificPortMappingEntry shows the entry is ours: the same
   * internal client and internal port (ownership.ts; the description does not count here, so a
   * router that rewrites descriptions does not keep our entries for good). Another's entry is
   * left alone and EntryNotOursError thrown: the router would delete whatever holds the port. An
   * entry already gone counts as deleted (no request more); so does 714, or 730 in some v2
   * firmware, to the delete. Where the router cannot answer the look-up (a fault), it deletes as
   * before; an answer that cannot be read is EntryNotOursError (nothing says it is ours).
   */
  async unmap (mapping: PortMapping, options: CallOptions = {}): Promise<void> {
    const context = this.#context(options)
    if (!this.#noEntryLookup) {
      let entry: PortMappingEntry | undefined | null
      try {
        entry = await this.#lookUp(mapping.protocol, mapping.externalPort, context)
      } catch (err) {
        if (err instanceof RemoteProtocolError) throw new EntryNotOursError('delete', mapping.protocol, mapping.externalPort, undefined, `its entry could not be read (${err.message})`)
        if (!(err instanceof GatewayRefusedError)) throw err
        this.#logger('%s external port %d: GetSpecificPortMappingEntry refused (%s); deleting without looking', mapping.protocol, mapping.externalPort, err.message)
        entry = null
      }
      if (entry === undefined) return
      const why = entry === null ? undefined : notOursBecause(entry, { internalClient: this.#internalClient, internalPort: mapping.internalPort })
      if (why !== undefined) throw new EntryNotOursError('delete', mapping.protocol, mapping.externalPort, entry ?? undefined, why)
    }
    await this.#delete(mapping, options)
  }

  /** DeletePortMapping without looking: for an entry this client has just made or read (see unmap). */
  async #delete (mapping: PortMapping, options: CallOptions): Promise<void> {
    const key = { externalPort: mapping.externalPort, protocol: mapping.protocol }
    try {
      await this.#call((st) => encodeDeletePortMapping(st, key), decodeDeletePortMapping, this.#context(options))
    } catch (err) {
      if (!isRefused(err, UpnpErrorCode.NoSuchEntryInArray, UpnpErrorCode.PortMappingNotFound)) throw err
    }
  }

  /** GetSpecificPortMappingEntry, remembering a router that does not have the action (then nothing is looked up again). */
  async #lookUp (protocol: TransportProtocol, externalPort: number, context: ExchangeContext): Promise<PortMappingEntry | undefined> {
    try {
      return await this.#call((st) => encodeGetSpecificPortMappingEntry(st, { externalPort, protocol }), decodeGetSpecificPortMappingEntry, context)
    } catch (err) {
      if (isRefused(err, UpnpErrorCode.InvalidAction, UpnpErrorCode.OptionalActionNotImplemented)) this.#noEntryLookup = true
      throw err
    }
  }

  /**
   * Before an add on `externalPort`: EntryNotOursError when the router holds an entry there that
   * is not ours, undefined when the port is free (`looking.sawFree`) or holds our own entry (the
   * add refreshes it: a restarted natmapper takes back its earlier mapping). A router that cannot
   * answer (a fault) gets the add unchecked, as before. An unreadable answer (miniupnpd up to
   * 2.3.10 with a description of 64 bytes or more: mapping-description.ts) is someone's entry;
   * two in a row are the router's look-ups that do not work, and the add goes ahead unchecked.
   */
  async #takenBy (protocol: TransportProtocol, externalPort: number, wanted: WantedEntry, looking: EntryLook, context: ExchangeContext): Promise<EntryNotOursError | undefined> {
    if (this.#noEntryLookup) return undefined
    let entry: PortMappingEntry | undefined
    try {
      entry = await this.#lookUp(protocol, externalPort, context)
    } catch (err) {
      if (err instanceof RemoteProtocolError && ++looking.unreadableInARow < 2) {
        return new EntryNotOursError('map', protocol, externalPort, undefined, `its entry could not be read (${err.message})`)
      }
      if (!(err instanceof GatewayRefusedError) && !(err instanceof RemoteProtocolError)) throw err
      this.#logger('%s external port %d: cannot look at the entry (%s); adding without looking', protocol, externalPort, (err as Error).message)
      return undefined
    }
    looking.unreadableInARow = 0
    if (entry === undefined) {
      looking.sawFree = true
      return undefined
    }
    const why = notOursBecause(entry, wanted)
    return why === undefined ? undefined : new EntryNotOursError('map', protocol, externalPort, entry, why)
  }

  /** GetSpecificPortMappingEntry: the router's entry for an external port, undefined when it has none. */
  async getPortMappingEntry (externalPort: number, protocol: TransportProtocol, options: CallOptions = {}): Promise<PortMappingEntry | undefined> {
    return await this.#call((st) => encodeGetSpecificPortMappingEntry(st, { externalPort, protocol }), decodeGetSpecificPortMappingEntry, this.#context(options))
  }

  /**
   * The router's whole table, by GetGenericPortMappingEntry from index 0 until the router says
   * the index is past the end. Bounded (MAX_LISTED entries) against a router that never says so.
   * An answer that cannot be read is skipped and the next index asked: miniupnpd up to 2.3.10
   * sends a description of 64 bytes or more cut there, stack bytes after it, often mid-entity
   * (desc[64] in upnpsoap.c; see mapping-description.ts), and one such entry must not hide the
   * others. The skipped ones are listed as unreadable. After
   * MAX_UNREADABLE_IN_A_ROW in a row the listing stops; if nothing at all could be read, the
   * first error is thrown: that router's listing does not work.
   */
  async list (options: CallOptions = {}): Promise<ListedTable> {
    const entries: ListedMapping[] = []
    const unreadable: ListedTable['unreadable'] = []
    const context = this.#context(options)
    let inARow = 0
    for (let index = 0; index < MAX_LISTED; index++) {
      let entry
      try {
        entry = await this.#call((st) => encodeGetGenericPortMappingEntry(st, index), decodeGetGenericPortMappingEntry, context)
      } catch (err) {
        if (!(err instanceof RemoteProtocolError)) throw err
        this.#logger('GetGenericPortMappingEntry %d: unreadable (%s); going on with the next index', index, err.message)
        unreadable.push({ index, reason: err.message })
        if (++inARow < MAX_UNREADABLE_IN_A_ROW) continue
        if (entries.length === 0) throw err
        break
      }
      inARow = 0
      if (entry === undefined) break
      entries.push({
        protocol: entry.protocol,
        externalPort: entry.externalPort,
        internalClient: entry.internalClient,
        internalPort: entry.internalPort,
        description: entry.description,
        leaseSeconds: entry.leaseDurationSeconds,
        enabled: entry.enabled
      })
    }
    return { entries, unreadable }
  }

  /**
   * Reads a new mapping back, where routers are known to lie about it. Quirk 10: an old DD-WRT
   * accepts a leased entry and drops it at once (tailscale#18196): a missing entry is added
   * again with a permanent lease. Quirk 28: Orange FunBox6 and other SoftAtHome boxes list, and
   * forward to, the external port as the internal one (tailscale#14344): such an entry is
   * deleted and the mapping made again with equal ports, where the lie is harmless. The first add
   * of each client is read back, and every add whose ports differ (the only case where the
   * second lie shows); once one has checked out, equal-port adds are trusted, so the check costs
   * one request per client, not one per mapping. A read-back that fails (no answer) keeps the
   * mapping: dropping a possibly permanent one over a failed follow-up call is how they leak
   * (quirk 11, tailscale#10602).
   */
  async #readBack (added: PortMapping, internalClient: string, externalAddress: string, context: ExchangeContext): Promise<PortMapping> {
    let mapping = added
    for (let round = 0; ; round++) {
      if (!this.#needsReadBack(mapping)) return mapping
      let state: EntryState
      try {
        state = await this.#entryState(mapping, internalClient, context)
      } catch (err) {
        this.#logger('%s %d: could not read external port %d back (%s); keeping it', mapping.protocol, mapping.internalPort, mapping.externalPort, (err as Error).message)
        return mapping
      }
      if (state === 'ok') {
        this.#addsCheckedOut = true
        return mapping
      }
      const session = sessionOf(mapping)
      const what = `${mapping.protocol.toUpperCase()} external port ${mapping.externalPort}`
      if (state === 'wrong-client') {
        throw new RemoteProtocolError(`the router accepted ${what} but lists it for another host`)
      }
      if (round > 0) {
        // The second way did not work either: take it away rather than leave a broken entry (a
        // router that says it has none may still hold a permanent one; 714 costs nothing).
        await this.#delete(mapping, { signal: context.signal }).catch(() => {})
        throw new RemoteProtocolError(state === 'missing'
          ? `the router accepted ${what}, even as a permanent lease, but does not keep it (GetSpecificPortMappingEntry finds no entry)`
          : `the router forwards ${what} to another internal port than ${mapping.internalPort}, even with equal ports; the mapping was removed`)
      }
      if (state === 'missing') {
        if (session.leaseSeconds === 0 || this.#permanentOnly) {
          await this.#delete(mapping, { signal: context.signal }).catch(() => {})
          throw new RemoteProtocolError(`the router accepted ${what} but does not keep it (GetSpecificPortMappingEntry finds no entry)`)
        }
        this.#logger('%s: gone at once after a leased add (old DD-WRT, tailscale#18196): adding it with a permanent lease', what)
        this.#permanentOnly = true
        try {
          mapping = await this.#add(mapping.protocol, mapping.internalPort, mapping.externalPort, session.requestedLifetimeSeconds,
            session.description, internalClient, externalAddress, context, { exactPort: true })
        } catch (err) {
          this.#permanentOnly = false
          throw err
        }
        continue
      }
      // wrong-port: the router forwards to the external port; equal ports make that right.
      this.#logger('%s: the router lists internal port other than %d (SoftAtHome, tailscale#14344): removing it, mapping equal ports', what, mapping.internalPort)
      await this.#delete(mapping, { signal: context.signal }).catch((err: Error) => { throw new UncertainMappingError(mapping, err) })
      if (mapping.internalPort < 1024) {
        throw new RemoteProtocolError(`the router forwards ${what} to another internal port than ${mapping.internalPort}, and a low external port cannot be asked for instead; the mapping was removed`)
      }
      // A first add of that port: looked at like any (ownership.ts).
      const taken = await this.#takenBy(mapping.protocol, mapping.internalPort, { internalClient, internalPort: mapping.internalPort, description: session.description }, { unreadableInARow: 0, sawFree: false }, context)
      if (taken !== undefined) {
        throw new RemoteProtocolError(`the router forwards ${what} to another internal port than ${mapping.internalPort}, and equal ports are impossible: ${taken.message}; the mapping was removed`)
      }
      mapping = await this.#add(mapping.protocol, mapping.internalPort, mapping.internalPort, session.requestedLifetimeSeconds,
        session.description, internalClient, externalAddress, context, { exactPort: true })
    }
  }

  #needsReadBack (mapping: PortMapping): boolean {
    return !this.#addsCheckedOut || mapping.externalPort !== mapping.internalPort
  }

  async #entryState (mapping: PortMapping, internalClient: string | undefined, context: ExchangeContext): Promise<EntryState> {
    const entry = await this.#call((st) => encodeGetSpecificPortMappingEntry(st, { externalPort: mapping.externalPort, protocol: mapping.protocol }),
      decodeGetSpecificPortMappingEntry, context)
    if (entry === undefined) return 'missing'
    // Some routers list a name or nothing as the client; only another IPv4 address is another host.
    if (internalClient !== undefined && isIpv4Literal(entry.internalClient) && entry.internalClient !== internalClient) return 'wrong-client'
    return entry.internalPort === mapping.internalPort ? 'ok' : 'wrong-port'
  }

  onReset (listener: (reset: GatewayReset) => void): () => void {
    this.#resetListeners.add(listener)
    return () => { this.#resetListeners.delete(listener) }
  }

  describe (): GatewayAbilities {
    return {
      detail: this.selection === undefined ? undefined : describeIgd(this.selection),
      list: async (options) => await this.list(options),
      ...(this.verifyIntervalMs > 0 ? { verify: { intervalMs: this.verifyIntervalMs, check: async (mapping, options) => await this.verify(mapping, options) } } : {}),
      listen: async (options) => await this.#listen(options)
    }
  }

  /** Listens for the router's SSDP announcements, once: a restart comes as a reset. */
  async #listen (options: ListenOptions = {}): Promise<{ address: string, port: number } | undefined> {
    if (this.#closed) return undefined
    this.#listening ??= listenForRestarts(this.address, { bootId: this.selection?.bootId, location: this.selection?.location },
      { ssdp: options.ssdp, createSocket: this.#createSocket, logger: this.#logger },
      (reset) => { for (const listener of [...this.#resetListeners]) listener(reset) }
    ).then((listener) => {
      if (this.#closed) listener?.close()
      return listener
    })
    return (await this.#listening)?.address
  }

  /** No connection outlives its request; later calls throw ClosedError. */
  close (): void {
    this.#closed = true
    void this.#listening?.then((listener) => { listener?.close() })
  }

  async #knownExternalAddress (options: CallOptions): Promise<string> {
    if (this.#externalAddress !== undefined && this.#internalClient !== undefined) return this.#externalAddress
    return await this.externalAddress(options)
  }

  /**
   * The address asked for alongside the add that made `mapping`. When there is none to be had,
   * the mapping is deleted before the error is passed on; if even that fails, the error carries
   * the mapping for the manager to delete later (quirk 11).
   */
  async #addressFor (mapping: PortMapping, addressing: Promise<string>, options: CallOptions): Promise<string> {
    try {
      return await addressing
    } catch (err) {
      this.#logger('%s %d: no external address (%s): deleting external port %d again', mapping.protocol, mapping.internalPort, (err as Error).message, mapping.externalPort)
      try {
        await this.#delete(mapping, options.signal === undefined ? {} : { signal: options.signal })
      } catch {
        throw new UncertainMappingError(mapping, err as Error)
      }
      throw err
    }
  }

  /** `how.beforePermanent`: what must succeed before a permanent lease may be asked for (see map). */
  async #add (protocol: TransportProtocol, internalPort: number, externalPort: number, lifetimeSeconds: number, description: string,
    internalClient: string, externalAddress: string | undefined, context: ExchangeContext,
    how: { exactPort?: boolean, beforePermanent?: Promise<unknown> | undefined } = {}): Promise<PortMapping> {
    const v2 = this.#service.igdVersion === 2
    const asked = this.#permanentOnly ? 0 : v2 ? Math.min(lifetimeSeconds, IGD2_MAX_LEASE_SECONDS) : lifetimeSeconds
    let lease = asked
    for (;;) {
      const args: PortMappingArgs = { externalPort, protocol, internalPort, internalClient, description, leaseDurationSeconds: lease }
      try {
        const granted = await this.#addEntry(args, context, how.exactPort === true)
        // Remembered only once lease 0 has worked: then this router gets permanent leases from now on.
        if (lease !== asked) this.#permanentOnly = true
        return this.#mapping(protocol, internalPort, granted, externalAddress, lifetimeSeconds, lease, description)
      } catch (err) {
        // 725 OnlyPermanentLeasesSupported (MikroTik: tailscale#9343), or 402 InvalidArgs for any
        // lease but 0 (ARRIS NVG578LX: tailscale#15223): ask for a permanent lease. A 402 on
        // lease 0 is something else (a full table: miniupnp#92), not retried.
        if (lease === 0 || !isRefused(err, UpnpErrorCode.OnlyPermanentLeasesSupported, UpnpErrorCode.InvalidArgs)) throw err
        this.#logger('lease %d s refused (%s): asking for a permanent lease', lease, (err as Error).message)
        await how.beforePermanent
        lease = 0
      }
    }
  }

  /** The granted external port: AddAnyPortMapping's choice, or the one AddPortMapping was given. */
  async #addEntry (args: PortMappingArgs, context: ExchangeContext, exactPort: boolean): Promise<number> {
    if (!exactPort && this.#service.igdVersion === 2 && !this.#noAddAny && this.#service.serviceType.includes(':WANIPConnection:')) {
      try {
        return await this.#call((st) => encodeAddAnyPortMapping(st, args), decodeAddAnyPortMapping, context)
      } catch (err) {
        // An IGD v2 description is no promise: 401 InvalidAction or 602 OptionalActionNotImplemented,
        // or a TCP reset instead of a fault (Ubee EVW32C-0S: miniupnp#528).
        if (!isRefused(err, UpnpErrorCode.InvalidAction, UpnpErrorCode.OptionalActionNotImplemented) && !(err instanceof ConnectionResetError)) throw err
        this.#logger('AddAnyPortMapping unavailable (%s): using AddPortMapping', (err as Error).message)
        this.#noAddAny = true
      }
    }
    await this.#call((st) => encodeAddPortMapping(st, args), decodeAddPortMapping, context)
    return args.externalPort
  }

  #mapping (protocol: TransportProtocol, internalPort: number, externalPort: number, externalAddress: string | undefined,
    requestedLifetimeSeconds: number, leaseSeconds: number, description: string): PortMapping {
    const grantedAtMs = this.#clock.now()
    const v2 = this.#service.igdVersion === 2
    // A lease of 0 is permanent on IGD v1 and the 604800 s maximum on v2. A permanent lease that
    // the caller did not ask for is refreshed at the pace asked for all the same (as tailscale
    // does), so that it comes back after the router reboots.
    const leaseEndsSeconds = leaseSeconds !== 0 ? leaseSeconds : v2 ? IGD2_MAX_LEASE_SECONDS : Infinity
    const lifetimeSeconds = requestedLifetimeSeconds !== 0 ? Math.min(requestedLifetimeSeconds, leaseEndsSeconds) : v2 ? IGD2_MAX_LEASE_SECONDS : 0
    const session: UpnpSession = { requestedLifetimeSeconds, description, leaseSeconds }
    return {
      method: 'upnp',
      protocol,
      internalPort,
      externalPort,
      externalAddress,
      lifetimeSeconds,
      grantedAtMs,
      expiresAtMs: grantedAtMs + leaseEndsSeconds * 1000,
      session
    }
  }

  #context (options: CallOptions): ExchangeContext {
    if (this.#closed) throw new ClosedError('UPnP client')
    return {
      policy: this.#policy,
      clock: this.#clock,
      logger: this.#logger,
      requestTimeoutMs: this.#requestTimeoutMs,
      signal: options.signal,
      deadlineMs: options.timeoutMs === undefined ? undefined : this.#clock.now() + options.timeoutMs,
      onLocalAddress: (address) => { this.#internalClient = address }
    }
  }

  /**
   * One action. When the control URL refuses connections the router has probably restarted on
   * another HTTP port (miniupnpd picks a new one at each start unless configured: LAB.md), so the
   * service is looked up again and the action sent once more.
   */
  async #call<T> (build: (serviceType: string) => SoapRequest, decode: (xml: string, serviceType: string) => T, context: ExchangeContext): Promise<T> {
    const service = this.#service
    try {
      return await soapCall({ ...context, policy: this.#policy }, service.controlURL, build(service.serviceType), decode)
    } catch (err) {
      if (!(err instanceof NoResponseError) || this.#rediscover === undefined) throw err
      this.#logger('%s: %s; looking for the router again', service.controlURL, err.message)
      if (this.#service === service) {
        this.#pendingRediscovery ??= this.#rediscover(context.signal).then((selection) => {
          this.#service = selection.service
          this.#policy = selection.policy
          if (selection.internalClient !== undefined) this.#internalClient = selection.internalClient
          this.#logger('the router is back at %s', selection.service.controlURL)
        }).finally(() => { this.#pendingRediscovery = undefined })
        await this.#pendingRediscovery
      }
      return await soapCall({ ...context, policy: this.#policy }, this.#service.controlURL, build(this.#service.serviceType), decode)
    }
  }
}

function checkRequest (request: MapRequest): void {
  if (request.protocol !== 'tcp' && request.protocol !== 'udp') throw new UsageError(`invalid protocol: ${JSON.stringify(request.protocol)}`)
  for (const [what, port] of [['internal port', request.internalPort], ['external port', request.suggestedExternalPort ?? 1]] as const) {
    if (!Number.isInteger(port) || port < 0 || port > 65535 || (what === 'internal port' && port === 0)) throw new UsageError(`invalid ${what}: ${String(port)}`)
  }
  if (!Number.isInteger(request.lifetimeSeconds) || request.lifetimeSeconds < 0 || request.lifetimeSeconds > 0xffffffff) {
    throw new UsageError(`invalid lifetime: ${String(request.lifetimeSeconds)} s`)
  }
}

/**
 * The external port for attempt `attempt`. First the one asked for, or the internal port. Never
 * 0, which some routers read as "every port" (tailscale PR #8993), and never below 1024 unless
 * the caller asked for that port: TP-Link refuses them (tailscale PR #7457) and miniupnpd's
 * default rules allow 1024-65535 only. Otherwise, and after a conflict, a port derived from our
 * address and the internal port: the same host gets the same ports again (after a restart, or
 * from another process), and hosts mapping the same internal port get different ones.
 */
export function candidatePort (request: Pick<MapRequest, 'protocol' | 'internalPort' | 'suggestedExternalPort'>, internalClient: string, attempt: number): number {
  const asked = request.suggestedExternalPort !== undefined && request.suggestedExternalPort !== 0 ? request.suggestedExternalPort : undefined
  const first = asked ?? request.internalPort
  if (attempt === 0 && (asked !== undefined || first >= 1024)) return first
  return 1024 + fnv1a(`${internalClient}/${request.protocol}/${request.internalPort}/${attempt}`) % (65536 - 1024)
}

function fnv1a (text: string): number {
  let hash = 0x811c9dc5
  for (let i = 0; i < text.length; i++) {
    hash ^= text.charCodeAt(i)
    hash = Math.imul(hash, 0x01000193) >>> 0
  }
  return hash
}

/**
 * A refusal of an add for a low internal port as what it is: outside the router's rules
 * (port-rules.ts). miniupnpd answers 606 on IGD v2, 728 to AddAnyPortMapping (no permitted
 * external port for that internal port: upnpsoap.c, get_permitted_ext_ports) and 718 when built
 * without IGD_V2; a 718 counts only when the port was just seen free, else it is a conflict.
 * Told at once: other external ports are refused the same way (the internal port is the cause).
 */
function lowPortRefusal (err: unknown, internalPort: number, portWasFree: boolean): GatewayRefusedError | undefined {
  const hint = lowPortHint(internalPort)
  if (hint === undefined || !(err instanceof GatewayRefusedError) || err.protocol !== 'upnp') return undefined
  if (!isRefused(err, UpnpErrorCode.ActionNotAuthorized, UpnpErrorCode.NoPortMapsAvailable) && !(portWasFree && isRefused(err, UpnpErrorCode.ConflictInMappingEntry))) return undefined
  return new GatewayRefusedError('upnp', err.resultCode, err.resultName, hint)
}

/** The request may have reached the router and been applied: no answer, a reset, an abort after sending. */
function isUncertain (err: unknown): boolean {
  return err instanceof TimeoutError || err instanceof AbortError || err instanceof ConnectionResetError
}

function isRefused (err: unknown, ...codes: number[]): boolean {
  return err instanceof GatewayRefusedError && err.protocol === 'upnp' && codes.includes(err.resultCode)
}

function sessionOf (mapping: PortMapping): UpnpSession {
  if (mapping.method !== 'upnp' || !isUpnpSession(mapping.session)) throw new UsageError('not a mapping made by a UPnP client')
  return mapping.session
}

/** "MiniUPnPd, IGD v2, WANIPConnection:2", for people. */
function describeIgd (selection: IgdSelection): string {
  const name = selection.device.friendlyName !== '' ? selection.device.friendlyName : selection.device.modelName !== '' ? selection.device.modelName : 'unnamed device'
  const service = selection.service.serviceType.split(':').slice(-2).join(':')
  return `${name}, IGD v${selection.service.igdVersion}, ${service}`
}
