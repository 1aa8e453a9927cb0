// Issue 18 point 2, on a real router: `natmapper map 7070 7071 | head -1`. head exits after the
// first line, so natmapper's next write to stdout fails with EPIPE. Before the fix that was an
// unhandled 'error' event: a stack trace, exit 1, and both forwards left in miniupnpd's table.
// Now a closed stdout stops the command as a signal does, with the cleanup (src/cli/map-keep.ts),
// and it exits 0 once every mapping is deleted. A real pipe to a real `head -1`, run by bash so
// that natmapper's own exit status can be read from PIPESTATUS.
//
// A closed pipe is noticed only at the next write (Node has no event for a reader that left). Most
// runs write the second `mapped` line after head has gone; but when every line goes into the pipe
// before head exits (one burst: PCP prints the external address and the first mapping together),
// the next write is the first renewal, at half the lease. The lease asked for is therefore short
// (4 s, miniupnpd's PCP minimum lowered to 2 s), so that a write after head's exit comes within
// 2 s either way.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { existsSync } from 'node:fs'
import { bin, repoRoot } from './cli.js'
import { requireLab, withLab, type Lab } from './lab.js'
import { ruleSummary, stateFile } from './leak-helpers.js'

/** bash -c `script` in lan, in a process group of its own that is killed whole after `timeoutMs`. */
async function runPipeline (lab: Lab, script: string, args: string[], env: NodeJS.ProcessEnv, timeoutMs: number): Promise<{ stdout: string, stderr: string, timedOut: boolean, ms: number }> {
  const started = performance.now()
  const child = lab.spawn('lan', 'bash', ['-c', script, ...args], { env, cwd: repoRoot, processGroup: true })
  let stdout = ''
  let stderr = ''
  child.stdout?.setEncoding('utf8').on('data', (d: string) => { stdout += d })
  child.stderr?.setEncoding('utf8').on('data', (d: string) => { stderr += d })
  let timedOut = false
  // natmapper may outlive bash (it holds stderr open): the whole group goes.
  const timer = setTimeout(() => {
    timedOut = true
    try { process.kill(-child.pid!, 'SIGKILL') } catch {}
  }, timeoutMs)
  await new Promise((resolve) => { child.once('close', resolve) })
  clearTimeout(timer)
  return { stdout, stderr, timedOut, ms: Math.round(performance.now() - started) }
}

for (const method of ['pcp', 'natpmp', 'upnp'] as const) {
  test(`issue 18 point 2 (${method}): natmapper map 7070 7071 --lifetime 4 | head -1: no EPIPE stack trace, both mappings made then deleted, exit 0`, { timeout: 60_000 }, async (t) => {
    await requireLab(t)
    assert.ok(existsSync(bin), `${bin} does not exist: the CLI is not built (npm run build:test)`)
    const state = stateFile(t)
    await withLab({ minLifetime: 2 }, async (lab) => {
      const from = lab.routerLog().length
      const script = '"$0" "$1" map 7070 7071 --protocol "$2" --lifetime 4 | head -1; echo "natmapper exit status ${PIPESTATUS[0]}" >&2'
      const run = await runPipeline(lab, script, [process.execPath, bin, method], state.env, 20_000)
      const log = lab.routerLog().slice(from)
      const left = await ruleSummary(lab)
      const status = /^natmapper exit status (\d+)$/m.exec(run.stderr)?.[1] ?? '?'
      t.diagnostic(`${method}: ${run.ms} ms; natmapper exit status ${status}; on the router after: ${left}; head printed ${JSON.stringify(run.stdout)}; stderr ${JSON.stringify(run.stderr)}`)
      assert.equal(run.timedOut, false, `the pipeline did not end within 20 s: natmapper did not notice its stdout closing (stderr: ${run.stderr})`)
      assert.equal(run.stdout.split('\n').filter((l) => l !== '').length, 1, 'head printed one line')
      assert.doesNotMatch(run.stderr, /EPIPE|Unhandled 'error' event|\n\s+at /, 'no EPIPE, no stack trace')
      // Both were made (the router says so), so the empty table below is the cleanup's doing.
      for (const port of [7070, 7071]) {
        assert.match(log, new RegExp(`timestamp entry added \\(${port}, 6,`), `the router made ${port}/tcp`)
      }
      assert.match(run.stderr, /^stdout closed: removing mappings$/m)
      assert.deepEqual((await lab.rules()).dnat, [], `forwards left on the router: ${left}`)
      assert.match(run.stderr, /^natmapper exit status 0$/m, 'natmapper exits 0: it stopped as on a signal, and every mapping was deleted')
      assert.deepEqual([...state.of('tcp', 7070), ...state.of('tcp', 7071)], [], 'no record left in the state file')
    })
  })
}
