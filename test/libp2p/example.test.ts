// examples/libp2p.mjs runs as the README says: against natmapper/testing's simulated router
// (--simulated, loopback only), it prints the public address the node announced, what is mapped,
// and an empty router table after stop. It imports 'natmapper/libp2p' as users do: dist/.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { existsSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'

const root = fileURLToPath(new URL('../../../', import.meta.url))

test('examples/libp2p.mjs --simulated: reachable at the router\'s address, nothing left after stop', { skip: existsSync(`${root}dist/libp2p/index.js`) ? false : 'dist/ not built: run npm run build' }, async () => {
  const started = performance.now()
  const { stdout } = await promisify(execFile)(process.execPath, ['examples/libp2p.mjs', '--simulated'], { cwd: root, timeout: 20_000 })
  const lines = stdout.trim().split('\n')
  assert.match(lines[0] ?? '', /^reachable at \/ip4\/11\.0\.0\.1\/tcp\/(\d+)\/p2p\/12D3KooW\w+$/)
  const port = /tcp\/(\d+)\//.exec(lines[0] ?? '')?.[1]
  assert.equal(lines[1], `mapped on the router: tcp ${String(port)} -> ${String(port)} (pcp)`)
  assert.equal(lines[2], 'router table after stop: 0 mappings')
  assert.ok(performance.now() - started < 5000, 'it does not wait out its timeout once the address is there')
})
