import type { Server } from 'node:http'
import type { AddressInfo, Server as NetServer } from 'node:net'
import { systemClock, type Clock } from '../clock.js'
import type { SsdpTarget } from '../upnp/ssdp.js'
import { FIREWALL_CONTROL_PATH, igdTypes, WAN_CONNECTION_UDN, type IgdTypes } from './igd-description.js'
import { serveIgd, startServer, stopServer, type IgdHttpHost } from './igd-http.js'
import { bindSsdpSockets, IgdSsdp, type SsdpSockets } from './igd-ssdp.js'
import { startMinissdpd } from './igd-minissdpd.js'
import { takeUniqueId } from './igd-pinhole-actions.js'
import { defaultIgdQuirks, type IgdQuirks, type IgdRequest, type IgdState, type PinholeTable, type SimulatedIgdMapping, type SimulatedIgdPinhole } from './igd-types.js'

export type { IgdQuirks, IgdRequest, SimulatedIgdMapping, SimulatedIgdPinhole } from './igd-types.js'

/**
 * A UPnP IGD (v1 or v2) on loopback: an SSDP responder, an HTTP server with the device
 * description and its SCPD documents, and SOAP control of WANIPConnection,
 * WANCommonInterfaceConfig and Layer3Forwarding over its own mapping table, and on v2
 * WANIPv6FirewallControl:1 over its pinholes (reach it over IPv6 with `ipv6Address`). It answers as
 * miniupnpd 2.3.1 does (test/lab/differential.test.ts compares them; docs/testing.md lists what
 * differs on purpose) and counts every request, so a test can assert what a client achieved
 * and what it cost the router. `quirks` switches on the router behaviours of
 * shared/reference/router-quirks-and-anchors.md §3 that concern UPnP.
 *
 * SSDP has two sockets, both on the IGD's address with ephemeral ports unless `ssdpPort` fixes
 * the first: `ssdpUnicastTarget` stands for gateway:1900, `ssdpMulticastTarget` for the group
 * 239.255.255.250:1900 (nothing is multicast). Point a client's gateway SSDP port at the first
 * and its multicast target at the second; a client of its own takes `descriptionUrl`, or the
 * `minissdpdSocket`.
 */

export interface SimulatedIgdOptions {
  /** Address of every socket. Default 127.0.0.1; an IPv6 one (::1) makes SSDP and HTTP IPv6 (then pinholeControlUrl is on it). */
  address?: string
  /** Address of the HTTP server, when it should differ (a responder that is not the gateway). */
  httpAddress?: string
  /**
   * The HTTP server's port. Default 0 (any free port); a fixed one lets a client that was given
   * the description URL once (`upnpc -u`, a saved config) find the IGD again after `restart()`.
   */
  httpPort?: number
  /**
   * Port of the SSDP unicast socket. Default 0; 1900 makes the IGD answer a real client's unicast
   * M-SEARCH to this address, as a gateway does at gateway:1900 (needs an address of its own,
   * such as 127.0.0.2, where nothing else holds 1900).
   */
  ssdpPort?: number
  /**
   * A path for a minissdpd-compatible unix socket (igd-minissdpd.ts), through which miniupnpc's
   * clients (`upnpc -p <path>`) discover the IGD with no multicast. Default: none.
   */
  minissdpdSocket?: string
  /**
   * An IPv6 address (::1, or one of a test namespace) where a second HTTP server serves the same
   * description and control URLs, as miniupnpd does with ipv6_listening_ip: a PinholeClient
   * sends AddPinhole there from the address it opens. Its port is its own (ipv6HttpPort). Default: none.
   */
  ipv6Address?: string
  /** Whether an IGD v2 also serves WANIPv6FirewallControl:1 (as the Debian miniupnpd 2.3.1 does). Default true on v2; v1 never. */
  ipv6Firewall?: boolean
  /** The description served: InternetGatewayDevice:1 with WANIPConnection:1, or :2 with :2. Default 2. */
  igdVersion?: 1 | 2
  /**
   * The WAN address reported. Default 11.0.0.1, the public-looking address the lab's router has
   * and SimulatedPmpGateway's default (a real router behind a reserved one is the double-NAT
   * case: set it). '' or '0.0.0.0' for a router without one.
   */
  externalAddress?: string
  /** BOOTID.UPNP.ORG of the first boot. Default 1. */
  bootId?: number
  /** SSDP answer delay on the IGD's clock; miniupnpd waits about 50 ms. Default 0. */
  ssdpDelayMs?: number
  /** Where NOTIFY announcements go (tests point an SsdpListener here). */
  notifyTargets?: SsdpTarget[]
  clock?: Clock
}

/** An address as a URL's host: IPv6 in brackets. */
const urlHost = (address: string): string => address.includes(':') ? `[${address}]` : address

/** Each simulated device has its own UUID, as two real devices do: SSDP clients tell answers apart by it. */
let devices = 0
const nextUuid = (): string => `2f402f80-da50-11e1-9b23-${(0x0019000bf1ab + devices++).toString(16).padStart(12, '0')}`

export class SimulatedIgd {
  readonly quirks: IgdQuirks = defaultIgdQuirks()

  /** Every request, in order. */
  readonly requests: IgdRequest[] = []
  /** The most HTTP requests that were being handled at once (with httpDelayMs, it shows what a client sends together). */
  maxConcurrentHttp = 0
  #httpInFlight = 0
  externalAddress: string
  notifyTargets: SsdpTarget[]
  readonly igdVersion: 1 | 2
  bootId: number

  readonly #ssdp: IgdSsdp
  readonly #http: IgdHttpHost
  readonly #clock: Clock
  readonly #httpAddress: string
  readonly #types: IgdTypes
  /** The device UUID in its SSDP USNs; each simulated device has its own. */
  readonly uuid = nextUuid()
  #server: Server
  #server6: Server | undefined
  readonly #ipv6Address: string | undefined
  readonly #pinholes: PinholeTable = { entries: new Map(), nextUid: 1 }
  #mappings = new Map<string, SimulatedIgdMapping>()
  #closed = false
  #bootedAtMs: number
  #minissdpd: NetServer | undefined

  private constructor (sockets: SsdpSockets, server: Server, server6: Server | undefined, options: SimulatedIgdOptions) {
    this.#server = server
    this.#server6 = server6
    this.#ipv6Address = options.ipv6Address
    this.#clock = options.clock ?? systemClock
    this.#httpAddress = options.httpAddress ?? options.address ?? '127.0.0.1'
    this.igdVersion = options.igdVersion ?? 2
    this.#types = igdTypes(this.igdVersion, this.igdVersion === 2 && options.ipv6Firewall !== false)
    this.externalAddress = options.externalAddress ?? '11.0.0.1'
    this.notifyTargets = options.notifyTargets ?? []
    this.bootId = options.bootId ?? 1
    this.#bootedAtMs = this.#clock.now()
    this.#ssdp = new IgdSsdp(sockets, {
      quirks: this.quirks,
      types: this.#types,
      uuid: this.uuid,
      clock: this.#clock,
      delayMs: options.ssdpDelayMs ?? 0,
      requests: this.requests,
      location: () => this.#location(),
      bootId: () => this.bootId,
      notifyTargets: () => this.notifyTargets
    })
    this.#http = {
      quirks: this.quirks,
      types: this.#types,
      igdVersion: this.igdVersion,
      clock: this.#clock,
      requests: this.requests,
      httpPort: () => this.httpPort,
      table: () => this.#table(),
      started: () => { this.maxConcurrentHttp = Math.max(this.maxConcurrentHttp, ++this.#httpInFlight) },
      ended: () => { this.#httpInFlight-- }
    }
    serveIgd(server, this.#http)
    if (server6 !== undefined) serveIgd(server6, this.#http)
  }

  static async start (options: SimulatedIgdOptions = {}): Promise<SimulatedIgd> {
    const address = options.address ?? '127.0.0.1'
    const sockets = await bindSsdpSockets(address, options.ssdpPort ?? 0)
    let server: Server | undefined
    let server6: Server | undefined
    try {
      server = await startServer(options.httpAddress ?? address, options.httpPort ?? 0)
      if (options.ipv6Address !== undefined) server6 = await startServer(options.ipv6Address, 0)
    } catch (err) {
      for (const s of sockets) try { s.close() } catch {}
      if (server !== undefined) await stopServer(server)
      throw err
    }
    const igd = new SimulatedIgd(sockets, server, server6, options)
    if (options.minissdpdSocket !== undefined) {
      try {
        igd.#minissdpd = await startMinissdpd(options.minissdpdSocket, { types: igd.#types, uuid: igd.uuid, location: () => igd.#location() })
      } catch (err) {
        await igd.close()
        throw err
      }
    }
    return igd
  }

  /** Stands for gateway:1900. */
  get ssdpUnicastTarget (): SsdpTarget { return this.#ssdp.unicastTarget }
  /** Stands for 239.255.255.250:1900. */
  get ssdpMulticastTarget (): SsdpTarget { return this.#ssdp.multicastTarget }
  /** The address the IGD's SSDP sockets are on: the "gateway". */
  get address (): string { return this.#ssdp.unicastTarget.address }
  get httpPort (): number { return (this.#server.address() as AddressInfo).port }
  get descriptionUrl (): string { return `http://${urlHost(this.#httpAddress)}:${this.httpPort}/rootDesc.xml` }
  get serviceType (): string { return this.#types.service }
  /** The IPv6 HTTP server's port (ipv6Address), or undefined. */
  get ipv6HttpPort (): number | undefined { return this.#server6 === undefined ? undefined : (this.#server6.address() as AddressInfo).port }
  /** The description at the IPv6 address: http://[::1]:port/rootDesc.xml, or undefined without ipv6Address. */
  get ipv6DescriptionUrl (): string | undefined { return this.#url6('/rootDesc.xml') }
  /** WANIPv6FirewallControl's control URL at the IPv6 address (PinholeClient's controlURL), or undefined without ipv6Address or the service. */
  get pinholeControlUrl (): string | undefined { return this.#types.firewall ? this.#url6(FIREWALL_CONTROL_PATH) : undefined }

  /** Live pinholes, expired ones purged first, by UniqueID: copies, so a test cannot change the router's by accident. */
  pinholes (): SimulatedIgdPinhole[] {
    this.#purge()
    return [...this.#pinholes.entries.values()].sort((a, b) => a.uniqueId - b.uniqueId).map((p) => ({ ...p }))
  }

  /** The router forgets its pinholes without rebooting (UniqueIDs go on counting): a client's next UpdatePinhole gets 704. */
  dropPinholes (): void {
    this.#pinholes.entries.clear()
  }

  /** Another host's pinhole (its requests would come from `internalClient`): its UniqueID, for 606 when we touch it. */
  occupyPinhole (internalClient: string, internalPort: number, protocol: 'tcp' | 'udp' = 'tcp', leaseSeconds = 3600): number {
    const uniqueId = takeUniqueId(this.#pinholes)
    this.#pinholes.entries.set(uniqueId, {
      uniqueId, remoteHost: '', remotePort: 0, internalClient, internalPort, protocol: protocol === 'udp' ? 17 : 6, leaseSeconds, expiresAtMs: this.#clock.now() + leaseSeconds * 1000, packets: 0
    })
    return uniqueId
  }

  /** Counts `packets` as having passed pinhole `uniqueId` (CheckPinholeWorking then says working); false if there is none. */
  pinholeTraffic (uniqueId: number, packets = 1): boolean {
    const pinhole = this.#pinholes.entries.get(uniqueId)
    if (pinhole === undefined) return false
    pinhole.packets += packets
    return true
  }

  /** HTTP requests received and not yet answered (with httpDelayMs: what a client has in flight). */
  get httpInFlight (): number { return this.#httpInFlight }

  /** Live mappings, expired ones purged first, oldest first (GetGenericPortMappingEntry lists them newest first, as miniupnpd does): copies, so a test cannot change the table by accident. */
  mappings (): SimulatedIgdMapping[] {
    this.#purge()
    return [...this.#mappings.values()].map((m) => ({ ...m }))
  }

  /** Requests of one kind: SSDP searches (optionally per socket) or SOAP actions (optionally one action). */
  count (kind: 'ssdp' | 'http', what?: string): number {
    return this.requests.filter((r) => r.kind === kind && (what === undefined || r.what === what || r.via === what)).length
  }

  /** The router forgets its mappings without rebooting: ASUS purges its table every 600 s (tailscale#10597, quirk 26). */
  dropMappings (): void {
    this.#mappings.clear()
  }

  /**
   * Another host holds this external port (for conflicts); or, with our own address as
   * `internalClient`, another program of our host does, forwarding to `entry.internalPort`.
   */
  occupy (externalPort: number, protocol: 'TCP' | 'UDP', internalClient = '192.0.2.99',
    entry: { internalPort?: number, description?: string } = {}): void {
    this.#mappings.set(`${protocol}/${externalPort}`, {
      externalPort, protocol, internalClient, internalPort: entry.internalPort ?? externalPort, description: entry.description ?? 'another host', leaseSeconds: 0, expiresAtMs: Infinity, enabled: true
    })
  }

  /**
   * A reboot: ssdp:byebye, the mapping table lost, a new BOOTID, the HTTP server back on a new
   * port (unless `sameHttpPort`), then ssdp:alive with the new LOCATION: what miniupnpd does (LAB.md).
   */
  async restart (options: { sameHttpPort?: boolean } = {}): Promise<void> {
    this.#ssdp.notify('ssdp:byebye')
    const port = options.sameHttpPort === true ? this.httpPort : 0
    await stopServer(this.#server)
    this.#mappings.clear()
    this.#pinholes.entries.clear()
    this.#pinholes.nextUid = 1
    this.bootId++
    this.#bootedAtMs = this.#clock.now()
    this.#server = await startServer(this.#httpAddress, port)
    serveIgd(this.#server, this.#http)
    if (this.#server6 !== undefined) {
      const port6 = options.sameHttpPort === true ? this.ipv6HttpPort! : 0
      await stopServer(this.#server6)
      this.#server6 = await startServer(this.#ipv6Address!, port6)
      serveIgd(this.#server6, this.#http)
    }
    this.announce()
  }

  /** Sends ssdp:alive for the root device, the IGD and its WAN service to `notifyTargets`. */
  announce (): void {
    this.#ssdp.notify('ssdp:alive')
  }

  async close (): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    await Promise.all([stopServer(this.#server), ...(this.#server6 === undefined ? [] : [stopServer(this.#server6)]), this.#ssdp.close(), ...(this.#minissdpd === undefined ? [] : [new Promise((resolve) => this.#minissdpd!.close(resolve))])])
  }

  #url6 (path: string): string | undefined {
    if (this.#server6 !== undefined) return `http://[${this.#ipv6Address!}]:${this.ipv6HttpPort!}${path}`
    // An IGD whose own address is IPv6 (address: '::1') serves it there.
    return this.#httpAddress.includes(':') ? `http://[${this.#httpAddress}]:${this.httpPort}${path}` : undefined
  }

  #location (): string {
    return `http://${urlHost(this.quirks.locationHost ?? this.#httpAddress)}:${this.httpPort}/rootDesc.xml`
  }

  /** The table as the actions see it: expired entries purged. */
  #table (): IgdState {
    this.#purge()
    const nowMs = this.#clock.now()
    return {
      igdVersion: this.igdVersion, externalAddress: this.externalAddress, quirks: this.quirks, mappings: this.#mappings, nowMs,
      uptimeSeconds: Math.floor((nowMs - this.#bootedAtMs) / 1000), wanConnectionUdn: WAN_CONNECTION_UDN,
      pinholes: this.#types.firewall ? this.#pinholes : undefined
    }
  }

  #purge (): void {
    const now = this.#clock.now()
    for (const [key, m] of this.#mappings) if (m.expiresAtMs <= now) this.#mappings.delete(key)
    // miniupnpd's clean_pinhole_list removes expired pinholes: their UniqueIDs then answer 704.
    for (const [id, p] of this.#pinholes.entries) if (p.expiresAtMs <= now) this.#pinholes.entries.delete(id)
  }
}
