import { UsageError } from '../errors.js'
import type { CallOptions, Gateway, PortMapping, TransportProtocol } from '../gateway.js'
import type { RequestSlots } from './slots.js'

/**
 * addMappings and removeMappings (NAT): many ports in one call, given one by one or as ranges,
 * checked before anything is sent, with one result per port. The requests go through the NAT's
 * request slots like any other (8 in flight per gateway, 4 for UPnP), so a range of 256 ports
 * is 256 requests a few at a time, never a burst; contiguous runs are deleted in one request
 * where the gateway can (Gateway.describe().unmapRange: UPnP IGD v2).
 */

/** One port (`externalPort` optional), or a range of internal ports `[first, last]` (inclusive). */
export type MappingRequest =
  | { readonly protocol: TransportProtocol, readonly port: number, readonly externalPort?: number | undefined }
  | { readonly protocol: TransportProtocol, readonly ports: readonly [number, number] }

/** What addMappings says of one port: the mapping made, or why there is none (yet). */
export type MappingResult =
  | { protocol: TransportProtocol, internalPort: number, mapping: PortMapping, error?: undefined }
  /** `retrying`: the NAT keeps the port and tries again in the background (keep mode), with `mapped` once it succeeds. */
  | { protocol: TransportProtocol, internalPort: number, mapping?: undefined, error: Error, retrying: boolean }

/** What removeMappings says of one port: deleted (no error), or why not. */
export interface RemovalResult { protocol: TransportProtocol, internalPort: number, error?: Error | undefined }

export interface BulkPort { protocol: TransportProtocol, internalPort: number, externalPort?: number | undefined }

/**
 * Ports one call takes at most: a bound against a typo (`1-65535`) becoming 65,535 mappings on
 * the router; routers hold a few hundred to a few thousand entries in all.
 */
export const MAX_BULK_PORTS = 4096

/** The requests as ports, in order, or a UsageError naming the request at fault: nothing is sent for a bad list. */
export function expandRequests (requests: unknown): BulkPort[] {
  if (!Array.isArray(requests)) throw new UsageError(`invalid mapping requests: expected an array of { protocol, port } or { protocol, ports: [first, last] }, got ${describe(requests)}`)
  const ports: BulkPort[] = []
  const seen = new Map<string, number>()
  requests.forEach((request: unknown, i) => {
    const where = `requests[${i}]`
    if (typeof request !== 'object' || request === null) throw new UsageError(`${where}: expected { protocol, port } or { protocol, ports: [first, last] }, got ${describe(request)}`)
    const r = request as Record<string, unknown>
    const protocol = r.protocol
    if (protocol !== 'tcp' && protocol !== 'udp') throw new UsageError(`${where}: invalid protocol ${describe(protocol)} (expected "tcp" or "udp")`)
    let first: number
    let last: number
    let externalPort: number | undefined
    if ('ports' in r) {
      if ('port' in r || 'externalPort' in r) throw new UsageError(`${where}: a range takes ports: [first, last] only, not port or externalPort`)
      const range = r.ports
      if (!Array.isArray(range) || range.length !== 2) throw new UsageError(`${where}: ports must be [first, last], got ${describe(range)}`)
      first = checkPort(range[0], `${where}: first port`)
      last = checkPort(range[1], `${where}: last port`)
      if (first > last) throw new UsageError(`${where}: range ${first}-${last} goes backwards (the first port must not be above the last)`)
    } else {
      first = last = checkPort(r.port, `${where}: port`)
      if (r.externalPort !== undefined) externalPort = checkPort(r.externalPort, `${where}: external port`)
    }
    if (ports.length + last - first + 1 > MAX_BULK_PORTS) throw new UsageError(`too many ports: at most ${MAX_BULK_PORTS} in one call (${where} brings the count to ${ports.length + last - first + 1})`)
    for (let port = first; port <= last; port++) {
      const key = `${protocol}/${port}`
      const earlier = seen.get(key)
      if (earlier !== undefined) throw new UsageError(`${where}: ${protocol} port ${port} is already asked for by requests[${earlier}]`)
      seen.set(key, i)
      ports.push({ protocol, internalPort: port, ...(externalPort === undefined ? {} : { externalPort }) })
    }
  })
  return ports
}

/** A mapping to delete, with the gateway it was made on and what to call with the outcome. */
export interface Removal {
  mapping: PortMapping
  gateway: Gateway
  done: (error: Error | undefined) => void
}

/**
 * Deletes each mapping through `slots`: a run of contiguous external ports of one protocol on
 * one gateway in one request where the gateway can (unmapRange), the rest one by one.
 */
export async function deleteAll (removals: Removal[], slots: RequestSlots, options: CallOptions): Promise<void> {
  const one = async (r: Removal): Promise<void> => {
    try {
      await slots.run(async () => { await r.gateway.unmap(r.mapping, options) }, options.signal)
      r.done(undefined)
    } catch (err) {
      r.done(err as Error)
    }
  }
  await Promise.all(runs(removals).map(async (run) => {
    const unmapRange = run[0]!.gateway.describe().unmapRange
    if (run.length > 1 && unmapRange !== undefined) {
      let deleted = false
      try {
        deleted = await slots.run(async () => await unmapRange(run.map((r) => r.mapping), options), options.signal)
      } catch (err) {
        // No answer, or aborted: the same would befall each delete; each is said so.
        for (const r of run) r.done(err as Error)
        return
      }
      if (deleted) {
        for (const r of run) r.done(undefined)
        return
      }
    }
    await Promise.all(run.map(one))
  }))
}

/** The removals as runs: same gateway and protocol, external ports that follow each other. */
function runs (removals: Removal[]): Removal[][] {
  const sorted = [...removals].sort((a, b) => a.mapping.protocol.localeCompare(b.mapping.protocol) || a.mapping.externalPort - b.mapping.externalPort)
  const out: Removal[][] = []
  for (const r of sorted) {
    const run = out.find((x) => {
      const last = x[x.length - 1]!
      return last.gateway === r.gateway && last.mapping.protocol === r.mapping.protocol && last.mapping.externalPort + 1 === r.mapping.externalPort
    })
    if (run !== undefined) run.push(r)
    else out.push([r])
  }
  return out
}

function checkPort (value: unknown, what: string): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1 || value > 65535) throw new UsageError(`${what}: ${describe(value)} is not a port (expected an integer from 1 to 65535)`)
  return value
}

function describe (value: unknown): string {
  if (typeof value === 'number') return String(value)
  if (value === undefined) return 'nothing'
  try {
    return JSON.stringify(value)?.slice(0, 60) ?? String(value)
  } catch {
    return typeof value
  }
}
