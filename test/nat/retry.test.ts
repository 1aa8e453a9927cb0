import { test } from 'node:test'
import assert from 'node:assert/strict'
import { GatewayRefusedError, NoResponseError, TimeoutError } from '../../src/errors.js'
import { isNotAuthorized, nextRecoveryStreak, recoveryHoldMs, rediscoveryIntervalMs, retryDelayMs } from '../../src/nat/retry.js'

test('retry waits: doubling from 5 s to 5 min; after a refused connection from 1 s; a refusal with a lifetime waits it out', () => {
  const timeout = new TimeoutError('no answer')
  assert.deepEqual([1, 2, 3, 4, 7, 8, 9, 100].map((n) => retryDelayMs(n, timeout)), [5_000, 10_000, 20_000, 40_000, 300_000, 300_000, 300_000, 300_000])
  const refused = new NoResponseError('refused')
  assert.deepEqual([1, 2, 3, 10].map((n) => retryDelayMs(n, refused)), [1_000, 2_000, 4_000, 300_000])
  // PCP NO_RESOURCES (8) with a 30 s lifetime: asking sooner gets the same answer (RFC 6887 §7.4).
  assert.equal(retryDelayMs(1, new GatewayRefusedError('pcp', 8, 'NO_RESOURCES', undefined, 30)), 30_000)
})

test('NOT_AUTHORIZED (PCP/NAT-PMP 2, UPnP 606) is a router setting: 15 min, doubling to 4 h, never below its lifetime', () => {
  const pcp = new GatewayRefusedError('pcp', 2, 'NOT_AUTHORIZED')
  const upnp = new GatewayRefusedError('upnp', 606, 'Action not authorized')
  assert.ok(isNotAuthorized(pcp) && isNotAuthorized(upnp))
  assert.ok(!isNotAuthorized(new GatewayRefusedError('upnp', 2, 'x')) && !isNotAuthorized(new TimeoutError('x')))
  assert.deepEqual([1, 2, 5, 6, 50].map((n) => retryDelayMs(n, pcp)), [900_000, 1_800_000, 4 * 3600_000, 4 * 3600_000, 4 * 3600_000])
  assert.equal(retryDelayMs(1, new GatewayRefusedError('pcp', 2, 'NOT_AUTHORIZED', undefined, 86_400)), 86_400_000)
})

test('rediscoveries: 15 s apart, doubling with each failure in a row, at most 30 min', () => {
  assert.deepEqual([0, 1, 2, 7, 8, 40].map(rediscoveryIntervalMs), [15_000, 30_000, 60_000, 1_800_000, 1_800_000, 1_800_000])
})

test('re-mappings after resets: the first at once, then held back at a doubling pace; the streak starts over after an hour of quiet', () => {
  assert.equal(recoveryHoldMs(undefined, 0, 1_000), 0)
  assert.equal(recoveryHoldMs(0, 0, 10_000), 20_000, '30 s after the last one')
  assert.equal(recoveryHoldMs(0, 2, 10_000), 110_000, '120 s after the third in a row')
  assert.equal(recoveryHoldMs(0, 30, 10_000), 1_790_000, 'at most 30 min')
  assert.equal(nextRecoveryStreak(undefined, 0, 5_000), 0, 'the first one starts no streak')
  assert.equal(nextRecoveryStreak(0, 3, 3_599_999), 4)
  assert.equal(nextRecoveryStreak(0, 3, 3_600_000), 0)
})
