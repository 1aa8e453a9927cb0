import { test } from 'node:test'
import assert from 'node:assert/strict'
import { BLOW_UP_SIZE, targets } from '../../fuzz/targets.js'
import { blewUp, blowUpChecks, runTarget } from '../../fuzz/run.js'

/**
 * `npm test`'s slice of `npm run fuzz`: every target of fuzz/targets.ts with a short run from a
 * new seed each time, and the blow-up check. A failure prints the seed and the shrunk input;
 * `npm run fuzz -- --target NAME --seed SEED` replays it with the full runner.
 */

const RUNS = 1500

for (const target of targets) {
  test(`fuzz ${target.name} (${target.parser}): ${RUNS} inputs, only its own typed errors`, (t) => {
    const seed = Math.floor(Math.random() * 0x7fffffff)
    const report = runTarget(target, { runs: RUNS, seed })
    t.diagnostic(`seed ${seed}: decoded ${report.decoded}, refused ${report.refused}, slowest ${report.slowestMs.toFixed(2)} ms`)
    assert.equal(report.inputs, RUNS)
    const failure = report.failure
    assert.equal(report.unexpected, 0, failure === undefined
      ? `seed ${seed}`
      : `seed ${seed}, path ${failure.path}\ninput: ${failure.input.slice(0, 4000)}\n${failure.error}`)
    // Both outcomes are reached, or the generators have stopped exercising the parser.
    assert.ok(report.decoded > RUNS / 20 && report.refused > RUNS / 20, `decoded ${report.decoded}, refused ${report.refused}`)
  })
}

test(`blow-up: worst-case shapes at ${BLOW_UP_SIZE} bytes and at each parser's limit are decoded or refused in time`, (t) => {
  const slow: string[] = []
  for (const target of targets) {
    for (const result of blowUpChecks(target, { repeat: 2 })) {
      if (blewUp(result)) slow.push(`${target.name} / ${result.shape} (${result.size}): ${result.outcome} in ${result.ms.toFixed(2)} ms, budget ${result.budgetMs} ms${result.error === undefined ? '' : `\n${result.error}`}`)
    }
    t.diagnostic(`${target.name}: ${target.shapes.length} shapes`)
  }
  assert.deepEqual(slow, [])
})
