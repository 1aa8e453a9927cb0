import { execFile } from 'node:child_process'
import { existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { promisify } from 'node:util'
import type { BenchContext } from '../lib/context.js'
import { verdict, type Section } from '../lib/report.js'
import { formatBytes, formatMs, formatRatio, formatSummary, summarize } from '../lib/stats.js'

/**
 * Benchmark 6: what a user installs. `npm pack` of natmapper installed into an empty project,
 * against `npm install @achingbrain/nat-port-mapper` the same way (both from the npm registry for
 * their dependencies); packages (node_modules folders with a package.json), bytes on disk, and
 * cold import time in fresh Node processes, alternating.
 */

const exec = promisify(execFile)
const WORK = '/tmp/natmapper-bench/footprint'

interface Installed {
  label: string
  dir: string
  specifier: string
  packages: string[]
  bytes: number
  diskKiB: number
  installMs: number
  cached: boolean
}

function walkPackages (nodeModules: string, out: string[]): void {
  if (!existsSync(nodeModules)) return
  for (const name of readdirSync(nodeModules)) {
    if (name.startsWith('.')) continue
    const path = join(nodeModules, name)
    if (name.startsWith('@')) {
      walkPackages(path, out)
      continue
    }
    if (existsSync(join(path, 'package.json'))) {
      const pkg = JSON.parse(readFileSync(join(path, 'package.json'), 'utf8')) as { name?: string, version?: string }
      out.push(`${pkg.name ?? name}@${pkg.version ?? '?'}`)
    }
    walkPackages(join(path, 'node_modules'), out)
  }
}

function apparentBytes (path: string): number {
  const st = lstatSync(path)
  if (!st.isDirectory()) return st.size
  let total = 0
  for (const name of readdirSync(path)) total += apparentBytes(join(path, name))
  return total
}

async function install (label: string, dir: string, what: string, specifier: string, reuse: boolean): Promise<Installed> {
  const nodeModules = join(dir, 'node_modules')
  const marker = join(dir, '.installed-from')
  let installMs = 0
  const cached = reuse && existsSync(marker) && readFileSync(marker, 'utf8') === what
  if (!cached) {
    rmSync(dir, { recursive: true, force: true })
    mkdirSync(dir, { recursive: true })
    writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: `footprint-${label.replace(/\W+/g, '-')}`, version: '1.0.0', private: true, type: 'module' }, null, 2))
    const t0 = performance.now()
    await exec('npm', ['install', '--no-audit', '--no-fund', '--omit=dev', what], { cwd: dir, timeout: 180_000 })
    installMs = performance.now() - t0
    writeFileSync(marker, what)
  }
  const packages: string[] = []
  walkPackages(nodeModules, packages)
  const du = await exec('du', ['-sk', nodeModules])
  return { label, dir, specifier, packages, bytes: apparentBytes(nodeModules), diskKiB: Number(du.stdout.split(/\s/)[0]), installMs, cached }
}

/** One fresh process: the import's own time (inside) and the whole process (outside). */
async function coldImport (dir: string, specifier: string): Promise<{ importMs: number, processMs: number }> {
  const script = `const t = performance.now(); await import(${JSON.stringify(specifier)}); process.stdout.write(String(performance.now() - t))`
  const t0 = performance.now()
  const r = await exec(process.execPath, ['--input-type=module', '-e', script], { cwd: dir })
  return { importMs: Number(r.stdout), processMs: performance.now() - t0 }
}

export async function footprint (ctx: BenchContext): Promise<Section> {
  mkdirSync(WORK, { recursive: true })
  ctx.log('6. footprint: npm pack, install into empty projects')
  const rootPkg = JSON.parse(readFileSync(join(ctx.repoRoot, 'package.json'), 'utf8')) as { dependencies?: Record<string, string> }
  const peerVersion = (JSON.parse(readFileSync(join(ctx.repoRoot, 'node_modules/@achingbrain/nat-port-mapper/package.json'), 'utf8')) as { version: string }).version
  // --quick packs the dist already built (no `prepare`); a full run rebuilds it first.
  const packArgs = ['pack', '--json', '--pack-destination', WORK, ...(ctx.quick && existsSync(join(ctx.repoRoot, 'dist/index.js')) ? ['--ignore-scripts'] : [])]
  const pack = JSON.parse((await exec('npm', packArgs, { cwd: ctx.repoRoot, timeout: 180_000, maxBuffer: 16 << 20 })).stdout) as Array<{ filename: string, size: number, unpackedSize: number, entryCount: number, integrity: string }>
  const tarball = pack[0]!
  const tarPath = join(WORK, tarball.filename)
  const ours = await install('natmapper', join(WORK, 'natmapper'), tarPath, 'natmapper', false)
  const peer = await install('peer', join(WORK, 'peer'), `@achingbrain/nat-port-mapper@${peerVersion}`, '@achingbrain/nat-port-mapper', ctx.quick)

  ctx.log('6. footprint: cold imports')
  const samples = { ours: [] as number[], peer: [] as number[], oursProcess: [] as number[], peerProcess: [] as number[], node: [] as number[] }
  const reps = ctx.quick ? 3 : 11
  for (let i = 0; i < reps; i++) {
    const order = i % 2 === 0 ? [ours, peer] : [peer, ours]
    for (const inst of order) {
      const r = await coldImport(inst.dir, inst.specifier)
      if (inst === ours) { samples.ours.push(r.importMs); samples.oursProcess.push(r.processMs) } else { samples.peer.push(r.importMs); samples.peerProcess.push(r.processMs) }
    }
    const t0 = performance.now()
    await exec(process.execPath, ['-e', ''])
    samples.node.push(performance.now() - t0)
  }
  const importOurs = summarize(samples.ours)!
  const importPeer = summarize(samples.peer)!
  const row = (inst: Installed, imp: number[], proc: number[]): string[] => [
    inst.label === 'natmapper' ? `natmapper ${tarball.filename} (packed ${formatBytes(tarball.size)}, ${tarball.entryCount} files)` : `@achingbrain/nat-port-mapper@${peerVersion}`,
    String(inst.packages.length),
    `${formatBytes(inst.bytes)} (du ${formatBytes(inst.diskKiB * 1024)})`,
    formatSummary(summarize(imp)),
    formatSummary(summarize(proc)),
    inst.packages.join(', ')
  ]
  const directDeps = Object.keys(rootPkg.dependencies ?? {})
  const packageRatio = ours.packages.length < peer.packages.length
  const bytesRatio = ours.bytes / peer.bytes
  const importRatio = importPeer.median / importOurs.median
  return {
    id: 6,
    title: 'Footprint of the packed package, installed in an empty project',
    goal: 'at most 3 runtime dependencies, under 1 MB, import at least 2× faster than the peer; done-when: fewer packages than the peer, at most half its bytes.',
    method: `\`npm pack\` of natmapper (${ctx.quick ? 'dist as built, --ignore-scripts' : 'rebuilt by prepare'}) and \`npm install <tarball>\` into an empty project; \`npm install @achingbrain/nat-port-mapper@${peerVersion}\` into another (both --omit=dev). Packages = node_modules folders holding a package.json; bytes = sum of file sizes under node_modules (du in brackets). Import = \`await import(name)\` timed inside a fresh \`node --input-type=module -e\` process, ${reps} processes each, alternating; the whole process is timed from outside too.`,
    columns: ['package', 'packages installed', 'bytes on disk', 'cold import, median (min–max, n)', 'whole process', 'packages'],
    rows: [
      row(ours, samples.ours, samples.oursProcess),
      row(peer, samples.peer, samples.peerProcess),
      ['(bare `node -e \'\'`, for reference)', '', '', '', formatSummary(summarize(samples.node)), '']
    ],
    verdicts: [
      verdict(directDeps.length <= 3, `runtime dependencies: ${directDeps.length} direct (${directDeps.join(', ') || 'none'}), ${ours.packages.length - 1} installed besides natmapper (target ≤ 3)`),
      verdict(ours.bytes < 1_000_000, `bytes on disk: ${formatBytes(ours.bytes)} (target < 1 MB)`),
      verdict(packageRatio, `packages: ${ours.packages.length} vs the peer's ${peer.packages.length} (done-when: fewer)`),
      verdict(bytesRatio <= 0.5, `bytes: ${formatBytes(ours.bytes)} vs ${formatBytes(peer.bytes)}, ${(bytesRatio * 100).toFixed(0)}% of the peer's (done-when: ≤ 50%)`),
      verdict(importRatio >= 2, `cold import: ${formatMs(importOurs.median)} vs ${formatMs(importPeer.median)}, ${formatRatio(importRatio)} faster (target ≥ 2×)`)
    ],
    notes: [`Install times (registry, npm cache warm or cold): natmapper ${ours.cached ? 'cached' : formatMs(ours.installMs)}, peer ${peer.cached ? 'reused from an earlier run' : formatMs(peer.installMs)}.`]
  }
}
