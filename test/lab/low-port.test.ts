// Issue 18 point 11 against a real miniupnpd 2.3.1 whose rules are miniupnpd's default ones (allow 1024-65535
// <lan> 1024-65535, deny the rest: lab.ts): `natmapper map 80 --once` is refused by every protocol, and natmapper
// must say so plainly. Why it was slow: for a port its rules refuse, miniupnpd's PCP and NAT-PMP servers check
// every external port against them before answering NOT_AUTHORIZED (pcpserver.c CreatePCPMap_NAT, natpmp.c), and
// each check logs a LOG_DEBUG line (upnppermissions.c): 65535 lines per request, about 1.5 s here, where miniupnpd
// runs with -d (everything logged); at its default verbosity (setlogmask LOG_UPTO(LOG_NOTICE), miniupnpd.c) it
// answered in 1 ms. Each retransmission of the MAP that arrives meanwhile costs the router another 65535.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { bin } from './cli.js'
import { requireLab, withLab, type Lab } from './lab.js'

/** Until the router's log has not grown for 300 ms (at most 20 s). */
async function routerQuiet (lab: Lab): Promise<void> {
  const deadline = performance.now() + 20_000
  for (let seen = -1; seen !== lab.routerLog().length && performance.now() < deadline;) {
    seen = lab.routerLog().length
    await new Promise((resolve) => setTimeout(resolve, 300))
  }
}

const PLAIN = /internal port 80 is outside what the router permits: many routers allow only ports 1024-65535 \(miniupnpd's default rules\); use an internal port from 1024 up/

test('natmapper map 80 --once, PCP, NAT-PMP and UPnP (IGD v2 and v1): refused, said plainly, nothing mapped', { timeout: 120_000 }, async (t) => {
  await requireLab(t)
  const dir = mkdtempSync(join(tmpdir(), 'natmapper-lab-state-'))
  t.after(() => { rmSync(dir, { recursive: true, force: true }) })
  const env = { ...process.env, NATMAPPER_STATE_FILE: join(dir, 'mappings.json') }
  for (const igdV1 of [false, true]) {
    await withLab({ igdV1 }, async (lab) => {
      for (const protocol of igdV1 ? ['upnp'] : ['pcp', 'natpmp', 'upnp']) {
        const from = lab.routerLog().length
        const r = await lab.exec('lan', process.execPath, [bin, 'map', '80', '--once', '--protocol', protocol], { env, timeoutMs: 30_000 })
        const log = lab.routerLog().slice(from)
        const checks = log.split('permission rule').length - 1
        t.diagnostic(`${protocol}${igdV1 ? ' (IGD v1)' : ''}: exit ${String(r.code)} after ${Math.round(r.durationMs)} ms; router permission checks logged: ${checks}; ${r.stderr.trim()}`)
        assert.equal(r.timedOut, false)
        assert.equal(r.code, 1)
        assert.match(r.stderr, PLAIN, protocol)
        assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace')
        assert.deepEqual((await lab.rules()).dnat, [], 'nothing mapped')
        // Let miniupnpd finish the loops of retransmitted requests before the next protocol is timed.
        await routerQuiet(lab)
      }
    })
  }
})
