// A hostile gateway in the lab: the gateway namespace runs test/lab/hostile-responder.js instead of miniupnpd,
// answering SSDP with LOCATIONs at the outside host, at a dripping server, at an entity bomb, at an endless body,
// at other schemes and with a flood, and NAT-PMP/PCP with garbage. `natmapper discover --json --timeout 3000` in
// the lan namespace must end within 5 s with a clear message and no stack trace, under 200 MB, and never connect
// to the outside host (trap listeners there, and an nftables counter of everything forwarded to it).
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { existsSync } from 'node:fs'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { requireLab, withLab } from './lab.js'
import type { Lab } from './lab.js'

const repoRoot = fileURLToPath(new URL('../../../', import.meta.url))
const bin = join(repoRoot, 'build', 'src', 'cli', 'bin.js')
const responderScript = fileURLToPath(new URL('./hostile-responder.js', import.meta.url))
const TIME = '/usr/bin/time'
const OUTSIDE_PORTS = [80, 8080, 8443]

interface ResponderEvent { ready?: boolean, event?: string, server?: string }

async function startResponder (lab: Lab): Promise<{ events: ResponderEvent[], stderr: () => string }> {
  const child = lab.spawn('gw', process.execPath, [responderScript, lab.gatewayLanAddress, lab.outsideAddress, ...OUTSIDE_PORTS.map(String)])
  const events: ResponderEvent[] = []
  let pending = ''
  let stderr = ''
  child.stdout?.setEncoding('utf8').on('data', (d: string) => {
    pending += d
    const lines = pending.split('\n')
    pending = lines.pop() ?? ''
    for (const line of lines) if (line.trim() !== '') events.push(JSON.parse(line) as ResponderEvent)
  })
  child.stderr?.setEncoding('utf8').on('data', (d: string) => { stderr += d })
  const deadline = performance.now() + 5000
  while (!events.some((e) => e.ready === true)) {
    if (child.exitCode !== null || performance.now() > deadline) throw new Error(`the hostile responder did not start: ${stderr}`)
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
  return { events, stderr: () => stderr }
}

/** Packets the gateway forwarded to the outside host, whatever their protocol (an nftables counter). */
async function forwardedToOutside (lab: Lab): Promise<number> {
  const r = await lab.exec('gw', 'nft', ['list', 'chain', 'inet', 'miniupnpd', 'forward'])
  const match = /ip daddr [\d.]+ counter packets (\d+)/.exec(r.stdout)
  if (match === null) throw new Error(`no counter in:\n${r.stdout}`)
  return Number(match[1])
}

test('hostile gateway: natmapper discover --json --timeout 3000 ends within 5 s, clearly, under 200 MB, and never reaches the outside host',
  { timeout: 90_000 }, async (t) => {
    await requireLab(t)
    assert.ok(existsSync(bin), `${bin} does not exist: the CLI is not built (npm run build:test)`)
    assert.ok(existsSync(TIME), `${TIME} is needed to measure the peak memory (Debian package: time)`)
    await withLab({ router: false }, async (lab) => {
      await lab.exec('gw', 'nft', ['insert', 'rule', 'inet', 'miniupnpd', 'forward', 'ip', 'daddr', lab.outsideAddress, 'counter'])
      const traps = await Promise.all(OUTSIDE_PORTS.map(async (port) => await lab.listen('wan', port, 'both')))
      const responder = await startResponder(lab)
      const dir = await mkdtemp(join(tmpdir(), 'natmapper-hostile-'))
      try {
        const timeFile = join(dir, 'time.txt')
        const run = await lab.exec('lan', TIME, ['-v', '-o', timeFile, process.execPath, bin, 'discover', '--json', '--timeout', '3000'],
          { timeoutMs: 20_000, cwd: repoRoot })
        const time = await readFile(timeFile, 'utf8')
        const rssKiB = Number(/Maximum resident set size \(kbytes\): (\d+)/.exec(time)?.[1])
        const elapsed = /Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (?:(\d+):)?(\d+):([\d.]+)/.exec(time)
        const elapsedMs = elapsed === null ? NaN : ((Number(elapsed[1] ?? 0) * 60 + Number(elapsed[2])) * 60 + Number(elapsed[3])) * 1000
        const reached = traps.reduce((n, trap) => n + trap.peers.length, 0)
        const forwarded = await forwardedToOutside(lab)
        const met = (server: string): number => responder.events.filter((e) => e.event === 'http' && e.server === server).length
        const summary = `wall ${Math.round(run.durationMs)} ms (time: ${elapsedMs} ms), peak RSS ${(rssKiB / 1024).toFixed(1)} MiB, ` +
          `connections to the outside host ${reached}, packets forwarded to it ${forwarded}; ` +
          `responder: ${responder.events.filter((e) => e.event === 'ssdp').length} M-SEARCHes, ${responder.events.filter((e) => e.event === 'pmp').length} NAT-PMP/PCP requests, ` +
          `HTTP drip ${met('drip')}, bomb ${met('bomb')}, endless ${met('endless')}, foreign ${met('foreign')}, flood ${met('stall')}`
        t.diagnostic(summary)
        console.log(`hostile lab: ${summary}`)
        console.log(`hostile lab: exit ${String(run.code)}, stdout:\n${run.stdout}\nstderr:\n${run.stderr}`)

        assert.equal(run.timedOut, false)
        assert.ok(run.durationMs < 5000, `ended after ${Math.round(run.durationMs)} ms`)
        assert.ok(elapsedMs < 5000, `time says ${elapsedMs} ms`)
        assert.ok(rssKiB > 0 && rssKiB < 200 * 1024, `peak RSS ${rssKiB} KiB`)
        assert.equal(reached, 0, 'no connection to the outside host')
        assert.equal(forwarded, 0, 'no packet forwarded to the outside host')
        // A clear message: exit 1, a JSON report naming each protocol's reason, no stack trace.
        assert.equal(run.code, 1)
        assert.doesNotMatch(run.stderr, /^\s+at /m, 'no stack trace')
        const report = JSON.parse(run.stdout) as { method: string | null, protocols: Record<string, { ok: boolean, error?: string }>, reason: string | null }
        assert.equal(report.method ?? null, null)
        for (const method of ['pcp', 'natpmp', 'upnp']) {
          assert.equal(report.protocols[method]?.ok, false, method)
          assert.ok((report.protocols[method]?.error ?? '').length > 0, `${method} says why`)
        }
        assert.match(report.protocols.pcp?.error ?? '', /ignored/, 'PCP says it got only nonsense')
        assert.match(report.reason ?? '', /no gateway answered at 192\.168\.77\.1 within 3000 ms/)
        assert.equal((report as { gateway?: string }).gateway, lab.gatewayLanAddress, 'the report names the gateway it probed')
        // natmapper really met the traps (else this test proves nothing).
        assert.ok(responder.events.some((e) => e.event === 'ssdp'), 'M-SEARCH reached the responder')
        assert.ok(responder.events.some((e) => e.event === 'pmp'), 'NAT-PMP/PCP reached the responder')
        assert.ok(met('bomb') > 0 && met('drip') > 0 && met('endless') > 0, 'the bomb, the drip and the endless body were fetched')
        assert.ok(met('stall') <= 8, `the flood cost ${met('stall')} fetches`)
      } catch (err) {
        console.error(`--- responder stderr ---\n${responder.stderr()}`)
        throw err
      } finally {
        await rm(dir, { recursive: true, force: true })
      }
    })
  })
