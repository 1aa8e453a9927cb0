import { nextTurn, systemClock, type Clock, type TimerHandle } from '../clock.js'
import { AbortError, RemoteProtocolError, TimeoutError, UnsafeUrlError } from '../errors.js'
import { createLogger, type Logger } from '../log.js'
import {
  decodeGetExternalIPAddress, decodeGetStatusInfo, encodeGetExternalIPAddress, encodeGetStatusInfo,
  type ExternalAddressResult, type StatusInfo
} from './actions.js'
import { fetchDescription, soapCall, type ExchangeContext } from './control.js'
import { findWanServices, parseDescription, type UpnpRootDevice, type WanServiceCandidate } from './description.js'
import { checkUpnpUrl, isPublicIpv4, repointUrl, type UrlPolicy } from './guard.js'
import { startIgdSearch, type IgdSearchOptions, type StartedIgdSearch } from './search.js'
import { isIgdAnswer, type SsdpAnswer, type SsdpTarget } from './ssdp.js'
import { preloadXmlParser } from './xml.js'

/**
 * From nothing to a WAN connection service to send port mappings to: SSDP search, description,
 * service choice. It answers as soon as the gateway itself offers a connected service with an
 * external address, instead of collecting answers for a fixed window (upnpc waits 2 s,
 * tailscale 250 ms): on miniupnpd that is its ~50 ms SSDP delay plus three LAN round trips.
 */

export interface UpnpDiscoverOptions extends IgdSearchOptions {
  /** A search already sent (startIgdSearch); the search options are then not used. */
  started?: StartedIgdSearch | undefined
  signal?: AbortSignal | undefined
  /** Upper bound for the whole discovery. Default 3000 ms. */
  timeoutMs?: number | undefined
  /**
   * How long to wait for a better answer once only a second-rate one is in hand (a host that is
   * not the gateway, a disconnected service, no external address). Default 250 ms.
   */
  settleMs?: number | undefined
  /** Per HTTP exchange. Default 3000 ms (miniupnpc's). */
  requestTimeoutMs?: number | undefined
  /**
   * Take a lone WAN service in the gateway's own description without asking GetExternalIPAddress
   * first: the selection then has no externalAddress, and the client asks for it alongside its
   * first add (UpnpClient.map), a round trip sooner. discoverNAT does this; reports (natmapper
   * discover, doctor) do not, since they show the address.
   */
  deferExternalAddress?: boolean | undefined
}

/** What discovery found: the service to control and how it got there. */
export interface IgdSelection {
  readonly gateway: string
  /** Who answered SSDP (any source port). */
  readonly responder: SsdpTarget
  /** The description URL fetched (the LOCATION, or the LOCATION re-pointed at the responder). */
  readonly location: string
  readonly server: string | undefined
  readonly bootId: number | undefined
  readonly configId: number | undefined
  readonly device: UpnpRootDevice
  readonly service: WanServiceCandidate
  /** Undefined when only one service was offered: then nothing needed comparing. */
  readonly status: StatusInfo | undefined
  readonly externalAddress: ExternalAddressResult | undefined
  /** Our address on the router's LAN, from the TCP connections to it. */
  readonly internalClient: string | undefined
  /** The local address the connections are bound to, when the caller chose the network. */
  readonly localAddress: string | undefined
  readonly policy: UrlPolicy
  /**
   * 0 best: connected with a public address; 1 with a private one; 2 connected, no address; 3 an
   * address but not connected; 4 neither. A lone service of the gateway not asked about
   * (deferExternalAddress) is 0: nothing in its description competes with it.
   */
  readonly rank: number
  readonly timings: { readonly ssdpMs: number, readonly descriptionMs: number, readonly probeMs: number, readonly totalMs: number }
}

/** At most this many services of one description are probed (two WANs and a spare). */
const MAX_PROBED = 4
/**
 * Descriptions fetched at once; further answers wait their turn, the gateway's first. With the
 * caps on answers (ssdp.ts) and on each reply (control.ts), a flood of answers costs at most
 * this many connections and 4 x 256 KiB of bodies at a time.
 */
const MAX_CONCURRENT_FETCHES = 4

export async function discoverIgd (options: UpnpDiscoverOptions = {}): Promise<IgdSelection> {
  const { signal } = options
  const clock = options.clock ?? systemClock
  const logger = options.logger ?? createLogger('upnp')
  const startMs = clock.now()
  const timeoutMs = options.timeoutMs ?? 3000
  if (signal?.aborted === true) {
    options.started?.search.close()
    throw new AbortError(signal.reason)
  }
  const { search, gateway, subnet, prefixes6, localAddress } = options.started ?? await startIgdSearch({ ...options, clock, logger })
  // The answer takes 50 ms or more (miniupnpd waits 50 ms before it sends one): the XML parser loads meanwhile.
  nextTurn(clock, preloadXmlParser)
  const inFlight = new AbortController()
  try {
    return await new Promise<IgdSelection>((resolve, reject) => {
      let best: IgdSelection | undefined
      const failures: Error[] = []
      /** Answers being evaluated or waiting for a slot. */
      let pending = 0
      let running = 0
      const queue: SsdpAnswer[] = []
      let settleTimer: TimerHandle | undefined
      let settleOver = false
      let settled = false
      const finish = (err: Error | undefined, value?: IgdSelection): void => {
        if (settled) return
        settled = true
        clock.clearTimeout(deadline)
        if (settleTimer !== undefined) clock.clearTimeout(settleTimer)
        signal?.removeEventListener('abort', onAbort)
        if (err !== undefined) reject(err)
        else resolve(value!)
      }
      // The best so far; else, once nothing is being read any more, why the answers were unusable.
      const conclude = (): void => {
        if (best !== undefined) finish(undefined, best)
        else if (pending === 0 && failures.length > 0) finish(failures[0])
      }
      const deadline = clock.setTimeout(() => {
        conclude()
        const unusable = failures.length === 0 ? '' : `; ${failures.length} answer${failures.length === 1 ? '' : 's'} unusable, the first: ${failures[0]!.message}`
        const refused = search.refused === 0 ? '' : `; ${search.refused} from ${subnet === undefined ? 'hosts other than the gateway' : 'outside the gateway\'s subnet'} refused`
        finish(new TimeoutError(`no usable UPnP IGD answered within ${Math.round(timeoutMs)} ms (M-SEARCH to ${gateway}${options.ssdpTarget === false ? '' : ' and the SSDP group'}; ${search.received} datagram${search.received === 1 ? '' : 's'} received${refused}${unusable})`, failures.length > 0 ? { cause: failures[0] } : undefined))
      }, timeoutMs)
      const onAbort = (): void => { finish(new AbortError(signal?.reason)) }
      signal?.addEventListener('abort', onAbort, { once: true })
      // It may have fired while the socket was being bound.
      if (signal?.aborted === true) onAbort()

      const pump = (): void => {
        while (!settled && running < MAX_CONCURRENT_FETCHES && queue.length > 0) {
          running++
          start(queue.shift()!)
        }
      }
      const start = (answer: SsdpAnswer): void => {
        evaluate(answer, { gateway, subnet, prefixes6, localAddress, clock, logger, startMs, requestTimeoutMs: options.requestTimeoutMs ?? 3000, signal: inFlight.signal, deferExternalAddress: options.deferExternalAddress === true })
          .then((selection) => {
            logger('%s: %s, rank %d', selection.location, selection.service.serviceType, selection.rank)
            if (best === undefined || compare(selection, best) < 0) best = selection
            if (selection.rank === 0 || (selection.rank <= 1 && selection.responder.address === gateway)) finish(undefined, selection)
          }, (err: Error) => {
            logger('%s: unusable: %s', answer.response.location, err.message)
            failures.push(err)
          })
          .finally(() => {
            pending--
            running--
            pump()
            // Decided already: a settle timer now would only hold the process open (250 ms
            // more for every `natmapper map --once --protocol upnp`).
            if (settled) return
            if (settleOver) {
              conclude()
              return
            }
            settleTimer ??= clock.setTimeout(() => {
              settleOver = true
              conclude()
            }, options.settleMs ?? 250)
          })
      }
      const onAnswer = (answer: SsdpAnswer): void => {
        if (!isIgdAnswer(answer.response)) {
          logger('skipping %s: ST %s is no IGD', answer.response.location, answer.response.st)
          return
        }
        pending++
        // The gateway's own answers go before other hosts' (after its earlier ones).
        const firstOther = answer.from.address === gateway ? queue.findIndex((a) => a.from.address !== gateway) : -1
        queue.splice(firstOther === -1 ? queue.length : firstOther, 0, answer)
        pump()
      }
      // What a search started earlier (options.started) heard before now, then the rest.
      for (const answer of search.answers) onAnswer(answer)
      search.on('answer', onAnswer)
    })
  } finally {
    search.close()
    inFlight.abort()
  }
}

/** Orders selections, best first: rank, then the gateway before other hosts, then IGD v2 before v1. */
function compare (a: IgdSelection, b: IgdSelection): number {
  const fromGateway = (s: IgdSelection): number => s.responder.address === s.gateway ? 0 : 1
  return a.rank - b.rank || fromGateway(a) - fromGateway(b) || b.service.igdVersion - a.service.igdVersion
}

interface EvaluateContext {
  gateway: string
  subnet: UrlPolicy['subnet']
  prefixes6: UrlPolicy['prefixes6']
  localAddress: string | undefined
  clock: Clock
  logger: Logger
  startMs: number
  requestTimeoutMs: number
  signal: AbortSignal
  deferExternalAddress: boolean
}

/** Fetches one answer's description and picks its best service. */
async function evaluate (answer: SsdpAnswer, c: EvaluateContext): Promise<IgdSelection> {
  const policy: UrlPolicy = { gateway: c.gateway, responder: answer.from.address, subnet: c.subnet, prefixes6: c.prefixes6 }
  const location = checkedLocation(answer, policy, c.logger)
  let internalClient: string | undefined
  const context: ExchangeContext = {
    policy,
    clock: c.clock,
    logger: c.logger,
    requestTimeoutMs: c.requestTimeoutMs,
    signal: c.signal,
    localAddress: c.localAddress,
    onLocalAddress: (address) => { internalClient = address }
  }
  const descriptionStartMs = c.clock.now()
  const response = await fetchDescription(context, location)
  if (response.status !== 200) throw new RemoteProtocolError(`device description ${location}: HTTP ${response.status}, not 200`)
  const device = parseDescription(response.body, location)
  const descriptionMs = c.clock.now() - descriptionStartMs
  const refused: Error[] = []
  const candidates = findWanServices(device).filter((candidate) => {
    try {
      checkUpnpUrl(candidate.controlURL, policy)
      return true
    } catch (err) {
      c.logger('%s: skipping %s: %s', location, candidate.serviceType, (err as Error).message)
      refused.push(err as Error)
      return false
    }
  })
  if (candidates.length === 0) {
    // Every service points away from the gateway: say so, with the guard's own error.
    if (refused.length > 0) throw refused[0]!
    throw new RemoteProtocolError(`device description ${location} (${device.friendlyName === '' ? device.deviceType : device.friendlyName}) offers no WAN connection service at the gateway`)
  }
  const probeStartMs = c.clock.now()
  // One candidate needs no comparing, but its external address is wanted anyway (the mapping
  // needs it, and it is checked before any permanent mapping is made: tailscale#10602), here or,
  // when deferred, by the client alongside its first add.
  const withStatus = candidates.length > 1
  const deferred = c.deferExternalAddress && candidates.length === 1 && answer.from.address === c.gateway
  const probe = async (candidate: WanServiceCandidate, index: number): Promise<{ candidate: WanServiceCandidate, status: StatusInfo | undefined, address: ExternalAddressResult | undefined, index: number, rank: number }> => {
    const [status, address] = await Promise.all([
      withStatus ? soapCall(context, candidate.controlURL, encodeGetStatusInfo(candidate.serviceType), decodeGetStatusInfo).catch(() => undefined) : undefined,
      soapCall(context, candidate.controlURL, encodeGetExternalIPAddress(candidate.serviceType), decodeGetExternalIPAddress).catch(() => undefined)
    ])
    return { candidate, status, address, index, rank: rankOf(status, address) }
  }
  const probes = deferred
    ? [{ candidate: candidates[0]!, status: undefined, address: undefined, index: 0, rank: 0 }]
    : await Promise.all(candidates.slice(0, MAX_PROBED).map(probe))
  probes.sort((a, b) => a.rank - b.rank || a.index - b.index)
  const chosen = probes[0]!
  const nowMs = c.clock.now()
  return {
    gateway: c.gateway,
    responder: answer.from,
    location,
    server: answer.response.server,
    bootId: answer.response.bootId,
    configId: answer.response.configId,
    device,
    service: chosen.candidate,
    status: chosen.status,
    externalAddress: chosen.address,
    internalClient,
    localAddress: c.localAddress,
    policy,
    rank: chosen.rank,
    timings: { ssdpMs: answer.elapsedMs, descriptionMs, probeMs: nowMs - probeStartMs, totalMs: nowMs - c.startMs }
  }
}

/**
 * The LOCATION if the guard allows it. One that names another host (a HONOR router announces a
 * 169.254.x address: home-assistant#63745) or a host name, in an answer from the gateway or a
 * host of its subnet, is re-pointed at that responder, keeping port and path, as tailscale does
 * (tailscale#5502): the named host itself is never contacted.
 */
function checkedLocation (answer: SsdpAnswer, policy: UrlPolicy, logger: Logger): string {
  const location = answer.response.location
  try {
    return checkUpnpUrl(location, policy).href
  } catch (err) {
    if (!(err instanceof UnsafeUrlError) || (err.reason !== 'foreign-host' && err.reason !== 'not-ip-literal')) throw err
    const repointed = repointUrl(location, answer.from.address)
    logger('%s; trying the host that answered instead: %s', err.message, repointed)
    return checkUpnpUrl(repointed, policy).href
  }
}

function rankOf (status: StatusInfo | undefined, address: ExternalAddressResult | undefined): number {
  const hasAddress = address?.ok === true
  // Without GetStatusInfo (a single candidate, or the call failed), an address says "connected".
  const connected = status?.connected ?? hasAddress
  if (connected && hasAddress) return isPublicIpv4(address.address) ? 0 : 1
  if (connected) return 2
  return hasAddress ? 3 : 4
}
