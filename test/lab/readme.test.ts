// The README's main command, exactly as written there, on the lab's client host: `npx natmapper
// map 4001/tcp` maps the port on the router, prints the external address, and Ctrl-C (SIGINT)
// removes the mapping. Runs from the repository root, which CI has freshly cloned and installed.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { requireLab, withLab } from './lab.js'

const repoRoot = fileURLToPath(new URL('../../../', import.meta.url))

test('README: `npx natmapper map 4001/tcp` on the client host maps, prints the external address, and Ctrl-C removes it', { timeout: 60_000 }, async (t) => {
  await requireLab(t)
  const readme = readFileSync(new URL('README.md', `file://${repoRoot}`), 'utf8')
  assert.match(readme, /^npx natmapper map 4001\/tcp/m, 'the README shows the command this test runs')
  await withLab({}, async (lab) => {
    const listener = await lab.listen('lan', 4001, 'tcp')
    // npx runs natmapper through npm and a shell. Ctrl-C in a terminal signals the whole
    // foreground process group, so the test starts one and signals it the same way.
    const cli = lab.spawn('lan', 'npx', ['natmapper', 'map', '4001/tcp'], { cwd: repoRoot, processGroup: true })
    let stdout = ''
    let stderr = ''
    cli.stdout?.setEncoding('utf8').on('data', (d: string) => { stdout += d })
    cli.stderr?.setEncoding('utf8').on('data', (d: string) => { stderr += d })
    const exited = new Promise<number | null>((resolve) => cli.once('exit', (code) => { resolve(code) }))
    const deadline = Date.now() + 20_000
    while (!/^mapped tcp 4001 -> /m.test(stdout)) {
      if (Date.now() > deadline) throw new Error(`no mapped line; stdout: ${stdout} stderr: ${stderr}`)
      await new Promise((resolve) => setTimeout(resolve, 50))
    }
    const line = /^mapped tcp 4001 -> (\S+):(\d+) /m.exec(stdout)!
    assert.equal(line[1], lab.externalAddress, 'the human output names the external address')
    const externalPort = Number(line[2])
    assert.ok((await lab.rules()).dnat.some((r) => r.externalPort === externalPort && r.internalPort === 4001))
    assert.equal(await lab.connect('wan', lab.externalAddress, externalPort), listener.token)
    process.kill(-cli.pid!, 'SIGINT')
    const code = await exited
    t.diagnostic(`natmapper output: ${JSON.stringify(stdout + stderr)}; npx exit code ${String(code)}`)
    // npm itself may end by the signal (it re-raises SIGINT); natmapper under it cleaned up and
    // said so, which is what the user sees.
    assert.match(stdout, /^unmapped tcp 4001$/m, stderr)
    assert.deepEqual((await lab.rules()).dnat, [], 'Ctrl-C removed the mapping')
  })
})
