// The natmapper/libp2p entry point as published (dist/, built by `npm ci` through 'prepare' or
// `npm run build`): its own subpath, nothing of it loaded by `import 'natmapper'`, and no libp2p
// package loaded by it. Runs on every Node: it needs no libp2p.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { existsSync, readFileSync } from 'node:fs'
import { dirname, join, resolve } from 'node:path'
import { execFileSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..')
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as {
  exports: Record<string, { types: string, default: string }>
  dependencies: Record<string, string>
  peerDependencies: Record<string, string>
  peerDependenciesMeta: Record<string, { optional?: boolean }>
}

/** Every file a dist module imports, statically or dynamically, transitively; bare specifiers apart. */
function importGraph (entry: string): { files: Set<string>, packages: Set<string> } {
  const files = new Set<string>()
  const packages = new Set<string>()
  const visit = (file: string): void => {
    if (files.has(file)) return
    files.add(file)
    const source = readFileSync(file, 'utf8')
    for (const m of source.matchAll(/(?:\bfrom\s*|\bimport\s*\(\s*|\bimport\s+)["']([^"']+)["']/g)) {
      const specifier = m[1]!
      if (specifier.startsWith('.')) visit(resolve(dirname(file), specifier))
      else packages.add(specifier)
    }
  }
  visit(entry)
  return { files, packages }
}

const distReady = existsSync(join(root, 'dist/index.js'))

test('package.json: natmapper/libp2p is its own export, libp2p an optional peer and no dependency', () => {
  assert.deepEqual(pkg.exports['./libp2p'], { types: './dist/libp2p/index.d.ts', default: './dist/libp2p/index.js' })
  assert.ok(Object.keys(pkg.dependencies).every((name) => !name.includes('libp2p')), 'no libp2p runtime dependency')
  for (const name of Object.keys(pkg.peerDependencies)) assert.equal(pkg.peerDependenciesMeta[name]?.optional, true, name)
})

test('import \'natmapper\' reaches nothing of dist/libp2p/ and no libp2p package', { skip: distReady ? false : 'dist/ not built: run npm run build' }, () => {
  for (const entry of ['dist/index.js', 'dist/upnp/index.js', 'dist/testing/index.js']) {
    const { files, packages } = importGraph(join(root, entry))
    assert.ok(files.size > 1, `${entry} imports its chunks`)
    assert.deepEqual([...files].filter((f) => f.includes('/dist/libp2p/')), [], entry)
    assert.deepEqual([...packages].filter((p) => p.includes('libp2p') || p.startsWith('@multiformats')), [], entry)
  }
})

test('natmapper/libp2p loads no libp2p package itself, and resolves from the package name', { skip: distReady ? false : 'dist/ not built: run npm run build' }, () => {
  assert.ok(existsSync(join(root, 'dist/libp2p/index.d.ts')), 'declarations emitted')
  const { packages } = importGraph(join(root, 'dist/libp2p/index.js'))
  assert.deepEqual([...packages].filter((p) => !p.startsWith('node:') && p !== 'saxes'), [], 'only built-ins')
  const out = execFileSync(process.execPath, ['--input-type=module', '-e',
    "const m = await import('natmapper/libp2p'); const f = m.natmapperNat(); console.log(typeof m.natmapperNat, typeof f)"], { cwd: root, encoding: 'utf8' })
  assert.equal(out.trim(), 'function function')
})
