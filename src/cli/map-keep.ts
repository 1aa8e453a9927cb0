import { systemClock } from '../clock.js'
import { AbortError, ClosedError } from '../errors.js'
import { discoverNAT } from '../nat/discover-nat.js'
import type { LeftMapping, NAT } from '../nat/nat.js'
import type { NatMaker } from './map-ipv6.js'
import type { AddressFamily } from '../gateway.js'
import { discoverOptionsFrom, methodNames } from './common.js'
import { mappedLine, mappingFields, statsLine, type MapRequest } from './map-lines.js'
import type { Output } from './output.js'
import { describePorts, type PortSpec } from './ports.js'
import { forgetRecords, recordOf, rememberRecords, type PinholeContext, type RecordKey } from './state.js'

/** What ends `natmapper map` (with its cleanup): the terminal's signals, and a stdout nobody reads any more. */
const STOP_SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const
/** With more ports than this, progress is shown as counts, about every tenth of them. */
const PROGRESS_FROM = 20

/** `natmapper map` without --once: map, keep until stopped, delete everything, say what could not be. */
export async function mapAndKeep (specs: PortSpec[], discover: ReturnType<typeof discoverOptionsFrom>, request: MapRequest, out: Output, makeNat?: NatMaker): Promise<number> {
  out.info(`looking for the gateway${discover.gateway === undefined ? '' : ` at ${discover.gateway}`}...`)
  // One listener per signal for the command's whole life. Removing a signal's last listener and
  // adding another later drops a signal that arrived in between and was not yet dispatched
  // (libuv hands it to the closed handle), so the first Ctrl-C would be lost.
  const stop = new AbortController()
  let signals = 0
  const onSignal = (name: string): void => {
    // A second interrupt means "now": skip the cleanup.
    if (++signals > 1) process.exit(130)
    stop.abort(name)
  }
  const handlers = STOP_SIGNALS.map((name) => [name, () => { onSignal(name) }] as const)
  for (const [name, handler] of handlers) process.on(name, handler)
  // As SIGPIPE ends other programs, but with the cleanup: `natmapper map 7070 | head -1`.
  out.onStdoutClosed(() => { if (!stop.signal.aborted) stop.abort('stdout closed') })
  try {
    return await keepMapped(specs, discover, request, out, stop.signal, makeNat)
  } finally {
    for (const [name, handler] of handlers) process.off(name, handler)
  }
}

async function keepMapped (specs: PortSpec[], discover: ReturnType<typeof discoverOptionsFrom>, request: MapRequest, out: Output, stopSignal: AbortSignal, makeNat: NatMaker | undefined): Promise<number> {
  let nat: NAT
  try {
    nat = await (makeNat?.(stopSignal) ?? discoverNAT({ ...discover, lifetimeSeconds: request.lifetimeSeconds, signal: stopSignal }))
  } catch (err) {
    if (!stopSignal.aborted) throw err
    out.error(new Error(`interrupted (${String(stopSignal.reason)}) while looking for the gateway; nothing was mapped`))
    return 130
  }
  // Interrupted just as the gateway was found: stop here, not later.
  if (stopSignal.aborted) {
    await nat.close()
    out.error(new Error(`interrupted (${String(stopSignal.reason)}) while looking for the gateway; nothing was mapped`))
    return 130
  }
  const gateway = nat.gatewayAddress
  out.info(`gateway ${gateway}, ${methodNames[nat.method]}${nat.family === 6 ? ' (IPv6)' : ''}`)
  const side = nat.ipv6Gateway
  if (side !== undefined) out.info(`IPv6 gateway ${side.address}, ${methodNames[side.method]}`)
  const records = new Recorder(nat, gateway, { controlURL: makeNat?.controlURL })
  const progressShown = report(nat, out, specs.length, records)

  const stopped = new Promise<string>((resolve) => {
    stopSignal.addEventListener('abort', () => { resolve(String(stopSignal.reason)) }, { once: true })
  })
  // The library's timers and sockets do not hold the process open (an application that is done
  // may exit); this command's whole job is to stay until interrupted.
  const keepAlive = setInterval(() => {}, 2 ** 30)
  let left: LeftMapping[] = []
  /** Ports whose first attempt failed (said as error lines); retried in the background. */
  const failedFirst: PortSpec[] = []
  try {
    const first = nat.addMappings(specs.map((spec) => ({ protocol: spec.protocol, port: spec.port, externalPort: request.externalPort })), { description: request.description, ...(makeNat?.family === undefined ? {} : { family: makeNat.family }) })
      .then((results) => {
        // Cut short by the interrupt is no failure of the port.
        for (const r of results) if (r.error !== undefined && !(r.error instanceof AbortError) && !(r.error instanceof ClosedError)) failedFirst.push({ protocol: r.protocol, port: r.internalPort })
      }, () => {})
    await Promise.race([first, stopped])
    const held = nat.mappings().length
    // The count once the first attempts are over, unless the progress line just said it.
    if (specs.length > PROGRESS_FROM && !stopSignal.aborted && progressShown() !== held) {
      out.info(`mapped ${held}/${specs.length}${held === specs.length ? '' : `; ${specs.length - held} not yet (retried in the background)`}`)
    }
    out.info(`${await stopped}: removing mappings`)
  } finally {
    // Also on an unexpected error: whatever was mapped goes.
    clearInterval(keepAlive)
    left = await nat.close()
    await records.settle(left)
    reportStats(nat, out)
  }
  // A port whose first attempt failed and that was never mapped after, while it ran, failed.
  const never = failedFirst.filter((spec) => !records.made(spec.protocol, spec.port))
  if (never.length > 0) out.error(new Error(`${never.length} of ${specs.length} port${specs.length === 1 ? '' : 's'} never mapped: ${describePorts(never)}`))
  if (left.length === 0) return never.length === 0 ? 0 : 1
  const nowMs = systemClock.now()
  for (const { mapping, error } of left) {
    const remainingS = Number.isFinite(mapping.expiresAtMs) ? Math.max(0, Math.round((mapping.expiresAtMs - nowMs) / 1000)) : undefined
    const stays = remainingS === undefined ? 'for good (a permanent lease)' : remainingS === 0 ? 'until it notices the lease has run out' : `for another ${remainingS} s`
    out.event('left', { ...mappingFields(mapping), remainingSeconds: remainingS ?? null, reason: error.message },
      `not removed: ${mapping.protocol} ${mapping.internalPort} -> ${mapping.externalAddress ?? '?'}:${mapping.externalPort} (${mapping.method}): ${error.message}; it stays on the router ${stays}`)
  }
  out.error(new Error(`${left.length} mapping${left.length === 1 ? '' : 's'} could not be removed; natmapper unmap --all deletes them once the router answers again`))
  return 1
}

/** One line per event; counts instead of lines once there are many ports. Returns the last count shown. */
function report (nat: NAT, out: Output, total: number, records: Recorder): () => number | undefined {
  const many = total > PROGRESS_FROM
  const step = Math.max(1, Math.round(total / 10))
  let mapped = 0
  let unmapped = 0
  let shown: number | undefined
  nat.on('mapped', (m) => {
    records.add(m.protocol, m.internalPort, m.family)
    out.event('mapped', mappingFields(m), mappedLine('mapped', m))
    if (many && ++mapped % step === 0) {
      shown = mapped
      out.info(`mapped ${mapped}/${total}`)
    }
  })
  nat.on('renewed', (m) => {
    records.add(m.protocol, m.internalPort, m.family)
    out.event('renewed', mappingFields(m), mappedLine('renewed', m))
  })
  nat.on('lost', (e) => {
    out.event('lost', { protocol: e.protocol, internalPort: e.internalPort, reason: e.reason.message }, `lost ${e.protocol} ${e.internalPort}: ${e.reason.message}`)
  })
  nat.on('unmapped', (e) => {
    out.event('unmapped', { ...(e.family === 6 ? { family: 6 } : {}), protocol: e.protocol, internalPort: e.internalPort }, `unmapped ${e.protocol} ${e.internalPort}${e.family === 6 ? ' (IPv6)' : ''}`)
    if (many && ++unmapped % step === 0) out.info(`unmapped ${unmapped}`)
  })
  nat.on('external-address', (e) => {
    out.event('external-address', { address: e.address, previous: e.previous, public: e.addressClass === 'public' },
      e.previous === undefined ? `external address ${e.address}` : `external address is now ${e.address} (was ${e.previous})`)
  })
  nat.on('gateway-changed', (e) => {
    out.event('gateway-changed', { previous: e.previous, address: e.address, method: e.method, reason: e.reason }, `gateway changed to ${e.address} (${methodNames[e.method]}): ${e.reason}`)
  })
  nat.on('error', (err, key) => {
    const where = key === undefined ? '' : `${key.internalPort}/${key.protocol}: `
    out.event('error', { code: (err as { code?: string }).code, message: err.message, ...(key === undefined ? {} : { protocol: key.protocol, internalPort: key.internalPort }) }, `error: ${where}${err.message}`)
  })
  let warned = false
  // Known at discovery, or learnt later: from a mapping reply, a refusal, or the NAT's own
  // address request after a failed first mapping (miniupnpd behind a reserved WAN address).
  nat.on('not-public', (e) => {
    if (warned) return
    warned = true
    out.event('not-public', { reason: e.reason }, `warning: ${e.reason}; the mappings will not be reachable from the internet`)
  })
  return () => shown
}

/**
 * Keeps the state file in step with what the NAT holds, so that what a crash leaves can be deleted
 * later: written when a mapping or pinhole is made or renewed (a few at a time), dropped once deleted.
 */
class Recorder {
  readonly #nat: NAT
  readonly #gateway: string
  readonly #context: PinholeContext
  readonly #dirty = new Set<string>()
  /** Every port this process recorded, by family: only their records are its to drop. */
  readonly #mine = new Map<string, RecordKey>()
  #writing: Promise<void> = Promise.resolve()

  constructor (nat: NAT, gateway: string, context: PinholeContext) {
    this.#nat = nat
    this.#gateway = gateway
    this.#context = context
  }

  /** Whether this process mapped the port at some point. */
  made (protocol: string, internalPort: number): boolean {
    return [...this.#mine.values()].some((k) => k.protocol === protocol && k.internalPort === internalPort)
  }

  add (protocol: string, internalPort: number, family: AddressFamily): void {
    const key = `${family}:${protocol}/${internalPort}`
    const gateway = gatewayOfFamily(this.#nat, this.#gateway, family)
    if (gateway === undefined) return
    this.#mine.set(key, { family, gateway, protocol, internalPort })
    const first = this.#dirty.size === 0
    this.#dirty.add(key)
    // One write for the mappings that come together.
    if (first) this.#writing = this.#writing.then(async () => { await new Promise((resolve) => { setImmediate(resolve) }); await this.#flush() })
  }

  async #flush (): Promise<void> {
    const keys = [...this.#dirty]
    this.#dirty.clear()
    const records = this.#nat.mappings().filter((m) => keys.includes(`${m.family}:${m.protocol}/${m.internalPort}`)).flatMap((m) => {
      const gateway = gatewayOfFamily(this.#nat, this.#gateway, m.family)
      return gateway === undefined ? [] : [recordOf(gateway, m, m.family, this.#context)]
    })
    await rememberRecords(records).catch(() => {})
  }

  /** After close(): the records of what was deleted go; those of what is left stay (natmapper unmap). */
  async settle (left: LeftMapping[]): Promise<void> {
    await this.#writing
    if (this.#dirty.size > 0) await this.#flush()
    // A LeftMapping does not say its family: a pinhole's address opened is IPv6; when unknown both records stay.
    const stays = new Set(left.flatMap((l) => leftFamilies(l.mapping).map((family) => `${family}:${l.mapping.protocol}/${l.mapping.internalPort}`)))
    const gone = [...this.#mine].filter(([key]) => !stays.has(key)).map(([, port]) => port)
    await forgetRecords(gone).catch(() => {})
  }
}

function leftFamilies (mapping: LeftMapping['mapping']): AddressFamily[] {
  if (mapping.method === 'upnp-pinhole') return [6]
  if (mapping.externalAddress === undefined) return [4, 6]
  return [mapping.externalAddress.includes(':') ? 6 : 4]
}

/** The gateway a record of this family is kept under: the NAT's own, or its IPv6 side's. */
export function gatewayOfFamily (nat: NAT, gateway: string, family: AddressFamily): string | undefined {
  if (family === nat.family) return gateway
  return family === 6 ? nat.ipv6Gateway?.address : undefined
}

/** What the run cost the router, at exit: an NDJSON `stats` line with --json, a line on stderr otherwise. */
export function reportStats (nat: NAT, out: Output): void {
  const stats = nat.stats()
  if (out.json) out.event('stats', { ...stats }, '')
  else out.info(`requests: ${statsLine(stats)}`)
}
