import type { Clock, TimerHandle } from '../clock.js'
import { AbortError, NoResponseError, NotAskedError } from '../errors.js'
import type { MappingMethod } from '../gateway.js'

/**
 * The order of discovery's probes: when one may start after another (natpmpAfterPcp), and which
 * answer wins (pickBest). Kept apart from discover.ts, which sets the probes up.
 */

/**
 * How long, from the start of discovery, PCP may take before NAT-PMP is asked anyway in
 * discoverNAT's quick discovery (natpmpAfterPcp), and PCP and NAT-PMP before UPnP (upnpAfterOthers).
 */
export const HEAD_START_MS = 25

/**
 * discoverNAT's quick discovery asks PCP alone first: resolves with its answer if it comes within
 * `headStartMs`, or undefined when PCP failed or is still silent then (the other probes start).
 */
export async function pcpFirst<T> (pcp: Promise<T>, headStartMs: number, clock: Clock): Promise<T | undefined> {
  let timer: TimerHandle | undefined
  try {
    return await new Promise<T | undefined>((resolve) => {
      timer = clock.setTimeout(() => { resolve(undefined) }, headStartMs)
      pcp.then(resolve, () => { resolve(undefined) })
    })
  } finally {
    if (timer !== undefined) clock.clearTimeout(timer)
  }
}

/**
 * When the NAT-PMP probe may go, in discoverNAT's quick discovery. PCP servers answer NAT-PMP
 * too (RFC 6887 §9), on the same port, so asking both costs a PCP router a request and the
 * client a second socket for nothing but the external address, which the first MAP reply
 * carries anyway (the NAT asks for it after the first mapping otherwise). So NAT-PMP is asked
 * when PCP turns out unusable (a NAT-PMP-only server's UNSUPP_VERSION, garbage, a refusal), or
 * has not answered within the head start; not when PCP answered, nor when port 5351 refused
 * PCP (ICMP port unreachable: NAT-PMP, on the same port, would be refused as well).
 */
export async function natpmpAfterPcp (pcp: Promise<unknown>, signal: AbortSignal, decided: Promise<void>, headStartMs: number, clock: Clock): Promise<void> {
  await waitForTurn(clock, signal, decided, headStartMs, false, (go, skip) => {
    pcp.then(() => { skip(new NotAskedError('not asked: PCP answered')) }, (err: unknown) => {
      if (err instanceof NoResponseError) skip(new NotAskedError(`not asked: ${err.message}`, { cause: err }))
      else go()
    })
  })
}

/**
 * When the UPnP probe may go. PCP and NAT-PMP answer within a few ms, or fail at once with ICMP
 * unreachable; SSDP means several M-SEARCHes for the router and 50 ms or more before an answer. So
 * UPnP starts when the other probes have all failed, or after a short head start, and a gateway
 * that speaks PCP never sees a search (router load; quirk 41 of the reference list). It is not
 * asked at all once discovery has chosen an answer (`decided`).
 */
export async function upnpAfterOthers (others: Array<Promise<unknown>>, signal: AbortSignal, decided: Promise<void>, headStartMs: number, clock: Clock): Promise<void> {
  // Its timer holds the process while nothing else does (answered probes leave their sockets
  // unref'd), and goes when discovery ends, so it does not hold a finished CLI either.
  await waitForTurn(clock, signal, decided, headStartMs, true, (go) => {
    // Settles only if every other probe failed: an answer leaves it pending for ever.
    void Promise.all(others.map(async (p) => { await p.then(async () => { await new Promise(() => {}) }, () => {}) })).then(go)
  })
}

/**
 * A probe's wait for its turn: it goes when `headStartMs` have passed or when `watch` calls `go`
 * first, and ends unasked when `watch` calls `skip`, the signal aborts, or discovery has chosen
 * an answer (`decided`).
 */
async function waitForTurn (clock: Clock, signal: AbortSignal, decided: Promise<void>, headStartMs: number, holdsProcess: boolean,
  watch: (go: () => void, skip: (err: Error) => void) => void): Promise<void> {
  let timer: TimerHandle | undefined
  try {
    await new Promise<void>((resolve, reject) => {
      if (signal.aborted) {
        reject(new AbortError(signal.reason))
        return
      }
      timer = clock.setTimeout(resolve, headStartMs)
      if (!holdsProcess) timer.unref?.()
      signal.addEventListener('abort', () => { reject(new AbortError(signal.reason)) }, { once: true })
      watch(() => { resolve() }, reject)
      void decided.then(() => { reject(new NotAskedError('not asked: another protocol answered first')) })
    })
  } finally {
    if (timer !== undefined) clock.clearTimeout(timer)
  }
}

/**
 * Resolves with the best-ranked probe that succeeded, as soon as no better-ranked probe can
 * still succeed, or once the grace (graceLeftMs) is over after a worse one succeeded. Undefined
 * if all fail.
 */
export async function pickBest<T> (probes: Array<{ method: MappingMethod, settled: Promise<T> }>, signal: AbortSignal, clock: Clock, graceLeftMs: () => number): Promise<{ method: MappingMethod, value: T } | undefined> {
  const state = probes.map(() => ({ done: false, value: undefined as T | undefined }))
  return await new Promise((resolve) => {
    let graceTimer: TimerHandle | undefined
    const decide = (force: boolean): boolean => {
      for (let i = 0; i < probes.length; i++) {
        const s = state[i]!
        if (!s.done) {
          if (!force) return false
          continue
        }
        if (s.value !== undefined) {
          if (graceTimer !== undefined) clock.clearTimeout(graceTimer)
          resolve({ method: probes[i]!.method, value: s.value })
          return true
        }
      }
      if (state.every((s) => s.done) || force) {
        if (graceTimer !== undefined) clock.clearTimeout(graceTimer)
        resolve(undefined)
        return true
      }
      return false
    }
    probes.forEach((probe, i) => {
      probe.settled.then((value) => { state[i]!.done = true; state[i]!.value = value }, () => { state[i]!.done = true })
        .finally(() => {
          if (decide(false)) return
          if (state.some((s) => s.value !== undefined) && graceTimer === undefined) {
            graceTimer = clock.setTimeout(() => { decide(true) }, graceLeftMs())
          }
        })
    })
    if (signal.aborted) decide(true)
    else signal.addEventListener('abort', () => { decide(true) }, { once: true })
  })
}
