import type { AddressFamily } from '../gateway.js'
import type { MappingEvent, NatStats } from '../nat/nat.js'

/** An event, or a mapping (family absent: IPv4, or told by its address). */
type Shown = Omit<MappingEvent, 'family'> & { family?: AddressFamily }

/** What `map` prints of a mapping, and what it asks for; shared by its once and keep modes. */

export interface MapRequest { lifetimeSeconds: number, externalPort: number | undefined, description: string }

export function mappingFields (m: Shown): Record<string, unknown> {
  return {
    ...(m.family === 6 ? { family: 6 } : {}),
    protocol: m.protocol, internalPort: m.internalPort, externalAddress: m.externalAddress,
    externalPort: m.externalPort, method: m.method, lifetime: m.lifetimeSeconds
  }
}

export function mappedLine (verb: string, m: Shown): string {
  // An IPv6 pinhole opens the host's own address: shown [address]:port, and said.
  const where = m.family === 6 ? `[${m.externalAddress ?? '?'}]:${m.externalPort}` : `${m.externalAddress ?? '?'}:${m.externalPort}`
  return `${verb} ${m.protocol} ${m.internalPort} -> ${where} (${m.family === 6 ? 'IPv6 ' : ''}${m.method}, lifetime ${m.lifetimeSeconds} s)`
}

/** nat.stats() in a line for people: "pcp: 12 requests, 12 answers, 0 timeouts; 3 renewals, 0 lost". */
export function statsLine (stats: NatStats): string {
  const protocols = Object.entries(stats.protocols).map(([protocol, c]) => {
    const refusals = Object.entries(c.refusals).map(([result, n]) => `${n} ${result}`).join(', ')
    return `${protocol}: ${c.requests} requests, ${c.answers} answers, ${c.timeouts} timeouts, ${c.retransmissions} retransmissions${refusals === '' ? '' : `, refused: ${refusals}`}`
  })
  return `${[...protocols, `${stats.mapped} mapped, ${stats.renewals} renewals, ${stats.lost} lost, ${stats.recoveries} recoveries, ${stats.rediscoveries} rediscoveries`].join('; ')}`
}
