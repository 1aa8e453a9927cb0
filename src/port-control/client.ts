import { AbortError, TimeoutError, UncertainMappingError } from '../errors.js'
import type { GatewayAbilities, GatewayReset, MapResult, PortMapping } from '../gateway.js'
import type { PortControlServer } from './server.js'

/** What the PCP and NAT-PMP clients share: their server, its resets and announcements, and what an unanswered MAP leaves. */
export abstract class PortControlClient {
  readonly address: string
  protected readonly server: PortControlServer
  #closed = false

  constructor (address: string, server: PortControlServer) {
    this.address = address
    this.server = server.acquire()
  }

  onReset (listener: (reset: GatewayReset) => void): () => void {
    return this.server.onReset(listener)
  }

  describe (): GatewayAbilities {
    return {
      listen: async (options) => await this.server.listen(options?.portControl),
      counters: () => this.server.counters.snapshot()
    }
  }

  /** What a request's fate is told to, for the server's counters. */
  protected observe (protocol: 'pcp' | 'natpmp'): (event: 'sent' | 'retransmitted' | 'answered' | 'timeout') => void {
    return (event) => { this.server.counters.count(protocol, event) }
  }

  /** Counts an answer that refused. */
  protected countRefusal (protocol: 'pcp' | 'natpmp', resultCode: number, resultName: string): void {
    this.server.counters.count(protocol, 'refused', `${resultName} (${resultCode})`)
  }

  /** Lets go of the server (closed once its last client is). Idempotent. */
  close (): void {
    if (this.#closed) return
    this.#closed = true
    this.server.release()
  }

  /**
   * A MAP request, sent by `send`. Sent and unanswered (no reply in time, an abort after it left),
   * it may have been applied all the same: the error then carries `asked`, what a delete needs.
   */
  protected async mapOrUncertain (asked: Omit<PortMapping, 'grantedAtMs' | 'expiresAtMs'>, send: (onSent: () => void) => Promise<PortMapping>): Promise<MapResult> {
    let sent = false
    try {
      return { mapping: await send(() => { sent = true }) }
    } catch (err) {
      if (!sent || !(err instanceof TimeoutError || err instanceof AbortError)) throw err
      const nowMs = this.server.clock.now()
      throw new UncertainMappingError({ ...asked, grantedAtMs: nowMs, expiresAtMs: nowMs + asked.lifetimeSeconds * 1000 }, err)
    }
  }
}
