// Issue 18 point 6, on a real router: many ports at once, then Ctrl-C. Before the fix, all the
// requests went out at once: most timed out queued (in the router or in our socket: floods of
// "not sent within"), a MaxListenersExceededWarning came, errors named no port, and miniupnpd,
// still working through its queue after natmapper had exited, left forwards in its table (the
// issue: 51 of 100 ports; here, on b114af6, 115 of 300). Now requests are bounded per gateway,
// progress is counted on stderr, and what the router granted after a request was given up on is
// deleted too. Per protocol: 100 ports mapped in full, then Ctrl-C; 300 ports, Ctrl-C halfway.
// The table is read at exit and again once miniupnpd's log has gone quiet.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { existsSync } from 'node:fs'
import { bin, startCli, waitUntil } from './cli.js'
import { requireLab, withLab, type Lab } from './lab.js'
import { exited, routerQuiet, stateFile, type StateFile } from './leak-helpers.js'

const FIRST_PORT = 20000

interface Run { problems: string[], mappedAtSignal: number, mappedAtExit: number, routerAdded: number, toSignalMs: number, signalToExitMs: number, left: number, leftLater: number, quietMs: number, requests: string }

/**
 * `natmapper map 20000/tcp ...` with `count` ports (human output: one `mapped` line per port on
 * stdout, progress on stderr), SIGINT once `stopAt` are mapped.
 */
async function mapMany (lab: Lab, state: StateFile, method: string, count: number, stopAt: number): Promise<Run> {
  const ports = Array.from({ length: count }, (_, i) => `${FIRST_PORT + i}/tcp`)
  const from = lab.routerLog().length
  const started = performance.now()
  const cli = startCli(lab, ['map', ...ports, '--protocol', method], { env: state.env })
  const mapped = (): number => cli.stdout().match(/^mapped tcp \d+ -> /gm)?.length ?? 0
  try {
    await waitUntil(() => mapped() >= stopAt || cli.exited(), 60_000, `${stopAt} mapped lines`)
    assert.equal(cli.exited(), false, `the CLI exited before SIGINT: ${cli.stderr()}`)
    const toSignalMs = Math.round(performance.now() - started)
    const mappedAtSignal = mapped()
    const signalled = performance.now()
    cli.child.kill('SIGINT')
    const exit = await exited(cli, 60_000)
    const signalToExitMs = Math.round(performance.now() - signalled)
    // The last output may come after the exit event.
    await new Promise<void>((resolve) => {
      if (cli.child.stdout?.closed !== false && cli.child.stderr?.closed !== false) resolve()
      else cli.child.once('close', () => { resolve() })
    })
    const left = (await lab.rules()).dnat.length
    // miniupnpd may still be working through requests natmapper gave up on: what it grants then
    // must not stay either. Wait (bounded) for its log to stop growing, then read the table again.
    const quietMs = await routerQuiet(lab, 1000, 15_000)
    const leftLater = (await lab.rules()).dnat.length
    const log = lab.routerLog().slice(from)
    const r = lab.countRequests(log)
    // Forwards the router made in this run, against the mappings natmapper heard of: more on the
    // router means it granted requests natmapper had given up on (and the table must still end empty).
    const routerAdded = log.match(/timestamp entry added \(/g)?.length ?? 0
    const mappedAtExit = mapped()
    const requests = method === 'upnp' ? `${r.http} HTTP, ${r.ssdp} SSDP` : method === 'pcp' ? `${r.pcp} PCP` : `${r.natpmp} NAT-PMP`
    const stderr = cli.stderr()

    // Every check is made (and every failure said) before the test fails, so that a failing run
    // shows all that is wrong with it.
    const problems: string[] = []
    const check = (ok: boolean, problem: string): void => { if (!ok) problems.push(problem) }
    check(exit.code === 0 && exit.signal === null, `exit ${exit.signal ?? String(exit.code)} after SIGINT, not 0`)
    check(!/MaxListenersExceededWarning/.test(stderr), 'a MaxListenersExceededWarning on stderr')
    const notSent = stderr.match(/not sent within/g)?.length ?? 0
    check(notSent === 0, `${notSent} "not sent within" error(s)`)
    // Per-port errors name the port; nothing else is an error line on a clean exit.
    const errors = stderr.split('\n').filter((l) => /^(error|natmapper):/.test(l))
    const unnamed = errors.filter((l) => !/^error: \d+\/tcp: /.test(l))
    check(unnamed.length === 0, `${unnamed.length} error line(s) naming no port, e.g. ${JSON.stringify(unnamed.slice(0, 3))}`)
    // Progress: every tenth of the ports, each count once.
    const step = Math.round(count / 10)
    const progress = stderr.match(/^mapped \d+\/\d+$/gm) ?? []
    const expected = Array.from({ length: Math.floor(mappedAtSignal / step) }, (_, i) => `mapped ${(i + 1) * step}/${count}`)
    check(JSON.stringify(progress.slice(0, expected.length)) === JSON.stringify(expected), `progress lines ${JSON.stringify(progress)}, expected ${JSON.stringify(expected)} (mapped ${mappedAtSignal} at SIGINT)`)
    check(new Set(progress).size === progress.length, `a progress count said twice: ${progress.join(', ')}`)
    if (stopAt < count) check(mappedAtSignal < count, `SIGINT came after all were mapped (${mappedAtSignal}/${count}), not partway`)
    check(left === 0, `${left} forward(s) left on the router at exit`)
    check(leftLater === 0, `${leftLater} forward(s) on the router once it had worked through its queue (${quietMs} ms after exit)`)
    check(state.records().length === 0, `${state.records().length} record(s) left in the state file`)
    return { mappedAtSignal, mappedAtExit, routerAdded, toSignalMs, signalToExitMs, left, leftLater, quietMs, requests, problems }
  } catch (err) {
    const stderr = cli.stderr()
    console.error(`--- natmapper stderr (${stderr.length} chars, end) ---\n${stderr.slice(-4000)}\n---`)
    throw err
  }
}

for (const method of ['pcp', 'natpmp', 'upnp'] as const) {
  test(`issue 18 point 6 (${method}): map 20000/tcp ... 20099/tcp, Ctrl-C once all are mapped, and 300 ports, Ctrl-C halfway: progress, no listener warning, no "not sent within" flood, errors name their port, 0 forwards left`, { timeout: 240_000 }, async (t) => {
    await requireLab(t)
    assert.ok(existsSync(bin), `${bin} does not exist: the CLI is not built (npm run build:test)`)
    const state = stateFile(t)
    await withLab({}, async (lab) => {
      const all = await mapMany(lab, state, method, 100, 100)
      t.diagnostic(`${method}, 100 ports: all mapped in ${all.toSignalMs} ms; SIGINT to exit ${all.signalToExitMs} ms; left at exit ${all.left}, after the router went quiet (${all.quietMs} ms) ${all.leftLater}; router requests: ${all.requests}; the router made ${all.routerAdded} forwards, natmapper printed ${all.mappedAtExit} mapped`)
      if (all.leftLater > 0) {
        t.diagnostic(`${method}: rebooting the router (its chains flushed) so that the 300-port run starts from an empty table`)
        await lab.restartRouter()
      }
      const half = await mapMany(lab, state, method, 300, 150)
      t.diagnostic(`${method}, 300 ports: SIGINT at ${half.mappedAtSignal} mapped, ${half.toSignalMs} ms after start; SIGINT to exit ${half.signalToExitMs} ms; left at exit ${half.left}, after the router went quiet (${half.quietMs} ms) ${half.leftLater}; router requests: ${half.requests}; the router made ${half.routerAdded} forwards, natmapper printed ${half.mappedAtExit} mapped`)
      assert.deepEqual({ '100 ports, Ctrl-C once all mapped': all.problems, '300 ports, Ctrl-C halfway': half.problems },
        { '100 ports, Ctrl-C once all mapped': [], '300 ports, Ctrl-C halfway': [] })
    })
  })
}
