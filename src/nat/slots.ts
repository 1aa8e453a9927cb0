import { AbortError, ClosedError } from '../errors.js'

/**
 * A bound on the manager's requests in flight to its gateway. 1,000 ports asked at once must not
 * become 1,000 requests: a router works through them one at a time (miniupnpd walks its whole
 * rule set for each), so most would time out queued in the router or in our socket, and be
 * retransmitted, while the router still applies them after we gave up. A request waits for a
 * slot before it is sent, and its timeout starts only then.
 */
export class RequestSlots {
  readonly #limit: number
  #busy = 0
  readonly #waiting: Array<{ go: () => void, fail: (err: Error) => void }> = []
  #closed = false

  constructor (limit: number) {
    this.#limit = Math.max(1, limit)
  }

  /** Waits for a slot; the returned function gives it back. Rejects on abort, or once closed. */
  async acquire (signal?: AbortSignal): Promise<() => void> {
    if (this.#closed) throw new ClosedError('NAT')
    if (signal?.aborted === true) throw new AbortError(signal.reason)
    if (this.#busy < this.#limit) {
      this.#busy++
      return this.#releaser()
    }
    await new Promise<void>((resolve, reject) => {
      const onAbort = (): void => { waiter.fail(new AbortError(signal?.reason)) }
      const waiter = {
        go: () => {
          signal?.removeEventListener('abort', onAbort)
          resolve()
        },
        fail: (err: Error) => {
          const i = this.#waiting.indexOf(waiter)
          if (i !== -1) this.#waiting.splice(i, 1)
          signal?.removeEventListener('abort', onAbort)
          reject(err)
        }
      }
      signal?.addEventListener('abort', onAbort, { once: true })
      this.#waiting.push(waiter)
    })
    return this.#releaser()
  }

  /** Requests waiting for a slot. */
  get waiting (): number { return this.#waiting.length }

  /** Turns away every waiting request (they were never sent) and any later one. */
  close (): void {
    this.#closed = true
    for (const waiter of [...this.#waiting]) waiter.fail(new ClosedError('NAT'))
  }

  /** Runs `fn` in a slot. */
  async run<T> (fn: () => Promise<T>, signal?: AbortSignal): Promise<T> {
    const release = await this.acquire(signal)
    try {
      return await fn()
    } finally {
      release()
    }
  }

  #releaser (): () => void {
    let released = false
    return () => {
      if (released) return
      released = true
      const next = this.#waiting.shift()
      if (next === undefined) this.#busy--
      else next.go()
    }
  }
}
