// natmapper behind a second NAT: the gateway's WAN side is in 100.64/10, so miniupnpd cannot give
// a public mapping. discover and map --once must say "double NAT" in plain words, map --once must
// exit non-zero, and nothing may hang or print a stack trace.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { fileURLToPath } from 'node:url'
import { requireLab, withLab } from './lab.js'

const bin = fileURLToPath(new URL('../../src/cli/bin.js', import.meta.url))

test('behind a second NAT: discover --json and map 7701/tcp --once --json name the double NAT', { timeout: 60_000 }, async (t) => {
  await requireLab(t)
  await withLab({ reservedExternalAddress: true }, async (lab) => {
    const discover = await lab.exec('lan', process.execPath, [bin, 'discover', '--json'], { timeoutMs: 15_000 })
    assert.equal(discover.timedOut, false)
    assert.notEqual(discover.stdout, '', `no output: exit ${String(discover.code)}, stderr ${discover.stderr}`)
    const report = JSON.parse(discover.stdout) as { public: boolean, reason: string | null, method: string | null }
    t.diagnostic(`discover: ${JSON.stringify(report)}`)
    assert.equal(report.public, false)
    assert.match(report.reason ?? '', /double NAT/)

    const map = await lab.exec('lan', process.execPath, [bin, 'map', '7701/tcp', '--once', '--json'], { timeoutMs: 15_000 })
    t.diagnostic(`map --once: exit ${String(map.code)} in ${Math.round(map.durationMs)} ms, stderr ${JSON.stringify(map.stderr)}`)
    assert.equal(map.timedOut, false)
    assert.notEqual(map.code, 0)
    assert.match(map.stderr, /double NAT/)
    assert.doesNotMatch(map.stderr, /\n\s+at /, 'no stack trace')
    assert.deepEqual((await lab.rules()).dnat, [], 'nothing mapped')
  })
})
