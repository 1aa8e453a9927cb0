// The order of discovery's probes, on a fake clock: when NAT-PMP and UPnP may go, and which answer wins.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { AbortError, NoResponseError, NotAskedError, TimeoutError } from '../../src/errors.js'
import { HEAD_START_MS, natpmpAfterPcp, pcpFirst, pickBest, upnpAfterOthers } from '../../src/discover/probe-order.js'
import { FakeClock } from '../../src/testing/fake-clock.js'

/** A promise settled from outside. */
function pending<T> (): { promise: Promise<T>, resolve: (v: T) => void, reject: (e: Error) => void } {
  let resolve!: (v: T) => void
  let reject!: (e: Error) => void
  const promise = new Promise<T>((res, rej) => { resolve = res; reject = rej })
  return { promise, resolve, reject }
}

/** 'pending', 'go' or the error's name once `p` settles, read after the clock has run. */
function track (p: Promise<unknown>): () => string {
  let state = 'pending'
  p.then(() => { state = 'go' }, (err: Error) => { state = err instanceof NotAskedError ? `not asked: ${err.message}` : err.name })
  return () => state
}

test('pcpFirst: the PCP answer within the head start is the answer; silence or a failure hands over to the others', async () => {
  const clock = new FakeClock()
  const answered = pending<string>()
  const first = pcpFirst(answered.promise, HEAD_START_MS, clock)
  answered.resolve('pcp client')
  assert.equal(await first, 'pcp client')

  const silent = pending<string>()
  const second = track(pcpFirst(silent.promise, HEAD_START_MS, clock).then((v) => { if (v !== undefined) throw new Error(v) }))
  await clock.advance(HEAD_START_MS - 1)
  assert.equal(second(), 'pending', 'still within the head start')
  await clock.advance(1)
  assert.equal(second(), 'go', 'undefined at the end of the head start')

  const failed = pending<string>()
  const third = pcpFirst(failed.promise, HEAD_START_MS, clock)
  failed.reject(new TimeoutError('garbage'))
  assert.equal(await third, undefined)
  assert.equal(clock.pendingTimers, 0, 'no timer left behind')
})

for (const { what, settle, expected } of [
  { what: 'PCP answered: NAT-PMP is not asked', settle: (p: ReturnType<typeof pending<unknown>>) => { p.resolve('pcp') }, expected: 'not asked: not asked: PCP answered' },
  { what: 'PCP refused by ICMP: NAT-PMP, on the same port, would be too', settle: (p: ReturnType<typeof pending<unknown>>) => { p.reject(new NoResponseError('refused')) }, expected: 'not asked: not asked: refused' },
  { what: 'PCP unusable (UNSUPP_VERSION, garbage): NAT-PMP goes at once', settle: (p: ReturnType<typeof pending<unknown>>) => { p.reject(new TimeoutError('UNSUPP_VERSION')) }, expected: 'go' }
]) {
  test(`natpmpAfterPcp: ${what}`, async () => {
    const clock = new FakeClock()
    const pcp = pending<unknown>()
    const state = track(natpmpAfterPcp(pcp.promise, new AbortController().signal, new Promise(() => {}), HEAD_START_MS, clock))
    settle(pcp)
    await clock.advance(0)
    assert.equal(state(), expected)
  })
}

test('natpmpAfterPcp: a silent PCP server gets NAT-PMP asked at the end of the head start; an abort or a decision ends the wait unasked', async () => {
  const clock = new FakeClock()
  const silent = track(natpmpAfterPcp(new Promise(() => {}), new AbortController().signal, new Promise(() => {}), HEAD_START_MS, clock))
  await clock.advance(HEAD_START_MS - 1)
  assert.equal(silent(), 'pending')
  await clock.advance(1)
  assert.equal(silent(), 'go')

  const controller = new AbortController()
  const aborted = track(natpmpAfterPcp(new Promise(() => {}), controller.signal, new Promise(() => {}), HEAD_START_MS, clock))
  controller.abort()
  await clock.advance(0)
  assert.equal(aborted(), 'AbortError')

  let decide = (): void => {}
  const decided = track(natpmpAfterPcp(new Promise(() => {}), new AbortController().signal, new Promise<void>((resolve) => { decide = resolve }), HEAD_START_MS, clock))
  decide()
  await clock.advance(0)
  assert.equal(decided(), 'not asked: not asked: another protocol answered first')
  assert.equal(clock.pendingTimers, 0)
})

test('upnpAfterOthers: UPnP goes once every other probe failed, or at the end of the head start; an answer elsewhere keeps it waiting until the decision', async () => {
  const clock = new FakeClock()
  const pcp = pending<unknown>()
  const natpmp = pending<unknown>()
  const bothFailed = track(upnpAfterOthers([pcp.promise, natpmp.promise], new AbortController().signal, new Promise(() => {}), HEAD_START_MS, clock))
  pcp.reject(new NoResponseError('refused'))
  await clock.advance(0)
  assert.equal(bothFailed(), 'pending', 'one failure is not enough')
  natpmp.reject(new NoResponseError('refused'))
  await clock.advance(0)
  assert.equal(bothFailed(), 'go', 'both failed: at once, before the head start is over')

  let decide = (): void => {}
  const answered = pending<unknown>()
  const waiting = track(upnpAfterOthers([answered.promise], new AbortController().signal, new Promise<void>((resolve) => { decide = resolve }), 1000, clock))
  answered.resolve('pcp')
  await clock.advance(999)
  assert.equal(waiting(), 'pending', 'an answer does not let UPnP go')
  decide()
  await clock.advance(0)
  assert.equal(waiting(), 'not asked: not asked: another protocol answered first')

  const slow = track(upnpAfterOthers([new Promise(() => {})], new AbortController().signal, new Promise(() => {}), HEAD_START_MS, clock))
  await clock.advance(HEAD_START_MS)
  assert.equal(slow(), 'go', 'silence: at the end of the head start')
})

test('pickBest: the best-ranked success once no better one can come; a worse one after the grace; undefined when all fail or on abort', async () => {
  const clock = new FakeClock()
  const grace = (ms: number) => (): number => Math.max(0, ms - clock.now())
  // PCP fails, NAT-PMP answers, UPnP still running: NAT-PMP is the best that can still answer.
  {
    const [pcp, natpmp, upnp] = [pending<string>(), pending<string>(), pending<string>()]
    const best = pickBest([{ method: 'pcp', settled: pcp.promise }, { method: 'natpmp', settled: natpmp.promise }, { method: 'upnp', settled: upnp.promise }], new AbortController().signal, clock, grace(150))
    pcp.reject(new TimeoutError('x'))
    natpmp.resolve('natpmp client')
    assert.deepEqual(await best, { method: 'natpmp', value: 'natpmp client' })
  }
  // UPnP answers while PCP may still: it waits out the grace, then wins.
  {
    const start = clock.now()
    const [pcp, upnp] = [pending<string>(), pending<string>()]
    let result: unknown = 'pending'
    void pickBest([{ method: 'pcp', settled: pcp.promise }, { method: 'upnp', settled: upnp.promise }], new AbortController().signal, clock, grace(start + 150)).then((r) => { result = r })
    upnp.resolve('upnp client')
    await clock.advance(149)
    assert.equal(result, 'pending', 'PCP may still answer within the grace')
    await clock.advance(1)
    assert.deepEqual(result, { method: 'upnp', value: 'upnp client' })
  }
  // A better answer within the grace wins over the worse one in hand.
  {
    const start = clock.now()
    const [pcp, upnp] = [pending<string>(), pending<string>()]
    const best = pickBest([{ method: 'pcp', settled: pcp.promise }, { method: 'upnp', settled: upnp.promise }], new AbortController().signal, clock, grace(start + 150))
    upnp.resolve('upnp client')
    await clock.advance(100)
    pcp.resolve('pcp client')
    assert.deepEqual(await best, { method: 'pcp', value: 'pcp client' })
  }
  // All fail; or the signal aborts while nothing has answered.
  {
    const [pcp, natpmp] = [pending<string>(), pending<string>()]
    const none = pickBest([{ method: 'pcp', settled: pcp.promise }, { method: 'natpmp', settled: natpmp.promise }], new AbortController().signal, clock, grace(0))
    pcp.reject(new TimeoutError('x'))
    natpmp.reject(new AbortError())
    assert.equal(await none, undefined)
    const controller = new AbortController()
    const aborted = pickBest([{ method: 'pcp', settled: new Promise<string>(() => {}) }], controller.signal, clock, grace(0))
    controller.abort()
    assert.equal(await aborted, undefined)
  }
  assert.equal(clock.pendingTimers, 0, 'no grace timer left behind')
})
