// Issue 18 point 8 against a real miniupnpd: `--gateway` names the router, and UPnP must then be that router.
// Asked for 192.168.77.99 (no such host), natmapper used to take the SSDP answer of miniupnpd at .1 (another
// host of the same subnet, tolerated for CARP pairs) and map through it. Now nothing answers for .99, nothing is
// fetched from .1, nothing is mapped; the default route's gateway is still found as before.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { bin } from './cli.js'
import { requireLab, withLab } from './lab.js'

test('--gateway names the UPnP device: discover and map --once at a host that is not the router find no UPnP, fetch nothing from the router, map nothing',
  { timeout: 60_000 }, async (t) => {
    await requireLab(t)
    const dir = mkdtempSync(join(tmpdir(), 'natmapper-lab-state-'))
    t.after(() => { rmSync(dir, { recursive: true, force: true }) })
    const env = { ...process.env, NATMAPPER_STATE_FILE: join(dir, 'mappings.json') }
    await withLab({ natpmp: false }, async (lab) => {
      const absent = lab.gatewayLanAddress.replace(/\.1$/, '.99')
      const from = lab.routerLog().length
      const discover = await lab.exec('lan', process.execPath, [bin, 'discover', '--json', '--protocol', 'upnp', '--gateway', absent, '--timeout', '2000'], { env, timeoutMs: 15_000 })
      t.diagnostic(`discover --gateway ${absent}: exit ${String(discover.code)} in ${Math.round(discover.durationMs)} ms: ${discover.stdout.replace(/\s+/g, ' ')}`)
      const report = JSON.parse(discover.stdout) as { gateway: string, method?: string, protocols: { upnp: { ok: boolean, error?: string } } }
      assert.equal(discover.code, 1)
      assert.equal(report.method ?? null, null, "no protocol answered")
      assert.equal(report.protocols.upnp.ok, false)
      assert.match(report.protocols.upnp.error ?? '', /\d+ from hosts other than the gateway refused/)

      const map = await lab.exec('lan', process.execPath, [bin, 'map', '7190/tcp', '--once', '--protocol', 'upnp', '--gateway', absent, '--timeout', '2000'], { env, timeoutMs: 15_000 })
      t.diagnostic(`map --once --gateway ${absent}: exit ${String(map.code)}: ${map.stderr.trim()}`)
      assert.equal(map.code, 1)
      assert.doesNotMatch(map.stdout, /mapped/)
      assert.deepEqual((await lab.rules()).dnat, [], 'nothing mapped')
      const log = lab.routerLog().slice(from)
      assert.match(log, /SSDP M-SEARCH from 192\.168\.77\.2/, 'the router did hear the multicast search')
      assert.doesNotMatch(log, /HTTP REQUEST/, 'but was never asked for its description or a mapping')

      // The default route's gateway (and the same address named) still work.
      for (const gatewayArgs of [[], ['--gateway', lab.gatewayLanAddress]]) {
        const ok = await lab.exec('lan', process.execPath, [bin, 'discover', '--json', '--protocol', 'upnp', ...gatewayArgs], { env, timeoutMs: 15_000 })
        assert.equal(ok.code, 0, ok.stderr)
        assert.equal((JSON.parse(ok.stdout) as { method: string }).method, 'upnp')
      }
    })
  })
