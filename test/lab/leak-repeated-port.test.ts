// Issue 18 point 5, on a real router. `map 7040 7040 --once` sent two PCP MAP requests, printed
// `mapped` twice and recorded two nonces, of which the router kept the second: `unmap 7040/tcp`
// then failed with NOT_AUTHORIZED and the forward stayed. And `unmap --protocol upnp` used the
// record of a PCP mapping, with PCP. Counted in miniupnpd's log, read from its table.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { existsSync } from 'node:fs'
import { bin } from './cli.js'
import { requireLab, withLab } from './lab.js'
import { eventsOf, ruleSummary, runCli, stateFile } from './leak-helpers.js'

/** PCP MAP requests in a slice of miniupnpd's log: 60 bytes (an ANNOUNCE is 24). */
function pcpMapRequests (log: string): number {
  return log.match(/PCP request received from [\d.]+:\d+ 60bytes/g)?.length ?? 0
}

test('issue 18 point 5: map 7040 7040 --once (PCP): one MAP request, mapped printed once, one record; unmap 7040/tcp then deletes it (no NOT_AUTHORIZED)', { timeout: 60_000 }, async (t) => {
  await requireLab(t)
  assert.ok(existsSync(bin), `${bin} does not exist: the CLI is not built (npm run build:test)`)
  const state = stateFile(t)
  await withLab({}, async (lab) => {
    const from = lab.routerLog().length
    const map = await runCli(lab, ['map', '7040', '7040', '--once', '--protocol', 'pcp', '--json'], state.env)
    const log = lab.routerLog().slice(from)
    const mapped = eventsOf(map.stdout).filter((e) => e.event === 'mapped')
    t.diagnostic(`map 7040 7040 --once: exit ${String(map.code)}; ${pcpMapRequests(log)} PCP MAP request(s); ${mapped.length} mapped; ${state.of('tcp', 7040).length} record(s); router: ${await ruleSummary(lab)}`)
    assert.equal(map.code, 0, map.stderr)
    assert.equal(pcpMapRequests(log), 1, `one MAP request for the one mapping; the router's log:\n${log}`)
    assert.equal(mapped.length, 1, `mapped printed once: ${map.stdout}`)
    assert.deepEqual((await lab.rules()).dnat.map((r) => `${r.externalPort}/${r.protocol}->${r.internalPort}`), ['7040/tcp->7040'])
    assert.equal(state.of('tcp', 7040).length, 1, `one record: ${JSON.stringify(state.records())}`)

    const unmap = await runCli(lab, ['unmap', '7040/tcp', '--json'], state.env)
    t.diagnostic(`unmap 7040/tcp: exit ${String(unmap.code)}; ${unmap.stdout.trim()} ${unmap.stderr.trim()}`)
    assert.doesNotMatch(unmap.stderr, /NOT_AUTHORIZED/)
    assert.equal(unmap.code, 0, unmap.stderr)
    assert.deepEqual((await lab.rules()).dnat, [], `unmap 7040/tcp deleted the forward: ${await ruleSummary(lab)}`)
    assert.deepEqual(state.of('tcp', 7040), [], 'and its record')
  })
})

test('issue 18 point 5: unmap 7042/tcp --protocol upnp, for a port recorded with PCP, deletes it with UPnP: the PCP record is not used for another protocol', { timeout: 60_000 }, async (t) => {
  await requireLab(t)
  assert.ok(existsSync(bin), `${bin} does not exist: the CLI is not built (npm run build:test)`)
  const state = stateFile(t)
  await withLab({}, async (lab) => {
    const map = await runCli(lab, ['map', '7042', '--once', '--protocol', 'pcp', '--json'], state.env)
    assert.equal(map.code, 0, map.stderr)
    assert.deepEqual(state.of('tcp', 7042).map((r) => r.method), ['pcp'], 'recorded with PCP')
    assert.deepEqual((await lab.rules()).dnat.map((r) => `${r.externalPort}/${r.protocol}`), ['7042/tcp'])

    const from = lab.routerLog().length
    const unmap = await runCli(lab, ['unmap', '7042/tcp', '--protocol', 'upnp', '--json'], state.env)
    const requests = lab.countRequests(lab.routerLog().slice(from))
    t.diagnostic(`unmap 7042/tcp --protocol upnp: exit ${String(unmap.code)}; router requests ${JSON.stringify(requests)}; ${unmap.stdout.trim()} ${unmap.stderr.trim()}`)
    assert.equal(requests.pcp, 0, 'no PCP request: the record made with PCP is not used when UPnP is asked for')
    assert.ok(requests.http > 0, 'UPnP requests (SOAP over HTTP)')
    assert.equal(unmap.code, 0, unmap.stderr)
    assert.deepEqual(eventsOf(unmap.stdout).map((e) => `${String(e.event)} ${String(e.internalPort)}/${String(e.protocol)} ${String(e.method)}`), ['unmapped 7042/tcp upnp'])
    assert.deepEqual((await lab.rules()).dnat, [], `UPnP deleted the forward (external port 7042, the default): ${await ruleSummary(lab)}`)
  })
})
