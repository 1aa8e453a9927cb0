import { execFileSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { cpus, release, totalmem } from 'node:os'
import { formatBytes } from './stats.js'

/** The machine and versions a run was made on, for the head of BENCHMARKS.md. */
export interface MachineInfo {
  date: string
  nproc: number
  cpuModel: string
  memory: string
  kernel: string
  node: string
  versions: Record<string, string>
}

function version (cmd: string, args: string[], pattern: RegExp): string {
  try {
    const out = execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 5000 })
    return pattern.exec(out)?.[1] ?? out.trim().split('\n')[0] ?? 'unknown'
  } catch (err) {
    const e = err as { stdout?: string, stderr?: string }
    const out = `${e.stdout ?? ''}${e.stderr ?? ''}`
    return pattern.exec(out)?.[1] ?? 'unknown'
  }
}

function debianVersion (pkg: string): string {
  return version('dpkg-query', ['-W', '-f=${Version}', pkg], /^(\S+)/)
}

/** Other work in progress in the checkout is measured too (the build and `npm pack` take the work tree). */
function dirty (repoRoot: string): string {
  try {
    const out = execFileSync('git', ['-C', repoRoot, 'status', '--porcelain', '--untracked-files=no'], { encoding: 'utf8', timeout: 5000 })
    const files = out.split('\n').filter((l) => l.trim() !== '').map((l) => l.slice(3))
    return files.length === 0 ? ' (clean work tree)' : ` plus uncommitted changes in the work tree: ${files.join(', ')}`
  } catch {
    return ''
  }
}

export function machineInfo (repoRoot: string): MachineInfo {
  const pkg = (path: string): string => {
    try {
      return (JSON.parse(readFileSync(path, 'utf8')) as { version?: string }).version ?? 'unknown'
    } catch {
      return 'not installed'
    }
  }
  return {
    date: new Date().toISOString(),
    nproc: cpus().length,
    cpuModel: cpus()[0]?.model ?? 'unknown',
    memory: formatBytes(totalmem()),
    kernel: release(),
    node: process.version,
    versions: {
      natmapper: pkg(`${repoRoot}/package.json`),
      '@achingbrain/nat-port-mapper': pkg(`${repoRoot}/node_modules/@achingbrain/nat-port-mapper/package.json`),
      '@achingbrain/ssdp': pkg(`${repoRoot}/node_modules/@achingbrain/ssdp/package.json`),
      'miniupnpd-nftables': debianVersion('miniupnpd-nftables'),
      'miniupnpc (upnpc)': debianVersion('miniupnpc'),
      natpmpc: debianVersion('natpmpc'),
      npm: version('npm', ['--version'], /^(\S+)/),
      git: `${version('git', ['-C', repoRoot, 'rev-parse', '--short', 'HEAD'], /^(\S+)/)}${dirty(repoRoot)}`
    }
  }
}
