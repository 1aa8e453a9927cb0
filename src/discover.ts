import { announcementsFrom } from './announcement-sources.js'
import { systemClock, type Clock, type TimerHandle } from './clock.js'
import { AbortError, GatewayRefusedError, NatmapperError, TimeoutError, UsageError } from './errors.js'
import type { Gateway, MappingMethod } from './gateway.js'
import { createLogger, type Logger } from './log.js'
import { NAT, type AnnouncementSource, type NatOptions } from './nat.js'
import { ipFamily } from './net/address.js'
import { notPublicReasonOf } from './net/address-class.js'
import { findDefaultGateway } from './net/default-gateway.js'
import type { CreateSocket } from './net/udp.js'
import { NatPmpClient } from './natpmp/client.js'
import { PcpClient } from './pcp/client.js'
import { HEAD_START_MS, natpmpAfterPcp, pcpFirst, pickBest, upnpAfterOthers } from './probe-order.js'
import type { UpnpClient } from './upnp/client.js'
import { startIgdSearch } from './upnp/search.js'
import type { SsdpTarget } from './upnp/ssdp.js'

/**
 * Finding the gateway and the best protocol it speaks. Every protocol is probed at once, and the
 * answer is taken as soon as the best one that can still answer has answered: PCP, then
 * NAT-PMP, then UPnP. Nothing waits out a fixed window.
 */

export interface DiscoverOptions {
  signal?: AbortSignal
  /** Upper bound for the whole discovery, in milliseconds. Default 10 000. */
  timeout?: number
  /** The gateway's address; found from the default route when absent. */
  gateway?: string
  /** Protocols to try, default all; the order of preference is always PCP, NAT-PMP, UPnP. */
  methods?: MappingMethod[]
  /** Port of the gateway's NAT-PMP/PCP server; 5351 except against a simulated gateway. */
  port?: number
  /**
   * Wait for every probe to finish (within the timeout) instead of returning at the best
   * answer, so that the report says what each protocol did (natmapper discover, doctor).
   */
  waitForAll?: boolean
  /**
   * Where to listen for gateway announcements (PCP ANNOUNCE, NAT-PMP address changes); default
   * 0.0.0.0:5350 joined to 224.0.0.1. `false` turns the listener off.
   */
  announcements?: false | { port?: number, bindAddress?: string, multicastGroup?: string | undefined }
  /**
   * Where to listen for SSDP NOTIFY when the gateway speaks UPnP: default 239.255.255.250:1900
   * (not joined for a gateway on loopback); a unicast group binds that address (tests). `false`
   * turns it off.
   */
  ssdpListen?: false | { group?: string, port?: number }
  /** Where the UPnP multicast M-SEARCH goes (default 239.255.255.250:1900), false for none; for simulated gateways. */
  ssdpTarget?: SsdpTarget | false
  /** The gateway's SSDP port for the unicast M-SEARCH (default 1900); for simulated gateways. */
  ssdpGatewayPort?: number
  /**
   * Return as soon as the best protocol has answered, leaving the external address to be learnt
   * afterwards (discoverNAT does this; reports and `waitForAll` do not). On a PCP gateway
   * NAT-PMP is then asked only if PCP turns out unusable (natpmpAfterPcp), and the address comes
   * with the first MAP reply; a UPnP gateway offering a single WAN service is taken without
   * GetExternalIPAddress, which the client asks alongside its first add (see
   * UpnpDiscoverOptions.deferExternalAddress). The result then has no externalAddress or
   * notPublicReason from those protocols, and lists only PCP's probe when PCP answered within
   * its head start, since nothing else was asked.
   */
  deferExternalAddress?: boolean
  clock?: Clock
  createSocket?: CreateSocket
  logger?: Logger
}

export type DiscoverNatOptions = DiscoverOptions & Pick<NatOptions, 'lifetimeSeconds' | 'requestTimeoutMs' | 'closeTimeoutMs' | 'random'>

/** What one protocol's probe found, for reports (natmapper discover, doctor). */
export interface ProbeResult {
  method: MappingMethod
  ok: boolean
  durationMs: number
  /** The external address, where the probe learnt it. */
  externalAddress?: string
  notPublicReason?: string
  /** What else the probe learnt, for people (e.g. the UPnP device's name and IGD version). */
  detail?: string
  error?: Error
}

export interface DiscoveredGateway {
  gateway: Gateway
  externalAddress: string | undefined
  /** Set when the gateway says it has no external address (double NAT seen from miniupnpd). */
  notPublicReason: string | undefined
  probes: ProbeResult[]
}

const RANK: MappingMethod[] = ['pcp', 'natpmp', 'upnp']
/**
 * Until when, counted from the start of discovery, a better-ranked protocol may still answer
 * once a lower-ranked one has. PCP and NAT-PMP servers answer within milliseconds; a router
 * that drops their port without an ICMP error stays silent for good, and UPnP, which answers
 * after 100 ms or more, must not then wait a fixed time more. A request lost on the way is
 * retransmitted only at 250 ms (RFC 6886 §3.1), after this: UPnP is used then, which works too.
 */
const BETTER_ANSWER_GRACE_MS = 150
/**
 * Each probe gives up this long before the whole discovery does, so that when nothing answers
 * the error names each protocol's own reason (no answer, garbage, refused) rather than an abort.
 */
const PROBE_MARGIN_MS = 50

interface ProbeValue { gateway: Gateway, externalAddress?: string, notPublicReason?: string, detail?: string }

interface Probe {
  method: MappingMethod
  result: Promise<ProbeValue>
}

/** Probes the gateway and returns a client for the best protocol it answered. */
export async function discoverGateway (options: DiscoverOptions = {}): Promise<DiscoveredGateway> {
  const methods = options.methods ?? RANK
  for (const m of methods) if (!RANK.includes(m)) throw new UsageError(`unknown method ${JSON.stringify(m)}; expected pcp, natpmp or upnp`)
  // An IP literal only: a name would mean a DNS lookup, and the gateway is one hop away.
  if (options.gateway !== undefined && ipFamily(options.gateway) === 0) {
    throw new UsageError(`the gateway must be an IP address, not ${JSON.stringify(options.gateway)}`)
  }
  const timeoutMs = options.timeout ?? 10_000
  // One controller stops the probes: at the timeout, when the caller aborts, and when the answer
  // is chosen while another probe is still asking. (AbortSignal.any and AbortSignal.timeout took
  // about 1 ms of a cold process before the first datagram could leave.)
  const done = new AbortController()
  const timer = setTimeout(() => { done.abort(new TimeoutError(`discovery took over ${timeoutMs} ms`)) }, timeoutMs)
  timer.unref()
  const caller = options.signal
  const onAbort = (): void => { done.abort(caller?.reason) }
  if (caller?.aborted === true) onAbort()
  else caller?.addEventListener('abort', onAbort, { once: true })
  let found: DiscoveredGateway | undefined
  try {
    found = await probeGateway(options, methods, timeoutMs, done)
    return found
  } finally {
    clearTimeout(timer)
    caller?.removeEventListener('abort', onAbort)
    if (found === undefined) done.abort()
  }
}

/** What every probe of one discovery shares. */
interface ProbeContext {
  options: DiscoverOptions
  methods: MappingMethod[]
  timeoutMs: number
  /** Stops every probe (see discoverGateway). */
  done: AbortController
  signal: AbortSignal
  clock: Clock
  logger: Logger
  address: string
  /** The options of the PCP and NAT-PMP clients. */
  common: { gateway: string, clock: Clock, port?: number, createSocket?: CreateSocket, logger?: Logger }
  call: { signal: AbortSignal, timeoutMs: number }
  startMs: number
  /** Quick (discoverNAT): NAT-PMP only where PCP cannot be used (see natpmpAfterPcp). */
  quick: boolean
  probeTimeoutMs: () => number
  headStartLeftMs: () => number
}

/** discoverGateway once its controller is set up: `done` stops every probe. */
async function probeGateway (options: DiscoverOptions, methods: MappingMethod[], timeoutMs: number, done: AbortController): Promise<DiscoveredGateway> {
  const clock = options.clock ?? systemClock
  const address = options.gateway ?? (await findDefaultGateway()).gateway
  const startMs = clock.now()
  const deadlineMs = startMs + timeoutMs
  const probeTimeoutMs = (): number => Math.max(1, Math.floor(deadlineMs - clock.now() - PROBE_MARGIN_MS))
  const ctx: ProbeContext = {
    options,
    methods,
    timeoutMs,
    done,
    signal: done.signal,
    clock,
    logger: options.logger ?? createLogger('discover'),
    address,
    common: {
      gateway: address,
      clock,
      ...(options.port === undefined ? {} : { port: options.port }),
      ...(options.createSocket === undefined ? {} : { createSocket: options.createSocket }),
      ...(options.logger === undefined ? {} : { logger: options.logger })
    },
    call: { signal: done.signal, timeoutMs: probeTimeoutMs() },
    startMs,
    quick: options.deferExternalAddress === true && options.waitForAll !== true,
    probeTimeoutMs,
    headStartLeftMs: () => Math.max(0, startMs + HEAD_START_MS - clock.now())
  }
  const pcp: Probe | undefined = methods.includes('pcp') ? { method: 'pcp', result: probePcp(ctx) } : undefined
  if (ctx.quick && pcp !== undefined) {
    // In quick mode NAT-PMP and UPnP wait out PCP's head start anyway: PCP is asked alone for
    // it, and its answer within it is the answer. Nothing else is set up: that machinery,
    // compiled in a cold process before the first mapping could be asked for, cost about 1 ms.
    const answer = await pcpFirst(pcp.result, ctx.headStartLeftMs())
    if (answer !== undefined) {
      const durationMs = clock.now() - startMs
      ctx.logger('gateway %s speaks pcp (answered in %d ms)', address, Math.round(durationMs))
      return { gateway: answer.gateway, externalAddress: undefined, notPublicReason: undefined, probes: [{ method: 'pcp', ok: true, durationMs }] }
    }
  }
  return await probeAll(ctx, pcp)
}

async function probePcp (ctx: ProbeContext): Promise<ProbeValue> {
  const client = new PcpClient(ctx.common)
  try {
    if (!(await client.announce(ctx.call))) throw new GatewayRefusedError('pcp', 1, 'UNSUPP_VERSION', 'the server speaks only NAT-PMP')
    return { gateway: client }
  } catch (err) {
    client.close()
    throw err
  }
}

async function probeNatPmp (ctx: ProbeContext, clearance: Promise<void> | undefined, asking: Set<MappingMethod>): Promise<ProbeValue> {
  await clearance
  asking.add('natpmp')
  const client = new NatPmpClient(ctx.common)
  try {
    return { gateway: client, externalAddress: await client.externalAddress(ctx.call) }
  } catch (err) {
    // miniupnpd answers NETWORK_FAILURE when its WAN address is private or reserved: the
    // server works, but there is another NAT beyond it.
    const notPublicReason = notPublicReasonOf(err)
    if (notPublicReason !== undefined) return { gateway: client, notPublicReason }
    client.close()
    throw err
  }
}

async function probeUpnp (ctx: ProbeContext, turn: Promise<void>, asking: Set<MappingMethod>): Promise<ProbeValue> {
  await turn
  asking.add('upnp')
  const { options, clock, address, signal } = ctx
  // The SSDP code is loaded with the rest of discovery, so that the M-SEARCH goes out as
  // soon as PCP and NAT-PMP have failed. The rest of the UPnP code (most of natmapper),
  // which a process whose gateway speaks PCP or NAT-PMP never needs, loads only now,
  // while the router takes its 50 ms or more to answer.
  // A gateway the caller named must be the UPnP device itself; the default route's may have a CARP partner answer for it.
  const search = { gateway: address, gatewayNamed: options.gateway !== undefined, clock, ssdpTarget: options.ssdpTarget, ssdpGatewayPort: options.ssdpGatewayPort, createSocket: options.createSocket, logger: options.logger }
  const started = await startIgdSearch(search)
  let UpnpClient: typeof import('./upnp/client.js').UpnpClient
  try {
    ({ UpnpClient } = await import('./upnp/client.js'))
  } catch (err) {
    started.search.close()
    throw err
  }
  const client = await UpnpClient.discover({ ...search, started, signal, timeoutMs: ctx.probeTimeoutMs(), deferExternalAddress: options.deferExternalAddress })
  const found = client.selection?.externalAddress
  const detail = describeIgd(client)
  if (found?.ok === false) {
    // miniupnpd answers '' when its WAN address is private or reserved (LAB.md).
    return { gateway: client, detail, notPublicReason: `the gateway has no public external address (UPnP GetExternalIPAddress: ${found.text === '' ? 'empty' : JSON.stringify(found.text.slice(0, 40))}): its WAN link is down, or there is another NAT beyond it (double NAT or carrier-grade NAT)` }
  }
  return { gateway: client, detail, ...(found === undefined ? {} : { externalAddress: found.address }) }
}

/** Every probe at once (PCP's already running, if any), and the best answer. */
async function probeAll (ctx: ProbeContext, pcp: Probe | undefined): Promise<DiscoveredGateway> {
  const { options, methods, timeoutMs, done, signal, clock, logger, address, startMs, quick } = ctx
  const probes: Probe[] = pcp === undefined ? [] : [pcp]
  /** The probes that have sent a request: only those need stopping once the answer is chosen. */
  const asking = new Set<MappingMethod>(pcp === undefined ? [] : ['pcp'])
  /** Resolves when the answer is chosen: the probes still waiting for their turn then end unasked. */
  let decide = (): void => {}
  const decided = new Promise<void>((resolve) => { decide = resolve })
  if (methods.includes('natpmp')) {
    const clearance = quick && pcp !== undefined ? natpmpAfterPcp(pcp.result, signal, decided, ctx.headStartLeftMs()) : undefined
    probes.push({ method: 'natpmp', result: probeNatPmp(ctx, clearance, asking) })
  }
  if (methods.includes('upnp')) {
    const turn = upnpAfterOthers(probes.map((p) => p.result), signal, decided, ctx.headStartLeftMs())
    probes.push({ method: 'upnp', result: probeUpnp(ctx, turn, asking) })
  }

  const results = new Map<MappingMethod, ProbeResult>()
  const settled = probes.map(async (probe) => {
    try {
      const value = await probe.result
      results.set(probe.method, {
        method: probe.method,
        ok: true,
        durationMs: clock.now() - startMs,
        ...(value.externalAddress === undefined ? {} : { externalAddress: value.externalAddress }),
        ...(value.notPublicReason === undefined ? {} : { notPublicReason: value.notPublicReason }),
        ...(value.detail === undefined ? {} : { detail: value.detail })
      })
      return value
    } catch (err) {
      results.set(probe.method, { method: probe.method, ok: false, durationMs: clock.now() - startMs, error: err as Error })
      throw err
    }
  })
  for (const s of settled) s.catch(() => {})

  const graceEndsAtMs = startMs + BETTER_ANSWER_GRACE_MS
  const graceLeftMs = (): number => Math.max(0, graceEndsAtMs - clock.now())
  const winner = await pickBest(probes.map((p, i) => ({ method: p.method, settled: settled[i]! })), signal, clock, graceLeftMs)
  const report = (): ProbeResult[] => [...RANK].flatMap((m) => results.get(m) ?? [])
  if (winner === undefined) {
    if (options.signal?.aborted === true) throw new AbortError(options.signal.reason)
    const causes = report().map((r) => `${r.method}: ${r.error?.message ?? 'no answer'}`).join('; ')
    const timedOut = signal.aborted || report().every((r) => r.error instanceof TimeoutError)
    const err = timedOut
      ? new TimeoutError(`no gateway answered at ${address} within ${timeoutMs} ms (${causes})`)
      : new NatmapperError('NATMAPPER_NO_GATEWAY', `no port-mapping protocol answered at ${address}: ${causes}`)
    throw Object.assign(err, { probes: report(), gateway: address })
  }
  // Close the clients that lost: their answer is not needed.
  void Promise.allSettled(settled).then((all) => {
    for (const r of all) if (r.status === 'fulfilled' && r.value.gateway !== winner.value.gateway) r.value.gateway.close()
  })
  // The NAT-PMP probe's answer tells the external address even when PCP won: it went to the
  // same server at the same time, so it is due within milliseconds.
  const natpmpIndex = probes.findIndex((p) => p.method === 'natpmp')
  if (options.waitForAll === true) {
    await Promise.allSettled(settled)
  } else if (!quick && winner.method === 'pcp' && natpmpIndex !== -1 && !results.has('natpmp')) {
    let waitTimer: TimerHandle | undefined
    await Promise.race([settled[natpmpIndex]!.catch(() => {}), new Promise<void>((resolve) => { waitTimer = clock.setTimeout(resolve, graceLeftMs()) })])
    if (waitTimer !== undefined) clock.clearTimeout(waitTimer)
  }
  const natpmp = results.get('natpmp')
  const externalAddress = winner.value.externalAddress ?? natpmp?.externalAddress
  const notPublicReason = winner.value.notPublicReason ?? natpmp?.notPublicReason
  // The probes still waiting for their turn end unasked. One still asking (a silent PCP server,
  // retransmitted to, when UPnP answered) is aborted; when none is, nothing is: a process's
  // first abort costs about 0.4 ms, which the first mapping request would wait for.
  decide()
  if ([...asking].some((m) => m !== winner.method && !results.has(m))) done.abort()
  const probeResults = report()
  logger('gateway %s speaks %s (%s)', address, winner.method, probeResults.map((r) => `${r.method} ${r.ok ? 'ok' : 'failed'} in ${Math.round(r.durationMs)} ms`).join(', '))
  return { gateway: winner.value.gateway, externalAddress, notPublicReason, probes: probeResults }
}

/**
 * Finds the gateway and returns a NAT that keeps mappings on it: the entry point of the library.
 * The NAT rediscovers the gateway by itself when it stops answering or the default route
 * changes.
 */
export async function discoverNAT (options: DiscoverNatOptions = {}): Promise<NAT> {
  // The NAT learns the address from the first mapping, or asks for it (askExternalAddress).
  const found = await discoverGateway({ deferExternalAddress: true, ...options })
  const { gateway } = found
  // Binding the listener (and finding the interface to join its group on) takes a few ms that
  // the first mapping need not wait for: the router announces nothing while it is up.
  const announcementsFor = (g: Gateway): AnnouncementSource => announcementsFrom(g, options)
  const rediscoverOptions = { ...options, announcements: false as const }
  return new NAT(gateway, {
    ...pick(options, ['lifetimeSeconds', 'requestTimeoutMs', 'closeTimeoutMs', 'random', 'clock', 'logger']),
    ...(found.externalAddress === undefined ? {} : { externalAddress: found.externalAddress }),
    ...(found.notPublicReason === undefined ? {} : { notPublicReason: found.notPublicReason }),
    askExternalAddress: found.externalAddress === undefined && found.notPublicReason === undefined,
    announcements: announcementsFor(gateway),
    announcementsFor,
    rediscover: async (signal) => (await discoverGateway({ ...rediscoverOptions, signal })).gateway,
    ...(options.gateway === undefined
      ? { watchRoute: { lookup: async () => (await findDefaultGateway()).gateway, intervalMs: 10_000, initialGateway: gateway.address } }
      : {})
  })
}

/**
 * Opens a client for one protocol, or the best one the gateway speaks. For callers that manage
 * mappings themselves; most want discoverNAT.
 */
export type OpenGatewayOptions = DiscoverOptions & { method?: MappingMethod }

export async function openGateway (options: OpenGatewayOptions = {}): Promise<Gateway> {
  const { method, ...rest } = options
  return (await discoverGateway({ ...rest, ...(method === undefined ? {} : { methods: [method] }) })).gateway
}

function pick<T extends object, K extends keyof T> (object: T, keys: K[]): Partial<Pick<T, K>> {
  const out: Partial<Pick<T, K>> = {}
  for (const key of keys) if (object[key] !== undefined) out[key] = object[key]
  return out
}

/** "MiniUPnPd IGD v2, WANIPConnection:2" for reports. */
function describeIgd (client: UpnpClient): string | undefined {
  const selection = client.selection
  if (selection === undefined) return undefined
  const name = selection.device.friendlyName !== '' ? selection.device.friendlyName : selection.device.modelName !== '' ? selection.device.modelName : 'unnamed device'
  const service = selection.service.serviceType.split(':').slice(-2).join(':')
  return `${name}, IGD v${selection.service.igdVersion}, ${service}`
}
