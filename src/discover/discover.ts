import { deadline, systemClock, type Clock, type TimerHandle } from '../clock.js'
import { AbortError, NoGatewayError, NotAskedError, TimeoutError, UsageError } from '../errors.js'
import type { Gateway, MappingMethod, ProbeResult } from '../gateway.js'
import { createLogger, type Logger } from '../log.js'
import { ipFamily } from '../net/address.js'
import { findGatewayFor, networkFacts, systemNetwork, type HostNetwork } from '../net/host-network.js'
import { chooseLocalInterface, type LocalInterface } from '../net/local-interface.js'
import { noRouterHint } from '../net/network-hints.js'
import type { CreateSocket } from '../net/udp.js'
import type { SsdpTarget } from '../upnp/ssdp.js'
import { HEAD_START_MS, natpmpAfterPcp, pcpFirst, pickBest, upnpAfterOthers } from './probe-order.js'
import { portControlServer, probeNatPmp, probePcp, probeUpnp, type ProbeContext, type ProbeValue } from './probes.js'

export type { ProbeResult } from '../gateway.js'

/**
 * Finding the gateway and the best protocol it speaks. Every protocol is probed at once, and the
 * answer is taken as soon as the best one that can still answer has answered: PCP, then
 * NAT-PMP, then UPnP. Nothing waits out a fixed window.
 */

export interface DiscoverOptions {
  signal?: AbortSignal
  /** Upper bound for the whole discovery, in milliseconds. Default 10 000. */
  timeout?: number
  /** The gateway's address; found from the default route (of `interface`, when given) when absent. */
  gateway?: string
  /**
   * The network interface to use (`eth1`): every socket binds to its IPv4 address, and the
   * gateway is the next hop of the default route leaving by it. An unknown interface, or one
   * without IPv4, is an InterfaceError before anything is sent.
   */
  interface?: string
  /**
   * The local IPv4 address to use (`192.168.1.20`): as `interface`, for the interface that has
   * it. With `interface` too, both must name the same interface.
   */
  localAddress?: string
  /** This host's interfaces and routes; for tests that build a host of their own (see HostNetwork). */
  network?: HostNetwork
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

export interface DiscoveredGateway {
  gateway: Gateway
  /** The interface chosen (DiscoverOptions.interface or localAddress), or the default route's where the platform says. */
  interface: string | undefined
  /** The local address every socket was bound to; undefined when no interface was chosen. */
  localAddress: string | undefined
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
  const network = options.network ?? systemNetwork
  // Before anything is sent: a bad choice of network is the caller's error, not a silent gateway.
  const local = options.interface === undefined && options.localAddress === undefined ? undefined : chooseLocalInterface(options, network.interfaces())
  const clock = options.clock ?? systemClock
  const timeoutMs = options.timeout ?? 10_000
  // One signal stops the probes: at the timeout, when the caller aborts, and when the answer is
  // chosen while another probe is still asking.
  const done = deadline(clock, timeoutMs, () => new TimeoutError(`discovery took over ${timeoutMs} ms`), options.signal)
  try {
    return await probeGateway(options, { network, local }, methods, timeoutMs, clock, done.signal)
  } finally {
    done.abort(new NotAskedError('not asked: discovery is over'))
  }
}

/** discoverGateway once its deadline is set: `signal` stops every probe. */
async function probeGateway (options: DiscoverOptions, host: { network: HostNetwork, local: LocalInterface | undefined }, methods: MappingMethod[], timeoutMs: number, clock: Clock, signal: AbortSignal): Promise<DiscoveredGateway> {
  const { network, local } = host
  const route = options.gateway === undefined ? await findGatewayFor(network, local) : { gateway: options.gateway, interface: local?.name }
  const address = route.gateway
  const logger = options.logger ?? createLogger('discover')
  const startMs = clock.now()
  const deadlineMs = startMs + timeoutMs
  const probeTimeoutMs = (): number => Math.max(1, Math.floor(deadlineMs - clock.now() - PROBE_MARGIN_MS))
  const localAddress = local?.address
  const base = { address, clock, createSocket: options.createSocket, logger: options.logger, port: options.port, localAddress }
  const server = portControlServer(base, methods.includes('pcp'))
  const ctx: ProbeContext = {
    ...base,
    server: server.get,
    call: { signal, timeoutMs: probeTimeoutMs() },
    probeTimeoutMs,
    upnp: {
      ssdpTarget: options.ssdpTarget,
      ssdpGatewayPort: options.ssdpGatewayPort,
      deferExternalAddress: options.deferExternalAddress,
      gatewayNamed: options.gateway !== undefined,
      interfaces: options.network?.interfaces()
    }
  }
  // Why nothing answered, when the host's network shows a known trap; not for a gateway the caller named.
  const hint = async (): Promise<string | undefined> => options.gateway === undefined
    ? noRouterHint(await networkFacts(network).catch(() => undefined) ?? { routes: [], interfaces: {}, inDocker: false }, route)
    : undefined
  try {
    const found = await runProbes(options, methods, ctx, { address, timeoutMs, startMs, clock, signal, logger, hint })
    return { ...found, interface: route.interface, localAddress }
  } finally {
    server.release()
  }
}

/** What the probes of one discovery share besides the ProbeContext. */
interface RunContext {
  address: string
  timeoutMs: number
  startMs: number
  clock: Clock
  signal: AbortSignal
  logger: Logger
  /** Why no router answers, for NoGatewayError. */
  hint: () => Promise<string | undefined>
}

type Found = Omit<DiscoveredGateway, 'interface' | 'localAddress'>

async function runProbes (options: DiscoverOptions, methods: MappingMethod[], ctx: ProbeContext, c: RunContext): Promise<Found> {
  const { address, startMs, clock, signal, logger } = c
  const quick = options.deferExternalAddress === true && options.waitForAll !== true
  const headStartLeftMs = (): number => Math.max(0, startMs + HEAD_START_MS - clock.now())
  const pcp: Probe | undefined = methods.includes('pcp') ? { method: 'pcp', result: probePcp(ctx) } : undefined
  if (quick && pcp !== undefined) {
    // NAT-PMP and UPnP wait out PCP's head start anyway: PCP is asked alone for it, and its
    // answer within it is the answer.
    const answer = await pcpFirst(pcp.result, headStartLeftMs(), clock)
    if (answer !== undefined) {
      const durationMs = clock.now() - startMs
      logger('gateway %s speaks pcp (answered in %d ms)', address, Math.round(durationMs))
      return { gateway: answer.gateway, externalAddress: undefined, notPublicReason: undefined, probes: [{ method: 'pcp', ok: true, durationMs }] }
    }
  }
  const probes: Probe[] = pcp === undefined ? [] : [pcp]
  /** Resolves when the answer is chosen: the probes still waiting for their turn then end unasked. */
  let decide = (): void => {}
  const decided = new Promise<void>((resolve) => { decide = resolve })
  if (methods.includes('natpmp')) {
    const clearance = quick && pcp !== undefined ? natpmpAfterPcp(pcp.result, signal, decided, headStartLeftMs(), clock) : undefined
    probes.push({ method: 'natpmp', result: probeNatPmp(ctx, clearance) })
  }
  if (methods.includes('upnp')) {
    const turn = upnpAfterOthers(probes.map((p) => p.result), signal, decided, headStartLeftMs(), clock)
    probes.push({ method: 'upnp', result: probeUpnp(ctx, turn) })
  }
  try {
    return await chooseAnswer(options, probes, { ...c, quick })
  } finally {
    decide()
  }
}

/** Waits for the best answer among the probes (see pickBest), and reports what each did. */
async function chooseAnswer (options: DiscoverOptions, probes: Probe[], c: RunContext & { quick: boolean }): Promise<Found> {
  const { address, timeoutMs, startMs, clock, signal, logger, quick } = c
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
    // A probe still waiting at the deadline did not answer in time: the report says so too.
    for (const probe of probes) {
      if (!results.has(probe.method)) results.set(probe.method, { method: probe.method, ok: false, durationMs: clock.now() - startMs, error: new TimeoutError(`no answer within ${timeoutMs} ms`) })
    }
    const timedOut = signal.aborted || report().every((r) => r.error instanceof TimeoutError)
    throw new NoGatewayError(address, report(), timedOut, timeoutMs, await c.hint())
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
  const probeResults = report()
  logger('gateway %s speaks %s (%s)', address, winner.method, probeResults.map((r) => `${r.method} ${r.ok ? 'ok' : 'failed'} in ${Math.round(r.durationMs)} ms`).join(', '))
  return { gateway: winner.value.gateway, externalAddress, notPublicReason, probes: probeResults }
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
