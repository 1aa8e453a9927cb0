#!/usr/bin/env node
// The published build: declarations from tsc, JavaScript from esbuild as a few bundled files.
// Node's ESM loader costs about a millisecond per module in a fresh process (resolution,
// package scope look-ups, a file read, a compile): the 60 modules of src/ took 55-80 ms to
// import, one bundle 22-35 ms (BENCHMARKS.md, benchmark 6). The entry points keep the paths of
// `exports` and `bin`; code they share goes into dist/chunks/, so natmapper, natmapper/upnp and
// natmapper/testing share one copy of each class (instanceof works across them).
import { execFileSync } from 'node:child_process'
import { rmSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const require = createRequire(import.meta.url)
rmSync(join(root, 'dist'), { recursive: true, force: true })
execFileSync(process.execPath, [require.resolve('typescript/bin/tsc'), '-p', join(root, 'tsconfig.json'), '--emitDeclarationOnly'], { stdio: 'inherit' })
const { build } = await import('esbuild')
await build({
  absWorkingDir: root,
  entryPoints: { index: 'src/index.ts', 'upnp/index': 'src/upnp/index.ts', 'testing/index': 'src/testing/index.ts', 'libp2p/index': 'src/libp2p/index.ts', 'cli/bin': 'src/cli/bin.ts' },
  outdir: 'dist',
  bundle: true,
  splitting: true,
  chunkNames: 'chunks/[name]-[hash]',
  format: 'esm',
  platform: 'node',
  target: 'node20',
  // The one runtime dependency stays a dependency (loaded on first use, see src/upnp/xml.ts).
  external: ['saxes'],
  logLevel: 'warning'
})
