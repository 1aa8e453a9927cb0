import { systemClock, type Clock, type TimerHandle } from '../clock.js'
import { UsageError } from '../errors.js'
import { discoverNAT } from '../nat/discover-nat.js'
import type { NAT, NatEvents } from '../nat/nat.js'
import { classifyAddress, notPublicReason } from '../net/address-class.js'
import { localAddressToward } from '../net/udp.js'
import { Announcer, type Announcement } from './announcer.js'
import { portKey, portsToMap, type ListenPort } from './listen-ports.js'
import type { Libp2pLogger, NatmapperNatComponents, NatmapperNatInit, NodeEventName } from './types.js'

/**
 * The js-libp2p service: finds the gateway once the node starts, maps every port the node
 * listens on towards it, and keeps the node's public addresses equal to what the router grants.
 * Every decision about the router (renewal, reboots, address changes, double NAT, cleanup) is
 * the NAT's; this class only translates between the node's addresses and the NAT's mappings.
 */

// libp2p's service symbols are registered symbols (Symbol.for in @libp2p/interface): the same
// values without importing it.
const serviceCapabilities = Symbol.for('@libp2p/service-capabilities')
const serviceDependencies = Symbol.for('@libp2p/service-dependencies')

const DEFAULTS = {
  lifetimeSeconds: 7200,
  searchTimeoutMs: 10_000,
  firstRetryMs: 10_000,
  maxRetryMs: 300_000,
  graceMs: 30_000
}

const NODE_EVENTS: NodeEventName[] = ['transport:listening', 'transport:close', 'self:peer:update']
const NAT_EVENTS = ['mapped', 'renewed', 'lost', 'unmapped', 'external-address', 'gateway-changed', 'not-public'] as const satisfies ReadonlyArray<keyof NatEvents>

export class NatmapperNat {
  readonly [Symbol.toStringTag] = 'natmapper/libp2p'
  readonly [serviceCapabilities]: string[] = ['@libp2p/nat-traversal']

  readonly #components: NatmapperNatComponents
  readonly #init: NatmapperNatInit
  readonly #log: Libp2pLogger
  readonly #natLog: Libp2pLogger
  readonly #clock: Clock
  readonly #lifetimeSeconds: number
  readonly #description: string
  readonly #gateway: string | undefined
  readonly #announcer: Announcer
  #started = false
  #stopping: AbortController | undefined
  #discovering: Promise<void> | undefined
  #retryTimer: TimerHandle | undefined
  #retryMs: number
  #nat: NAT | undefined
  /** This host's address towards the gateway: where the router forwards. */
  #internalAddress: string | undefined
  /** The ports asked of the NAT, by portKey. */
  readonly #kept = new Map<string, ListenPort>()
  #syncQueued = false
  readonly #onNodeEvent = (): void => { this.#scheduleSync() }
  /** Said once per reason, not at every sync. */
  #saidWhy: string | undefined

  constructor (components: NatmapperNatComponents, init: NatmapperNatInit = {}) {
    this.#components = components
    this.#init = init
    this.#log = components.logger.forComponent('libp2p:natmapper')
    this.#natLog = components.logger.forComponent('libp2p:natmapper:nat')
    this.#clock = init.clock ?? init.natmapper?.clock ?? systemClock
    this.#lifetimeSeconds = lifetimeOf(init.portMappingTTL)
    this.#gateway = gatewayOf(init)
    this.#description = init.portMappingDescription ??
      (components.nodeInfo === undefined ? 'natmapper/libp2p' : `${components.nodeInfo.name}@${components.nodeInfo.version} ${String(components.peerId)}`)
    this.#retryMs = init.initialGatewaySearchInterval ?? DEFAULTS.firstRetryMs
    this.#announcer = new Announcer({
      addressManager: components.addressManager,
      log: this.#log,
      clock: this.#clock,
      graceMs: init.lostMappingGraceMs ?? DEFAULTS.graceMs,
      autoConfirm: init.autoConfirmAddress === true,
      onExpired: () => { this.#scheduleSync() }
    })
  }

  /** As @libp2p/upnp-nat: unconfirmed addresses are AutoNAT's to confirm. */
  get [serviceDependencies] (): string[] {
    return this.#init.autoConfirmAddress === true ? [] : ['@libp2p/autonat']
  }

  /** The NAT keeping the mappings, once a gateway was found (natmapper's API: stats(), mappings(), events). */
  get nat (): NAT | undefined { return this.#nat }

  /** The public addresses the service has added to the address manager. */
  announced (): Announcement[] { return this.#announcer.list() }

  isStarted (): boolean { return this.#started }

  /**
   * Starts looking for the gateway and returns at once: the node's listeners open after its
   * services start, and a node with no router must start as fast as one with.
   */
  async start (): Promise<void> {
    if (this.#started) return
    this.#started = true
    this.#stopping = new AbortController()
    for (const event of NODE_EVENTS) this.#components.events.addEventListener(event, this.#onNodeEvent)
    this.#discovering = this.#discover(this.#stopping.signal)
  }

  /** Removes every address it announced and deletes every mapping it made. */
  async stop (): Promise<void> {
    if (!this.#started) return
    this.#started = false
    this.#stopping?.abort()
    if (this.#retryTimer !== undefined) this.#clock.clearTimeout(this.#retryTimer)
    this.#retryTimer = undefined
    for (const event of NODE_EVENTS) this.#components.events.removeEventListener(event, this.#onNodeEvent)
    this.#announcer.clear()
    await this.#discovering
    const nat = this.#nat
    this.#nat = undefined
    this.#internalAddress = undefined
    this.#kept.clear()
    this.#saidWhy = undefined
    this.#retryMs = this.#init.initialGatewaySearchInterval ?? DEFAULTS.firstRetryMs
    if (nat === undefined) return
    const left = await nat.close()
    for (const { mapping, error } of left) {
      this.#log.error('could not delete %s %d on the router, it stays until its lease ends: %s', mapping.protocol, mapping.internalPort, error.message)
    }
  }

  async #discover (signal: AbortSignal): Promise<void> {
    const options = this.#init.natmapper ?? {}
    try {
      const nat = await discoverNAT({
        timeout: this.#init.gatewaySearchTimeout ?? DEFAULTS.searchTimeoutMs,
        logger: this.#natLog,
        lifetimeSeconds: this.#lifetimeSeconds,
        ...options,
        ...(this.#gateway === undefined ? {} : { gateway: this.#gateway }),
        signal
      })
      if (signal.aborted) {
        await nat.close()
        return
      }
      this.#nat = nat
      // Subscribed in the turn discoverNAT resolved: what discovery knew is emitted in the next.
      for (const event of NAT_EVENTS) nat.on(event, () => { this.#onNatEvent(event) })
      nat.on('error', (err, where) => { this.#log('%s%s', where === undefined ? '' : `${where.protocol} ${where.internalPort}: `, err.message) })
      this.#internalAddress = await localAddressToward(nat.gatewayAddress)
      this.#log('gateway %s (%s); this host is %s to it', nat.gatewayAddress, nat.method, this.#internalAddress)
      this.#retryMs = this.#init.initialGatewaySearchInterval ?? DEFAULTS.firstRetryMs
      this.#sync()
    } catch (err) {
      // A NAT made before the failure (no route to its gateway) is not kept half set up.
      const made = this.#nat
      this.#nat = undefined
      await made?.close()
      if (signal.aborted) return
      // No router, or none that answers: the node works without mappings; look again later.
      const delayMs = this.#retryMs
      this.#retryMs = Math.min(delayMs * 2, this.#init.gatewaySearchInterval ?? DEFAULTS.maxRetryMs)
      this.#log('no gateway found (%s); searching again in %d s', (err as Error).message, Math.round(delayMs / 1000))
      this.#retryTimer = this.#clock.setTimeout(() => {
        this.#retryTimer = undefined
        if (!signal.aborted) this.#discovering = this.#discover(signal)
      }, delayMs)
      this.#retryTimer.unref?.()
    }
  }

  #onNatEvent (event: typeof NAT_EVENTS[number]): void {
    if (event === 'gateway-changed') {
      const nat = this.#nat
      if (nat === undefined) return
      // Another gateway may be reached from another interface.
      void localAddressToward(nat.gatewayAddress).then((address) => {
        if (this.#nat !== nat) return
        this.#log('gateway changed to %s (%s); this host is %s to it', nat.gatewayAddress, nat.method, address)
        this.#internalAddress = address
        this.#scheduleSync()
      }, (err: Error) => { this.#log.error('gateway changed, its route: %s', err.message) })
    }
    // 'not-public' is said by #sync, once per reason.
    this.#scheduleSync()
  }

  /** Several node and NAT events in one turn make one sync. */
  #scheduleSync (): void {
    if (this.#syncQueued) return
    this.#syncQueued = true
    queueMicrotask(() => {
      this.#syncQueued = false
      this.#sync()
    })
  }

  /** Maps the ports the node listens on now, releases the others, and announces what is mapped. */
  #sync (): void {
    const nat = this.#nat
    const internal = this.#internalAddress
    if (!this.#started || nat === undefined || internal === undefined) return
    const wanted = this.#wantedPorts(internal)
    for (const [key, port] of wanted) {
      if (this.#kept.has(key)) continue
      this.#kept.set(key, port)
      this.#log('mapping %s %d', port.protocol, port.port)
      nat.addMapping(port.protocol, port.port, { description: this.#description }).catch((err: Error) => {
        this.#log('%s %d: %s', port.protocol, port.port, err.message)
      })
    }
    for (const [key, port] of this.#kept) {
      if (wanted.has(key)) continue
      this.#kept.delete(key)
      this.#log('%s %d no longer listened on: deleting its mapping', port.protocol, port.port)
      nat.removeMapping(port.protocol, port.port).catch((err: Error) => { this.#log('%s %d: %s', port.protocol, port.port, err.message) })
    }
    const why = this.#whyNotPublic(nat)
    if (why !== undefined && why !== this.#saidWhy) this.#log('announcing no public address: %s', why)
    this.#saidWhy = why
    const desired = new Map<string, Announcement>()
    if (why === undefined) {
      for (const [key, port] of this.#kept) {
        const mapped = nat.getMapping(port.protocol, port.port)
        if (mapped === undefined) continue
        const externalIp = this.#init.externalAddress ?? mapped.address
        desired.set(key, { internalIp: internal, internalPort: port.port, protocol: port.protocol, externalIp, externalPort: mapped.port })
      }
    }
    this.#announcer.apply(desired, why === undefined ? new Set(this.#kept.keys()) : new Set())
  }

  #wantedPorts (internal: string): Map<string, ListenPort> {
    // A host with a public address of its own needs no mapping: it is reachable as it is.
    if (classifyAddress(internal) === 'public') return new Map()
    const transport = this.#components.addressManager.getAddressesWithMetadata()
      .filter((a) => a.type === 'transport')
      .map((a) => a.multiaddr.toString())
    return new Map(portsToMap(transport, internal).map((p) => [portKey(p.protocol, p.port), p]))
  }

  /** Why nothing should be announced: double NAT, CGNAT, or a private address given by the user. */
  #whyNotPublic (nat: NAT): string | undefined {
    const fixed = this.#init.externalAddress
    if (fixed !== undefined) return notPublicReason(fixed)
    return nat.notPublicReason
  }
}

function lifetimeOf (ttlMs: number | undefined): number {
  if (ttlMs === undefined) return DEFAULTS.lifetimeSeconds
  if (!Number.isFinite(ttlMs) || ttlMs < 1000) throw new UsageError(`portMappingTTL must be at least 1000 ms, not ${String(ttlMs)}`)
  return Math.round(ttlMs / 1000)
}

/** `gateway`, else the host of upnp-nat's first description URL. */
function gatewayOf (init: NatmapperNatInit): string | undefined {
  if (init.gateway !== undefined) return init.gateway
  const first = init.gateways?.[0]
  if (first === undefined) return undefined
  let url: URL
  try {
    url = new URL(first)
  } catch {
    throw new UsageError(`gateways: ${JSON.stringify(first)} is not a URL`)
  }
  return url.hostname.replace(/^\[(.*)\]$/, '$1')
}
