import type { Clock, TimerHandle } from '../clock.js'

/** The largest delay Node's timers accept: 2^31 - 1 ms, about 24.8 days. */
export const MAX_TIMER_MS = 2 ** 31 - 1

interface FakeTimer extends TimerHandle {
  dueMs: number
  seq: number
  callback: () => void
  cancelled: boolean
}

/**
 * A Clock whose time moves only when a test calls advance(). Timers run in due order, and
 * pending promise callbacks settle between timers, so code that awaits after a timer fires
 * behaves as it would in real time. Nothing global is patched.
 */
export class FakeClock implements Clock {
  #nowMs: number
  #seq = 0
  #timers: FakeTimer[] = []

  constructor (startMs = 0) {
    this.#nowMs = startMs
  }

  now (): number {
    return this.#nowMs
  }

  setTimeout (callback: () => void, delayMs: number): TimerHandle {
    // As Node does: a delay beyond a signed 32-bit millisecond count, or not a number, becomes
    // 1 ms (with a TimeoutOverflowWarning there), so tests catch the same overflow bugs.
    const effectiveMs = !(delayMs >= 1 && delayMs <= MAX_TIMER_MS) ? (delayMs > MAX_TIMER_MS || Number.isNaN(delayMs) ? 1 : Math.max(0, delayMs)) : delayMs
    const timer: FakeTimer = {
      dueMs: this.#nowMs + effectiveMs,
      seq: this.#seq++,
      callback,
      cancelled: false,
      unref () {}
    }
    this.#timers.push(timer)
    return timer
  }

  clearTimeout (handle: TimerHandle): void {
    const timer = handle as FakeTimer
    timer.cancelled = true
    this.#timers = this.#timers.filter((t) => t !== timer)
  }

  /** Timers not yet fired. */
  get pendingTimers (): number {
    return this.#timers.length
  }

  /** Moves time forward by `ms`, firing every timer that falls due on the way. */
  async advance (ms: number): Promise<void> {
    const targetMs = this.#nowMs + ms
    await settle()
    for (;;) {
      const next = this.#earliest()
      if (next === undefined || next.dueMs > targetMs) break
      this.#timers = this.#timers.filter((t) => t !== next)
      this.#nowMs = Math.max(this.#nowMs, next.dueMs)
      next.callback()
      await settle()
    }
    this.#nowMs = targetMs
    await settle()
  }

  /** Fires timers until none is left or `maxMs` has passed; returns the time advanced. */
  async runAll (maxMs = 24 * 3600_000): Promise<number> {
    const startMs = this.#nowMs
    for (;;) {
      const next = this.#earliest()
      if (next === undefined || next.dueMs - startMs > maxMs) break
      await this.advance(next.dueMs - this.#nowMs)
    }
    return this.#nowMs - startMs
  }

  #earliest (): FakeTimer | undefined {
    let best: FakeTimer | undefined
    for (const t of this.#timers) {
      if (best === undefined || t.dueMs < best.dueMs || (t.dueMs === best.dueMs && t.seq < best.seq)) best = t
    }
    return best
  }
}

/**
 * Lets pending promise callbacks and I/O that is already under way run. A request and its
 * answer over loopback between two sockets of this process take a few turns of the event loop
 * (send, the server's read and reply, the client's read), so several turns are given.
 */
async function settle (): Promise<void> {
  for (let i = 0; i < 8; i++) await new Promise<void>((resolve) => { setImmediate(resolve) })
}
