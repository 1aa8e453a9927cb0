// Issue 18 point 4, on a real router: a persistent `natmapper map` records its mappings in the
// state file while it runs (with PCP, the nonce a delete needs), so that after kill -9, which
// leaves no chance to clean up, `natmapper unmap 7001/tcp` and `natmapper unmap --all` delete
// them on the router. Before the fix only `map --once` kept records: what a killed `map` left
// could not be deleted with PCP at all, and there was no `unmap --all`.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { existsSync } from 'node:fs'
import { bin, startCli, waitUntil } from './cli.js'
import { requireLab, withLab } from './lab.js'
import { eventsOf, exited, ruleSummary, runCli, stateFile, type StateRecord } from './leak-helpers.js'

for (const method of ['pcp', 'natpmp', 'upnp'] as const) {
  test(`issue 18 point 4 (${method}): kill -9 of natmapper map 7001/tcp 7002/udp: its records (PCP: with the nonces) let unmap 7001/tcp and unmap --all delete what it left; the records go`, { timeout: 60_000 }, async (t) => {
    await requireLab(t)
    assert.ok(existsSync(bin), `${bin} does not exist: the CLI is not built (npm run build:test)`)
    const state = stateFile(t)
    await withLab({}, async (lab) => {
      const from = lab.routerLog().length
      const cli = startCli(lab, ['map', '7001/tcp', '7002/udp', '--json', '--protocol', method], { env: state.env })
      try {
        await waitUntil(() => cli.events.filter((e) => e.event === 'mapped').length >= 2 || cli.exited(), 10_000, 'two mapped events')
        assert.equal(cli.exited(), false, `the CLI exited before mapping both ports: ${cli.stderr()}`)
        // Written a moment after the mapped events (one write for the mappings that come together).
        const recorded = (): StateRecord[] => [...state.of('tcp', 7001), ...state.of('udp', 7002)]
        await waitUntil(() => recorded().length === 2, 3000, `records of 7001/tcp and 7002/udp in the state file while map runs (it holds ${JSON.stringify(state.records())})`)
        for (const record of recorded()) {
          assert.equal(record.method, method)
          assert.equal(record.gateway, lab.gatewayLanAddress)
          assert.ok(record.expiresAt !== null && record.expiresAt > Date.now(), `expiresAt ${String(record.expiresAt)}`)
          if (method === 'pcp') {
            // The nonce the router keeps in the mapping's description ('PCP MAP <nonce>'), which
            // miniupnpd prints as three 32-bit words in host (little-endian) byte order.
            const nonce = record.mapping.session?.nonce?.$bytes ?? ''
            assert.match(nonce, /^[0-9a-f]{24}$/, 'the record holds the PCP nonce')
            const asLogged = (nonce.match(/.{8}/g) ?? []).map((word) => (word.match(/../g) ?? []).reverse().join('')).join('')
            assert.ok(lab.routerLog().slice(from).includes(`->${lab.clientAddress}:${record.internalPort} 'PCP MAP ${asLogged}'`),
              `the router made ${record.internalPort}/${record.protocol} with the recorded nonce ${nonce} (logged as ${asLogged})`)
          }
        }

        cli.child.kill('SIGKILL')
        const exit = await exited(cli, 5000)
        assert.equal(exit.signal, 'SIGKILL')
        assert.equal((await lab.rules()).dnat.length, 2, `kill -9 left both forwards: ${await ruleSummary(lab)}`)
        assert.equal(recorded().length, 2, 'and both records')

        const one = await runCli(lab, ['unmap', '7001/tcp', '--json'], state.env)
        t.diagnostic(`${method}: unmap 7001/tcp: exit ${String(one.code)} in ${Math.round(one.durationMs)} ms; ${one.stdout.trim()} ${one.stderr.trim()}`)
        assert.equal(one.code, 0, `unmap 7001/tcp: ${one.stderr}`)
        assert.deepEqual(eventsOf(one.stdout).map((e) => `${String(e.event)} ${String(e.internalPort)}/${String(e.protocol)} ${String(e.method)}`), [`unmapped 7001/tcp ${method}`])
        assert.deepEqual((await lab.rules()).dnat.map((r) => `${r.externalPort}/${r.protocol}`), ['7002/udp'], 'unmap 7001/tcp deleted that one on the router')
        assert.deepEqual(state.of('tcp', 7001), [], 'and its record')
        assert.equal(state.of('udp', 7002).length, 1, 'the other record stays')

        const all = await runCli(lab, ['unmap', '--all', '--json'], state.env)
        t.diagnostic(`${method}: unmap --all: exit ${String(all.code)} in ${Math.round(all.durationMs)} ms; ${all.stdout.trim()} ${all.stderr.trim()}`)
        assert.equal(all.code, 0, `unmap --all: ${all.stderr}`)
        assert.deepEqual(eventsOf(all.stdout).map((e) => `${String(e.event)} ${String(e.internalPort)}/${String(e.protocol)} ${String(e.method)}`), [`unmapped 7002/udp ${method}`])
        assert.deepEqual((await lab.rules()).dnat, [], `unmap --all emptied the router's table: ${await ruleSummary(lab)}`)
        assert.deepEqual(state.records(), [], 'no record left')
      } catch (err) {
        console.error(`--- natmapper stderr ---\n${cli.stderr()}\n--- stdout ---\n${cli.stdout()}\n---`)
        throw err
      }
    })
  })
}
