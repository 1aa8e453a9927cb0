import { channel } from 'node:diagnostics_channel'
import type { MappingMethod, ProtocolCounters } from './gateway.js'

/**
 * Counting a gateway's requests (tailscale keeps 26 such counters to diagnose routers). Each event
 * is also published on the `natmapper:request` diagnostics channel, for APM tools.
 */

export type RequestEvent = 'sent' | 'retransmitted' | 'answered' | 'timeout' | 'refused'

/** What `natmapper:request` carries. */
export interface RequestMessage {
  protocol: MappingMethod
  gateway: string
  event: RequestEvent
  /** For 'refused': the result, as in ProtocolCounters.refusals. */
  result?: string
}

export const requestChannel = channel('natmapper:request')

/** Each NAT event (mapped, renewed, lost, unmapped, external-address, gateway-changed, not-public, error): `{ event, gateway, method, detail }`. */
export const natChannel = channel('natmapper:nat')

/** Counters per protocol for one gateway (the PCP/NAT-PMP server counts both of its protocols). */
export class RequestCounters {
  readonly #gateway: string
  readonly #counts = new Map<MappingMethod, ProtocolCounters>()

  constructor (gateway: string) {
    this.#gateway = gateway
  }

  count (protocol: MappingMethod, event: RequestEvent, result?: string): void {
    let c = this.#counts.get(protocol)
    if (c === undefined) this.#counts.set(protocol, c = { requests: 0, retransmissions: 0, answers: 0, timeouts: 0, refusals: {} })
    switch (event) {
      case 'sent': c.requests++; break
      case 'retransmitted': c.retransmissions++; break
      case 'answered': c.answers++; break
      case 'timeout': c.timeouts++; break
      case 'refused': c.refusals[result ?? '?'] = (c.refusals[result ?? '?'] ?? 0) + 1; break
    }
    if (requestChannel.hasSubscribers) {
      const message: RequestMessage = { protocol, gateway: this.#gateway, event, ...(result === undefined ? {} : { result }) }
      requestChannel.publish(message)
    }
  }

  /** A copy of the counts so far. */
  snapshot (): Partial<Record<MappingMethod, ProtocolCounters>> {
    return Object.fromEntries([...this.#counts].map(([protocol, c]) => [protocol, { ...c, refusals: { ...c.refusals } }]))
  }
}

/** Adds `b` into `a`, protocol by protocol. */
export function addCounters (a: Partial<Record<MappingMethod, ProtocolCounters>>, b: Partial<Record<MappingMethod, ProtocolCounters>>): Partial<Record<MappingMethod, ProtocolCounters>> {
  const out = { ...a }
  for (const [protocol, c] of Object.entries(b) as Array<[MappingMethod, ProtocolCounters]>) {
    const prev = out[protocol]
    if (prev === undefined) {
      out[protocol] = { ...c, refusals: { ...c.refusals } }
      continue
    }
    const refusals = { ...prev.refusals }
    for (const [k, n] of Object.entries(c.refusals)) refusals[k] = (refusals[k] ?? 0) + n
    out[protocol] = { requests: prev.requests + c.requests, retransmissions: prev.retransmissions + c.retransmissions, answers: prev.answers + c.answers, timeouts: prev.timeouts + c.timeouts, refusals }
  }
  return out
}
