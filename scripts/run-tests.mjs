#!/usr/bin/env node
// Runs the compiled tests with node:test. `npm test` runs everything under build/test except
// the lab suite; `--lab` runs only the lab suite (root, network namespaces, miniupnpd), one file
// at a time because each file builds its own lab. TAP on every Node (24 defaults to its spec
// reporter), so that the closing "# pass N" / "# fail N" lines are there for CI to read.
import { readdirSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { spawnSync } from 'node:child_process'

const lab = process.argv.includes('--lab')
const extra = process.argv.slice(2).filter((a) => a !== '--lab')
const root = join('build', 'test')

function find (dir) {
  const out = []
  for (const name of readdirSync(dir).sort()) {
    const path = join(dir, name)
    if (statSync(path).isDirectory()) out.push(...find(path))
    else if (name.endsWith('.test.js')) out.push(path)
  }
  return out
}

const labDir = join(root, 'lab')
// js-libp2p 3 needs Node >= 22 (Promise.withResolvers): its tests (build/test/libp2p/, and the
// lab's libp2p*.test.js) run in CI's runs on Node 22 and 24; here they are named and left out.
const needsNode22 = (f) => f.startsWith(join(root, 'libp2p') + '/') ||
  (f.startsWith(labDir + '/') && /^libp2p[^/]*\.test\.js$/.test(f.slice(labDir.length + 1)))
const nodeMajor = Number(process.versions.node.split('.')[0])
let files = find(root).filter((f) => f.startsWith(labDir + '/') === lab)
  .filter((f) => extra.length === 0 || extra.some((e) => f.includes(e)))
if (nodeMajor < 22) {
  const left = files.filter(needsNode22)
  if (left.length > 0) console.log(`# not run on Node ${process.versions.node}: ${left.join(', ')} (js-libp2p 3 needs Node >= 22; .ci/run runs them on Node ${lab ? '22' : '22 and 24'})`)
  files = files.filter((f) => !needsNode22(f))
  // Only those were asked for: nothing else to run (node --test with no file would search the tree).
  if (files.length === 0 && left.length > 0) process.exit(0)
}
if (files.length === 0) {
  console.error(`no test files found under ${lab ? labDir : root}`)
  process.exit(1)
}
const args = ['--test', '--test-reporter=tap', ...(lab ? ['--test-concurrency=1'] : []), ...files]
const result = spawnSync(process.execPath, args, { stdio: 'inherit' })
process.exit(result.status ?? 1)
