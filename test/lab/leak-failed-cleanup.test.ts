// Issue 18 point 3, on a real router: the router stops answering, then Ctrl-C. The cleanup cannot
// delete anything, so natmapper must say so: exit 1, a `left` event per mapping with how long it
// stays on the router, and the records kept in the state file so that `natmapper unmap --all`
// deletes them once the router answers again (with PCP, only the recorded nonce can). Before the
// fix it exited 0 as if all was well, named nothing, and kept no record. The evidence is
// miniupnpd's table: still holding both forwards after the failed cleanup, empty after unmap --all.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { existsSync } from 'node:fs'
import { bin, startCli, waitUntil } from './cli.js'
import { requireLab, withLab, type Lab } from './lab.js'
import { eventsOf, exited, ruleSummary, runCli, stateFile } from './leak-helpers.js'

const LIFETIME_S = 7200

/** How the router stops answering: miniupnpd stopped (its rules stay, as after a crash), or its NAT-PMP/PCP port silently dropped. */
type Outage = 'stopped' | 'dropped'

const cases: Array<{ method: 'pcp' | 'natpmp' | 'upnp', outage: Outage }> = [
  { method: 'pcp', outage: 'stopped' },
  { method: 'natpmp', outage: 'dropped' },
  { method: 'upnp', outage: 'stopped' }
]

async function breakRouter (lab: Lab, outage: Outage): Promise<void> {
  if (outage === 'stopped') {
    await lab.stopRouter({ flush: false })
    return
  }
  const r = await lab.exec('gw', 'nft', ['-f', '-'], {
    input: 'table inet labdrop {\n  chain input {\n    type filter hook input priority -10; policy accept;\n    udp dport 5351 drop\n  }\n}\n'
  })
  assert.equal(r.code, 0, `nft: ${r.stderr}`)
}

async function repairRouter (lab: Lab, outage: Outage): Promise<void> {
  if (outage === 'stopped') {
    await lab.startRouter()
    return
  }
  const r = await lab.exec('gw', 'nft', ['delete', 'table', 'inet', 'labdrop'])
  assert.equal(r.code, 0, `nft: ${r.stderr}`)
}

for (const { method, outage } of cases) {
  test(`issue 18 point 3 (${method}, router ${outage === 'stopped' ? 'stopped' : 'silent on 5351'}): failed cleanup exits 1, names each mapping left with its remaining lifetime, keeps the records; unmap --all deletes them once the router is back`, { timeout: 90_000 }, async (t) => {
    await requireLab(t)
    assert.ok(existsSync(bin), `${bin} does not exist: the CLI is not built (npm run build:test)`)
    const state = stateFile(t)
    await withLab({}, async (lab) => {
      const cli = startCli(lab, ['map', '7001/tcp', '7002/udp', '--json', '--protocol', method, '--lifetime', String(LIFETIME_S)], { env: state.env })
      try {
        await waitUntil(() => cli.events.filter((e) => e.event === 'mapped').length >= 2 || cli.exited(), 10_000, 'two mapped events')
        assert.equal(cli.exited(), false, `the CLI exited before mapping both ports: ${cli.stderr()}`)
        assert.equal((await lab.rules()).dnat.length, 2, `both forwards on the router: ${await ruleSummary(lab)}`)

        await breakRouter(lab, outage)
        const signalled = performance.now()
        cli.child.kill('SIGINT')
        const exit = await exited(cli, 20_000)
        const exitMs = Math.round(performance.now() - signalled)
        const left = cli.events.filter((e) => e.event === 'left')
        t.diagnostic(`${method}: SIGINT with the router ${outage}: exit ${exit.signal ?? String(exit.code)} after ${exitMs} ms; left events ${JSON.stringify(left)}; stderr ${JSON.stringify(cli.stderr())}`)
        assert.equal((await lab.rules()).dnat.length, 2, `the router still holds both forwards (the cleanup could not reach it): ${await ruleSummary(lab)}`)
        assert.deepEqual(exit, { code: 1, signal: null }, 'exit 1: mappings were left on the router')
        assert.deepEqual(left.map((e) => `${String(e.internalPort)}/${String(e.protocol)}`).sort(), ['7001/tcp', '7002/udp'], 'one left event per mapping')
        for (const e of left) {
          assert.equal(e.method, method)
          assert.equal(typeof e.externalPort, 'number')
          assert.ok(typeof e.remainingSeconds === 'number' && e.remainingSeconds > LIFETIME_S - 120 && e.remainingSeconds <= LIFETIME_S,
            `remainingSeconds ${String(e.remainingSeconds)}: about the ${LIFETIME_S} s lease`)
          assert.ok(typeof e.reason === 'string' && e.reason !== '', 'the reason it was left')
          // Its own reason, or that it was given up once another delete went unanswered: never
          // the other delete's error as if it were its own, nor a bare "aborted".
          assert.notEqual(e.reason, 'the operation was aborted', `${String(e.internalPort)}/${String(e.protocol)}: a reason that says nothing`)
          const other = e.internalPort === 7001 ? /\budp 7002\b/ : /\btcp 7001\b/
          if (other.test(e.reason)) assert.match(e.reason, /^given up: the router stopped answering \(the delete of /, `${String(e.internalPort)}/${String(e.protocol)}: another mapping's error as its reason`)
        }
        assert.match(cli.stderr(), /2 mappings could not be removed/)
        for (const [protocol, port] of [['tcp', 7001], ['udp', 7002]] as const) {
          const records = state.of(protocol, port)
          assert.equal(records.length, 1, `the record of ${port}/${protocol} stays in the state file: ${JSON.stringify(state.records())}`)
          assert.equal(records[0]!.method, method)
          if (method === 'pcp') assert.match(records[0]!.mapping.session?.nonce?.$bytes ?? '', /^[0-9a-f]{24}$/, 'with its PCP nonce')
        }

        await repairRouter(lab, outage)
        const unmap = await runCli(lab, ['unmap', '--all', '--json'], state.env)
        t.diagnostic(`${method}: unmap --all once the router answers again: exit ${String(unmap.code)} in ${Math.round(unmap.durationMs)} ms; ${unmap.stdout.trim()} ${unmap.stderr.trim()}`)
        assert.equal(unmap.code, 0, `unmap --all: ${unmap.stderr}`)
        assert.deepEqual(eventsOf(unmap.stdout).filter((e) => e.event === 'unmapped').map((e) => `${String(e.internalPort)}/${String(e.protocol)} ${String(e.method)}`).sort(),
          [`7001/tcp ${method}`, `7002/udp ${method}`])
        assert.deepEqual((await lab.rules()).dnat, [], `unmap --all emptied the router's table: ${await ruleSummary(lab)}`)
        assert.deepEqual(state.records(), [], 'and dropped the records')
      } catch (err) {
        console.error(`--- natmapper stderr ---\n${cli.stderr()}\n--- stdout ---\n${cli.stdout()}\n---`)
        throw err
      }
    })
  })
}
