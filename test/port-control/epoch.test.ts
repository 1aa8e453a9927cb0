import { test, describe } from 'node:test'
import assert from 'node:assert/strict'
import fc from 'fast-check'
import { isEpochValid } from '../../src/port-control/epoch.js'
import type { EpochSample } from '../../src/port-control/epoch.js'

const at = (serverEpochSeconds: number, clientTimeMs: number): EpochSample => ({ serverEpochSeconds, clientTimeMs })

describe('isEpochValid (RFC 6887 §8.5)', () => {
  test('the first sample is valid, whatever it says', () => {
    assert.equal(isEpochValid(undefined, at(0, 0)), true)
    assert.equal(isEpochValid(undefined, at(0xffffffff, 123_456)), true)
  })

  test('both clocks advancing together is valid', () => {
    assert.equal(isEpochValid(at(1000, 50_000), at(1000, 50_000)), true)
    assert.equal(isEpochValid(at(1000, 50_000), at(1060, 110_000)), true)
    assert.equal(isEpochValid(at(1000, 50_000), at(1000 + 7200, 50_000 + 7_200_000)), true)
  })

  test('a reboot is detected: the server epoch went back by more than one second', () => {
    assert.equal(isEpochValid(at(86_400, 0), at(30, 60_000)), false)
    assert.equal(isEpochValid(at(1000, 0), at(998, 0)), false)
  })

  test('the server going back by up to one second is reordering, not a reboot', () => {
    assert.equal(isEpochValid(at(1000, 0), at(999, 0)), true)
    assert.equal(isEpochValid(at(1000, 0), at(999, 1_500)), true)
  })

  test('drift within 1/16 plus two seconds of quantization is valid', () => {
    // One hour on the client; the server counted 6% less or 6% more.
    assert.equal(isEpochValid(at(0, 0), at(3384, 3_600_000)), true)
    assert.equal(isEpochValid(at(0, 0), at(3816, 3_600_000)), true)
    // Quantization: 2.999 s on the client is client_delta 2; a server delta of 4 is within +2.
    assert.equal(isEpochValid(at(100, 0), at(104, 2_999)), true)
  })

  test('deltas that disagree by more than the tolerance are invalid', () => {
    // client_delta 3600; the server advanced only 3370 (3370 + 2 < 3600 - 225).
    assert.equal(isEpochValid(at(0, 0), at(3370, 3_600_000)), false)
    // The server ran ahead: server_delta 4000 against client_delta 3600 (3602 < 4000 - 250).
    assert.equal(isEpochValid(at(0, 0), at(4000, 3_600_000)), false)
    // A reboot long after the previous sample: epoch 600 is ahead of the old one, but the
    // client waited two hours.
    assert.equal(isEpochValid(at(500, 0), at(600, 7_200_000)), false)
  })

  test('the boundary is the RFC formula with integer division', () => {
    // client_delta 32: invalid when server_delta + 2 < 32 - 2, i.e. server_delta < 28.
    assert.equal(isEpochValid(at(0, 0), at(28, 32_000)), true)
    assert.equal(isEpochValid(at(0, 0), at(27, 32_000)), false)
    // server_delta 35: invalid when client_delta + 2 < 35 - 2, i.e. client_delta < 31.
    assert.equal(isEpochValid(at(0, 0), at(35, 31_000)), true)
    assert.equal(isEpochValid(at(0, 0), at(35, 30_999)), false)
  })

  test('property: equal elapsed time on both clocks is always valid', () => {
    fc.assert(fc.property(
      fc.integer({ min: 0, max: 2 ** 31 }),
      fc.integer({ min: 0, max: 2 ** 31 }),
      fc.integer({ min: 0, max: 10 ** 9 }),
      (server, elapsedSeconds, clientStartMs) =>
        isEpochValid(at(server, clientStartMs), at(server + elapsedSeconds, clientStartMs + elapsedSeconds * 1000))
    ), { numRuns: 2_000 })
  })

  test('property: the server epoch restarting from zero after running longer than the client waited is invalid', () => {
    fc.assert(fc.property(
      fc.integer({ min: 0, max: 10 ** 6 }),
      fc.integer({ min: 0, max: 10 ** 6 }),
      (waitedSeconds, extra) => {
        // The gateway rebooted during the wait, so its new epoch is at most waitedSeconds; it had
        // been up for more than that plus one second before the previous sample.
        const previous = at(waitedSeconds + 2 + extra, 0)
        const current = at(waitedSeconds, waitedSeconds * 1000)
        return !isEpochValid(previous, current)
      }
    ), { numRuns: 2_000 })
  })
})
