import type { RemoteInfo, Socket } from 'node:dgram'
import { EventEmitter } from 'node:events'
import { systemClock, type Clock, type TimerHandle } from '../clock.js'
import { AbortError, TimeoutError } from '../errors.js'
import { createLogger, type Logger } from '../log.js'
import { isIpv4Literal, isIpv6Literal } from '../net/address.js'
import { bindSocket, defaultCreateSocket, type CreateSocket } from '../net/udp.js'
import { DeviceType, SSDP_MULTICAST_ADDRESS, SSDP_MULTICAST_ADDRESS_V6, SSDP_MULTICAST_ADDRESS_V6_SITE, SSDP_PORT, ServiceType } from './codes.js'
import { parseSsdpMessage, type SsdpMessage, type SsdpSearchResponse } from './ssdp-codec.js'
import { encodeMSearch } from './ssdp-encode.js'

/**
 * SSDP search over UDP (UDA 1.1 §1.3): finding an IGD. The bytes are ssdp-codec.ts's; this file
 * owns the socket and the timers. NOTIFY announcements are ssdp-listener.ts's.
 */

export interface SsdpTarget {
  readonly address: string
  readonly port: number
}

/** The IGD search targets, v2 first. Each is asked for: some devices answer `ssdp:all` with their first descriptor only (tailscale#3557). */
export const IGD_SEARCH_TARGETS: readonly string[] = [
  DeviceType.InternetGatewayDevice2,
  DeviceType.InternetGatewayDevice1,
  ServiceType.WANIPConnection2,
  ServiceType.WANIPConnection1,
  ServiceType.WANPPPConnection1
]

/** One round of M-SEARCHes: each target to the gateway, then to the multicast group. */
export interface SearchBurst {
  /** When, in ms after the search started. */
  readonly atMs: number
  readonly searchTargets: readonly string[]
}

/**
 * IGD:1 alone first: every IGD answers it, v2 devices included (UDA 1.1 §1.3.2 makes them answer
 * lower versions; miniupnpc, libplum and tailscale search with it), and the description says
 * which version the device is. The rest 200 ms later if no IGD has answered by then, everything
 * again at 1 s and 3 s (UDP gets lost; Wi-Fi multicast often does). Not all at once: miniupnpd
 * queues one delayed answer per M-SEARCH and sends them one after another, so each extra search
 * in the first burst delays the first answer (measured in the lab: about 55 ms after a
 * two-packet burst, 80 ms after four), and while ten of them are queued it serves HTTP slowly
 * (the description GET after a ten-packet burst took 70-150 ms, after two to four 4-9 ms).
 */
export const DEFAULT_SEARCH_SCHEDULE: readonly SearchBurst[] = [
  { atMs: 0, searchTargets: [DeviceType.InternetGatewayDevice1] },
  { atMs: 200, searchTargets: IGD_SEARCH_TARGETS.filter((st) => st !== DeviceType.InternetGatewayDevice1) },
  { atMs: 1000, searchTargets: IGD_SEARCH_TARGETS },
  { atMs: 3000, searchTargets: IGD_SEARCH_TARGETS }
]

/** UDA 1.1 §1.1.2 (quoted by miniupnpc): "The TTL for the IP packet SHOULD default to 2". */
const MULTICAST_TTL = 2

/**
 * Distinct answers (new LOCATION and USN) one search reports from one host: a router announces a
 * root device, an IGD and a few services, at one or two LOCATIONs. More is a flood, and each
 * answer costs a description fetch.
 */
export const MAX_ANSWERS_PER_HOST = 8
/**
 * Distinct answers one search reports from all hosts other than the gateway together; the
 * gateway's own always get their MAX_ANSWERS_PER_HOST, so a flood from the LAN (even with spoofed
 * sources) cannot crowd the real router out.
 */
export const MAX_ANSWERS = 32
/** Warnings (dropped datagrams) one search reports; then one summary, so a flood is not a log flood. */
const MAX_WARNINGS = 20

export interface SsdpSearchOptions {
  /** Unicast M-SEARCH to the gateway first, for routers that answer it (and to open stateful host firewalls for the reply: tailscale). */
  gateway?: string | undefined
  /** The gateway's SSDP port for the unicast search. Default 1900. */
  gatewayPort?: number | undefined
  /**
   * Where the multicast search goes: default 239.255.255.250:1900, [ff02::c]:1900 for an IPv6
   * gateway (link-local scope, out of the gateway's zone's interface); `false` for none. When the
   * gateway is a loopback address (a simulated gateway) and no target is given, there is no
   * multicast search: nothing on the LAN could be that gateway.
   */
  multicast?: SsdpTarget | false | undefined
  /** The LAN address to send multicast from (IP_MULTICAST_IF; for IPv6 '::%eth0'); default: the gateway's zone for IPv6, else the routing table's choice. */
  multicastInterface?: string | undefined
  /** Local address to bind; default all addresses. The port is always ephemeral: 1900 may belong to the OS's own SSDP service. */
  bindAddress?: string | undefined
  /**
   * What to search for, and when. Default DEFAULT_SEARCH_SCHEDULE. Bursts after the first are
   * skipped once an IGD has answered.
   */
  schedule?: readonly SearchBurst[] | undefined
  /** MX seconds; 1 bounds the answer delay of miniupnpd's --strict builds to a second (quirks §4.4). */
  mx?: number | undefined
  /** Which sources to believe; others are dropped with a `warning`. Default: all. */
  acceptFrom?: ((address: string) => boolean) | undefined
  /** Why acceptFrom refuses, for the warning. Default: not the gateway nor a host of its subnet. */
  refusedWhy?: string | undefined
  /** Distinct answers per host; default MAX_ANSWERS_PER_HOST. */
  maxAnswersPerHost?: number | undefined
  /** Distinct answers from hosts other than the gateway together; default MAX_ANSWERS. */
  maxAnswers?: number | undefined
  clock?: Clock | undefined
  createSocket?: CreateSocket | undefined
  logger?: Logger | undefined
}

/** One search response, the first for its LOCATION and its USN. */
export interface SsdpAnswer {
  readonly response: SsdpSearchResponse
  readonly from: SsdpTarget
  /** When it arrived, on the search's clock, in ms since the search started. */
  readonly elapsedMs: number
}

export interface SsdpSearchEvents {
  answer: [SsdpAnswer]
  /** A datagram that was dropped: undecodable, not a search response, or from a host not accepted. */
  warning: [Error]
}

/**
 * A running search from one ephemeral UDP socket: unicast to the gateway, then multicast, for
 * each search target, in the bursts of the schedule. Emits one `answer` per new LOCATION (and USN:
 * the same device and type announced at a second address is the same device), whatever
 * the reply's source port (TP-Link ER605, Sagemcom and Orange boxes answer from an ephemeral
 * port: tailscale#7377, #10771, #14344). Runs until close().
 */
export class SsdpSearch extends EventEmitter<SsdpSearchEvents> {
  /** Datagrams received, accepted or not. */
  received = 0
  /** Datagrams dropped because acceptFrom refused their source. */
  refused = 0
  /** New answers dropped because their host, or all hosts together, had reached the cap. */
  overCap = 0
  /** Every answer reported so far (bounded by the caps), for a reader that comes late. */
  readonly answers: SsdpAnswer[] = []
  readonly #socket: Socket
  readonly #clock: Clock
  readonly #logger: Logger
  readonly #startMs: number
  readonly #seen = new Set<string>()
  readonly #acceptFrom: (address: string) => boolean
  readonly #refusedWhy: string
  readonly #timers: TimerHandle[] = []
  readonly #gateway: string | undefined
  readonly #maxPerHost: number
  readonly #maxAnswers: number
  /** Answers reported per host, and from hosts other than the gateway in all. */
  readonly #perHost = new Map<string, number>()
  #fromOthers = 0
  #warnings = 0
  #heardIgd = false
  #closed = false

  private constructor (socket: Socket, options: SsdpSearchOptions, targets: SsdpTarget[]) {
    super()
    this.#socket = socket
    this.#clock = options.clock ?? systemClock
    this.#logger = options.logger ?? createLogger('ssdp')
    this.#acceptFrom = options.acceptFrom ?? (() => true)
    this.#refusedWhy = options.refusedWhy ?? 'not the gateway nor a host of its subnet'
    this.#gateway = options.gateway
    this.#maxPerHost = options.maxAnswersPerHost ?? MAX_ANSWERS_PER_HOST
    this.#maxAnswers = options.maxAnswers ?? MAX_ANSWERS
    this.#startMs = this.#clock.now()
    socket.on('message', (message, rinfo) => { this.#onMessage(message, rinfo) })
    socket.on('error', (err) => { this.#warn(err) })
    const mx = options.mx ?? 1
    const host = ssdpHostFor(targets)
    const burst = (searchTargets: readonly string[]): void => {
      this.#logger('M-SEARCH %s to %s', searchTargets.join(', '), targets.map((t) => `${t.address}:${t.port}`).join(', '))
      for (const target of targets) {
        for (const st of searchTargets) {
          socket.send(encodeMSearch({ searchTarget: st, mx, host }), target.port, target.address, (err) => {
            if (err !== null && err !== undefined && !this.#closed) this.#warn(new Error(`M-SEARCH to ${target.address}:${target.port} failed: ${err.message}`))
          })
        }
      }
    }
    for (const { atMs, searchTargets } of options.schedule ?? DEFAULT_SEARCH_SCHEDULE) {
      if (atMs <= 0) {
        burst(searchTargets)
        continue
      }
      const timer = this.#clock.setTimeout(() => { if (!this.#closed && !this.#heardIgd) burst(searchTargets) }, atMs)
      timer.unref?.()
      this.#timers.push(timer)
    }
  }

  /** Binds the socket and sends the first burst. */
  static async start (options: SsdpSearchOptions = {}): Promise<SsdpSearch> {
    const targets = searchDestinations(options)
    // Bad input fails here, before a socket exists.
    for (const { searchTargets } of options.schedule ?? DEFAULT_SEARCH_SCHEDULE) for (const st of searchTargets) encodeMSearch({ searchTarget: st, mx: options.mx ?? 1 })
    const family = targets.some((t) => isIpv6Literal(t.address)) ? 'udp6' : 'udp4'
    const socket = (options.createSocket ?? defaultCreateSocket)(family)
    await bind(socket, options.bindAddress, 0)
    try {
      if (targets.some((t) => isMulticast(t.address))) {
        socket.setMulticastTTL(MULTICAST_TTL)
        const zone = options.gateway?.includes('%') === true ? options.gateway.slice(options.gateway.indexOf('%') + 1) : undefined
        const multicastInterface = options.multicastInterface ?? (family === 'udp6' && zone !== undefined ? `::%${zone}` : undefined)
        if (multicastInterface !== undefined) socket.setMulticastInterface(multicastInterface)
      }
    } catch (err) {
      socket.close()
      throw err
    }
    return new SsdpSearch(socket, options, targets)
  }

  /** The local port the search was sent from. */
  get port (): number { return this.#socket.address().port }

  close (): void {
    if (this.#closed) return
    this.#closed = true
    for (const timer of this.#timers) this.#clock.clearTimeout(timer)
    this.#socket.close()
  }

  #onMessage (message: Buffer, rinfo: RemoteInfo): void {
    if (this.#closed) return
    this.received++
    const from = { address: rinfo.address, port: rinfo.port }
    if (!this.#acceptFrom(rinfo.address)) this.refused++
    const parsed = readSsdpDatagram(message, rinfo, this.#acceptFrom, this.#refusedWhy)
    if (parsed instanceof Error) {
      this.#warn(parsed)
      return
    }
    if (parsed.kind !== 'search-response') return
    if (isIgdAnswer(parsed)) this.#heardIgd = true
    // A USN is a duplicate only from the same host: another host repeating the gateway's USN
    // (a spoofer, or a second router built from the same image) must not hide the gateway's answer.
    const usnKey = parsed.usn === undefined ? undefined : `usn ${rinfo.address} ${parsed.usn}`
    if (this.#seen.has(parsed.location) || (usnKey !== undefined && this.#seen.has(usnKey))) return
    // Bounded work: each answer reported is a description fetch, and what is remembered to
    // drop duplicates grows with them. Past the caps new answers are counted and dropped.
    const fromGateway = this.#gateway !== undefined && rinfo.address === this.#gateway
    const fromHost = this.#perHost.get(rinfo.address) ?? 0
    if (fromHost >= this.#maxPerHost || (!fromGateway && this.#fromOthers >= this.#maxAnswers)) {
      if (this.overCap++ === 0) this.#warn(new Error(`SSDP answers from ${rinfo.address}:${rinfo.port} past ${fromHost >= this.#maxPerHost ? `${this.#maxPerHost} from one host` : `${this.#maxAnswers} from the LAN`}: dropping the rest of this kind`))
      return
    }
    this.#perHost.set(rinfo.address, fromHost + 1)
    if (!fromGateway) this.#fromOthers++
    this.#seen.add(parsed.location)
    if (usnKey !== undefined) this.#seen.add(usnKey)
    const elapsedMs = this.#clock.now() - this.#startMs
    this.#logger('answer from %s:%d after %d ms: %s (ST %s, SERVER %s)', from.address, from.port, Math.round(elapsedMs), parsed.location, parsed.st, parsed.server)
    const answer = { response: parsed, from, elapsedMs }
    this.answers.push(answer)
    this.emit('answer', answer)
  }

  #warn (err: Error): void {
    const n = ++this.#warnings
    if (n > MAX_WARNINGS + 1) return
    const warning = n <= MAX_WARNINGS ? err : new Error(`more than ${MAX_WARNINGS} SSDP datagrams dropped in this search; not reporting the rest`)
    this.#logger('%s', warning.message)
    if (this.listenerCount('warning') > 0) this.emit('warning', warning)
  }
}

function searchDestinations (options: SsdpSearchOptions): SsdpTarget[] {
  const targets: SsdpTarget[] = []
  if (options.gateway !== undefined) targets.push({ address: options.gateway, port: options.gatewayPort ?? SSDP_PORT })
  let multicast = options.multicast
  if (multicast === undefined) {
    const v6 = options.gateway !== undefined && isIpv6Literal(options.gateway)
    multicast = options.gateway !== undefined && isLoopback(options.gateway) ? false : { address: v6 ? SSDP_MULTICAST_ADDRESS_V6 : SSDP_MULTICAST_ADDRESS, port: SSDP_PORT }
  }
  if (multicast !== false) targets.push(multicast)
  return targets
}

/**
 * The HOST header: the SSDP group of the search's family (UDA 1.1 §1.3.2: [FF02::C]:1900 or
 * [FF05::C]:1900 over IPv6), whether the packet goes to the group or unicast to the gateway.
 */
export function ssdpHostFor (targets: readonly SsdpTarget[]): string | undefined {
  if (!targets.some((t) => isIpv6Literal(t.address))) return undefined
  const site = targets.some((t) => t.address.toLowerCase() === SSDP_MULTICAST_ADDRESS_V6_SITE)
  return `[${(site ? SSDP_MULTICAST_ADDRESS_V6_SITE : SSDP_MULTICAST_ADDRESS_V6).toUpperCase()}]:${SSDP_PORT}`
}

/**
 * True when an answer says it is an IGD or one of its WAN services (any version, dslforum
 * included). A WFA or media device that answers too (some do, whatever was asked) is skipped.
 */
export function isIgdAnswer (response: SsdpSearchResponse): boolean {
  const text = `${response.st ?? ''} ${response.usn ?? ''}`
  return /:(InternetGatewayDevice|WANDevice|WANConnectionDevice|WANIPConnection|WANPPPConnection):/.test(text)
}

export interface FindIgdOptions extends SsdpSearchOptions {
  signal?: AbortSignal | undefined
  timeoutMs: number
}

/**
 * The first IGD answer, as soon as it arrives: no collection window. Rejects with TimeoutError
 * when nobody answered within `timeoutMs`, or AbortError.
 */
export async function findIgd (options: FindIgdOptions): Promise<SsdpAnswer> {
  const { signal } = options
  if (signal?.aborted === true) throw new AbortError(signal.reason)
  const search = await SsdpSearch.start(options)
  const clock = options.clock ?? systemClock
  try {
    return await new Promise<SsdpAnswer>((resolve, reject) => {
      const finish = (err: Error | undefined, answer?: SsdpAnswer): void => {
        clock.clearTimeout(timer)
        signal?.removeEventListener('abort', onAbort)
        if (err !== undefined) reject(err)
        else resolve(answer!)
      }
      const timer = clock.setTimeout(() => {
        finish(new TimeoutError(`no UPnP IGD answered SSDP within ${options.timeoutMs} ms (${search.received} datagram${search.received === 1 ? '' : 's'} received)`))
      }, options.timeoutMs)
      const onAbort = (): void => { finish(new AbortError(signal?.reason)) }
      signal?.addEventListener('abort', onAbort, { once: true })
      if (signal?.aborted === true) onAbort()
      search.on('answer', (answer) => {
        if (isIgdAnswer(answer.response)) finish(undefined, answer)
      })
    })
  } finally {
    search.close()
  }
}

/** Binds a UDP socket (udp.ts's, under the name the SSDP files use). */
export const bind = bindSocket

export function isMulticast (address: string): boolean {
  if (isIpv4Literal(address)) {
    const first = Number(address.split('.')[0])
    return first >= 224 && first <= 239
  }
  return isIpv6Literal(address) && address.toLowerCase().startsWith('ff')
}

function isLoopback (address: string): boolean {
  return (isIpv4Literal(address) && address.startsWith('127.')) || address === '::1'
}

/**
 * One received SSDP datagram, decoded if its source is accepted; otherwise the Error to report
 * as a warning (a refused source, or bytes that are no SSDP message). Shared by the search and
 * the NOTIFY listener.
 */
export function readSsdpDatagram (message: Buffer, rinfo: RemoteInfo, acceptFrom: (address: string) => boolean, notAcceptedWhy: string): SsdpMessage | Error {
  if (!acceptFrom(rinfo.address)) return new Error(`ignoring SSDP datagram from ${rinfo.address}:${rinfo.port}: ${notAcceptedWhy}`)
  try {
    return parseSsdpMessage(new Uint8Array(message.buffer, message.byteOffset, message.byteLength))
  } catch (err) {
    return new Error(`ignoring undecodable SSDP datagram from ${rinfo.address}:${rinfo.port}: ${(err as Error).message}`, { cause: err })
  }
}
