import type { Server } from 'node:http'
import type { AddressInfo, Server as NetServer } from 'node:net'
import { systemClock, type Clock } from '../clock.js'
import type { SsdpTarget } from '../upnp/ssdp.js'
import { igdTypes, WAN_CONNECTION_UDN, type IgdTypes } from './igd-description.js'
import { serveIgd, startServer, stopServer, type IgdHttpHost } from './igd-http.js'
import { bindSsdpSockets, IgdSsdp, type SsdpSockets } from './igd-ssdp.js'
import { startMinissdpd } from './igd-minissdpd.js'
import { defaultIgdQuirks, type IgdQuirks, type IgdRequest, type IgdState, type SimulatedIgdMapping } from './igd-types.js'

export type { IgdQuirks, IgdRequest, SimulatedIgdMapping } from './igd-types.js'

/**
 * A UPnP IGD (v1 or v2) on loopback: an SSDP responder, an HTTP server with the device
 * description and its SCPD documents, and SOAP control of WANIPConnection,
 * WANCommonInterfaceConfig and Layer3Forwarding over its own mapping table. It answers as
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
  /** Address of every socket. Default 127.0.0.1. */
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
  #mappings = new Map<string, SimulatedIgdMapping>()
  #closed = false
  #bootedAtMs: number
  #minissdpd: NetServer | undefined

  private constructor (sockets: SsdpSockets, server: Server, options: SimulatedIgdOptions) {
    this.#server = server
    this.#clock = options.clock ?? systemClock
    this.#httpAddress = options.httpAddress ?? options.address ?? '127.0.0.1'
    this.igdVersion = options.igdVersion ?? 2
    this.#types = igdTypes(this.igdVersion)
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
  }

  static async start (options: SimulatedIgdOptions = {}): Promise<SimulatedIgd> {
    const address = options.address ?? '127.0.0.1'
    const sockets = await bindSsdpSockets(address, options.ssdpPort ?? 0)
    let server
    try {
      server = await startServer(options.httpAddress ?? address, options.httpPort ?? 0)
    } catch (err) {
      for (const s of sockets) try { s.close() } catch {}
      throw err
    }
    const igd = new SimulatedIgd(sockets, server, options)
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
  get descriptionUrl (): string { return `http://${this.#httpAddress}:${this.httpPort}/rootDesc.xml` }
  get serviceType (): string { return this.#types.service }

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
    this.bootId++
    this.#bootedAtMs = this.#clock.now()
    this.#server = await startServer(this.#httpAddress, port)
    serveIgd(this.#server, this.#http)
    this.announce()
  }

  /** Sends ssdp:alive for the root device, the IGD and its WAN service to `notifyTargets`. */
  announce (): void {
    this.#ssdp.notify('ssdp:alive')
  }

  async close (): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    await Promise.all([stopServer(this.#server), this.#ssdp.close(), ...(this.#minissdpd === undefined ? [] : [new Promise((resolve) => this.#minissdpd!.close(resolve))])])
  }

  #location (): string {
    return `http://${this.quirks.locationHost ?? this.#httpAddress}:${this.httpPort}/rootDesc.xml`
  }

  /** The table as the actions see it: expired entries purged. */
  #table (): IgdState {
    this.#purge()
    const nowMs = this.#clock.now()
    return {
      igdVersion: this.igdVersion, externalAddress: this.externalAddress, quirks: this.quirks, mappings: this.#mappings, nowMs,
      uptimeSeconds: Math.floor((nowMs - this.#bootedAtMs) / 1000), wanConnectionUdn: WAN_CONNECTION_UDN
    }
  }

  #purge (): void {
    const now = this.#clock.now()
    for (const [key, m] of this.#mappings) if (m.expiresAtMs <= now) this.#mappings.delete(key)
  }
}
