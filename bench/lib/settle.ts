import type { Clock, TimerHandle } from '../../src/clock.js'

/**
 * A Clock for running a client against a real router over a long simulated horizon: virtual
 * time jumps from one timer to the next, and after each timer fires, real time passes until
 * no request is in flight (no referenced UDP socket: natmapper refs its gateway socket only
 * while it waits for an answer), so the router's real answers arrive before the next jump and
 * retransmission timers are not fired early. natmapper/testing's FakeClock gives only a few
 * event-loop turns between timers, which is enough on loopback but not over the lab's veth.
 */
interface Timer extends TimerHandle {
  dueMs: number
  seq: number
  callback: () => void
}

export class SteppedClock implements Clock {
  #nowMs: number
  #seq = 0
  #timers: Timer[] = []

  constructor (startMs = performance.now()) {
    this.#nowMs = startMs
  }

  now (): number {
    return this.#nowMs
  }

  setTimeout (callback: () => void, delayMs: number): TimerHandle {
    const timer: Timer = { dueMs: this.#nowMs + Math.max(0, delayMs), seq: this.#seq++, callback, unref () {} }
    this.#timers.push(timer)
    return timer
  }

  clearTimeout (handle: TimerHandle): void {
    this.#timers = this.#timers.filter((t) => t !== handle)
  }

  /** Advances virtual time by `ms`, firing timers in due order and letting real I/O settle after each. */
  async runFor (ms: number, settle: () => Promise<void>): Promise<number> {
    const targetMs = this.#nowMs + ms
    let fired = 0
    await settle()
    for (;;) {
      let next: Timer | undefined
      for (const t of this.#timers) if (next === undefined || t.dueMs < next.dueMs || (t.dueMs === next.dueMs && t.seq < next.seq)) next = t
      if (next === undefined || next.dueMs > targetMs) break
      this.#timers = this.#timers.filter((t) => t !== next)
      this.#nowMs = Math.max(this.#nowMs, next.dueMs)
      next.callback()
      fired++
      await settle()
    }
    this.#nowMs = targetMs
    return fired
  }
}

// Taken at load time: a runner may later replace the global with node:test's mock timers.
const realSetTimeout = globalThis.setTimeout

/** Real time passes until `busy()` is false (at most `capMs`), in small steps. */
export async function settleWhile (busy: () => boolean, capMs = 3000): Promise<void> {
  const deadline = performance.now() + capMs
  await new Promise<void>((resolve) => { setImmediate(resolve) })
  while (busy() && performance.now() < deadline) {
    await new Promise<void>((resolve) => { realSetTimeout(resolve, 1) })
  }
}

/** Handles of these types mean a request is in flight (UDP for natmapper, TCP for HTTP/SOAP). */
export function activeNetworkHandles (types: string[]): number {
  return process.getActiveResourcesInfo().filter((r) => types.includes(r)).length
}
