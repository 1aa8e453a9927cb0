import { setMaxListeners } from 'node:events'
import { AbortError } from './errors.js'

/**
 * Time enters natmapper through this interface only, so that retransmission, renewal and
 * epoch checks can be driven by a fake clock in tests (see natmapper/testing's FakeClock)
 * instead of real sleeps.
 */
export interface Clock {
  /** Milliseconds on a monotonic scale; only differences are meaningful. */
  now(): number
  setTimeout(callback: () => void, delayMs: number): TimerHandle
  clearTimeout(handle: TimerHandle): void
}

export interface TimerHandle {
  /** Keeps a real timer from holding the process open; a no-op on fake clocks. */
  unref?(): void
}

export const systemClock: Clock = {
  now: () => performance.now(),
  setTimeout: (callback, delayMs) => setTimeout(callback, delayMs),
  clearTimeout: (handle) => { clearTimeout(handle as ReturnType<typeof setTimeout>) }
}

/**
 * Resolves after `delayMs` on the given clock, or rejects with the signal's AbortError.
 */
export async function sleep (clock: Clock, delayMs: number, signal?: AbortSignal): Promise<void> {
  if (signal?.aborted === true) throw new AbortError(signal.reason)
  await new Promise<void>((resolve, reject) => {
    const onAbort = (): void => {
      clock.clearTimeout(handle)
      reject(new AbortError(signal?.reason))
    }
    const handle = clock.setTimeout(() => {
      signal?.removeEventListener('abort', onAbort)
      resolve()
    }, delayMs)
    signal?.addEventListener('abort', onAbort, { once: true })
  })
}

/** A signal that aborts after a delay on a clock, or with a parent signal, whichever comes first. */
export interface Deadline {
  readonly signal: AbortSignal
  /** Aborts now (a decision was made: whatever still waits on the signal stops). */
  abort: (reason?: unknown) => void
  /** Stops the timer and lets go of the parent signal; the signal stays as it is. */
  cancel: () => void
}

/**
 * AbortSignal.timeout and AbortSignal.any on an injected clock: `reason()` is the abort reason at
 * the deadline; the parent's reason passes through. The timer does not hold the process open.
 */
export function deadline (clock: Clock, delayMs: number, reason: () => unknown, parent?: AbortSignal): Deadline {
  const controller = new AbortController()
  // Every request of a close() or a rediscovery listens to one such signal: hundreds at once are normal.
  setMaxListeners(0, controller.signal)
  const onParentAbort = (): void => { controller.abort(parent?.reason) }
  const timer = clock.setTimeout(() => {
    parent?.removeEventListener('abort', onParentAbort)
    controller.abort(reason())
  }, delayMs)
  timer.unref?.()
  const cancel = (): void => {
    clock.clearTimeout(timer)
    parent?.removeEventListener('abort', onParentAbort)
  }
  if (parent?.aborted === true) onParentAbort()
  else parent?.addEventListener('abort', onParentAbort, { once: true })
  return {
    signal: controller.signal,
    abort: (why) => {
      cancel()
      controller.abort(why)
    },
    cancel
  }
}

/** Runs `callback` on the clock once the current turn's work (I/O already queued, promise callbacks) is done. */
export function nextTurn (clock: Clock, callback: () => void): TimerHandle {
  const timer = clock.setTimeout(callback, 0)
  timer.unref?.()
  return timer
}
