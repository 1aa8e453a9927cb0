import { test } from 'node:test'
import assert from 'node:assert/strict'
import { FakeClock } from '../../src/testing/fake-clock.js'
import { sleep } from '../../src/clock.js'
import { AbortError } from '../../src/errors.js'

test('timers fire in due order as time advances, and not before', async () => {
  const clock = new FakeClock()
  const fired: string[] = []
  clock.setTimeout(() => fired.push('b'), 200)
  clock.setTimeout(() => fired.push('a'), 100)
  const c = clock.setTimeout(() => fired.push('c'), 150)
  clock.clearTimeout(c)
  await clock.advance(99)
  assert.deepEqual(fired, [])
  await clock.advance(1)
  assert.deepEqual(fired, ['a'])
  assert.equal(clock.now(), 100)
  await clock.advance(1000)
  assert.deepEqual(fired, ['a', 'b'])
  assert.equal(clock.pendingTimers, 0)
})

test('promise continuations after a timer run before the next timer', async () => {
  const clock = new FakeClock()
  const seen: number[] = []
  const loop = (async () => {
    for (let i = 0; i < 3; i++) {
      await sleep(clock, 1000)
      seen.push(clock.now())
    }
  })()
  await clock.advance(3000)
  await loop
  assert.deepEqual(seen, [1000, 2000, 3000])
})

test('sleep rejects with AbortError when the signal fires', async () => {
  const clock = new FakeClock()
  const controller = new AbortController()
  const pending = sleep(clock, 1000, controller.signal)
  controller.abort()
  await assert.rejects(pending, AbortError)
  assert.equal(clock.pendingTimers, 0)
})
