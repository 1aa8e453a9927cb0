// Issue 18 point 1, on a real router: SIGHUP (the terminal closed) to a running `natmapper map`
// cleans up as SIGTERM does. Before the fix the process died of the signal (a shell said exit 129),
// both forwards stayed in miniupnpd's table, and with PCP `unmap` could not delete them (no nonce
// on record). The evidence is the router's nftables chain and the state file.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { existsSync } from 'node:fs'
import { bin, startCli, waitUntil } from './cli.js'
import { requireLab, withLab } from './lab.js'
import { exited, ruleSummary, stateFile } from './leak-helpers.js'

for (const method of ['pcp', 'natpmp', 'upnp'] as const) {
  test(`issue 18 point 1 (${method}): SIGHUP to natmapper map 7001/tcp 7002/udp cleans up like SIGTERM: exit 0, nothing left on the router, no record left`, { timeout: 60_000 }, async (t) => {
    await requireLab(t)
    assert.ok(existsSync(bin), `${bin} does not exist: the CLI is not built (npm run build:test)`)
    const state = stateFile(t)
    await withLab({}, async (lab) => {
      const cli = startCli(lab, ['map', '7001/tcp', '7002/udp', '--json', '--protocol', method], { env: state.env })
      try {
        const mapped = (): number => cli.events.filter((e) => e.event === 'mapped').length
        await waitUntil(() => mapped() >= 2 || cli.exited(), 10_000, 'two mapped events')
        assert.equal(cli.exited(), false, `the CLI exited before mapping both ports: ${cli.stderr()}`)
        assert.equal((await lab.rules()).dnat.length, 2, `both forwards on the router before SIGHUP: ${await ruleSummary(lab)}`)

        cli.child.kill('SIGHUP')
        const exit = await exited(cli, 10_000)
        const left = await ruleSummary(lab)
        t.diagnostic(`${method}: after SIGHUP: exit ${exit.signal ?? String(exit.code)}; on the router: ${left}; stderr: ${JSON.stringify(cli.stderr())}`)
        assert.deepEqual(exit, { code: 0, signal: null }, `exit 0 after SIGHUP, as after SIGTERM (forwards left: ${left})`)
        assert.deepEqual((await lab.rules()).dnat, [], `forwards left on the router after SIGHUP: ${left}`)
        assert.deepEqual(cli.events.filter((e) => e.event === 'unmapped').map((e) => `${String(e.internalPort)}/${String(e.protocol)}`).sort(), ['7001/tcp', '7002/udp'])
        assert.deepEqual([...state.of('tcp', 7001), ...state.of('udp', 7002)], [], 'no record left in the state file')
      } catch (err) {
        console.error(`--- natmapper stderr ---\n${cli.stderr()}\n--- stdout ---\n${cli.stdout()}\n---`)
        throw err
      }
    })
  })
}
