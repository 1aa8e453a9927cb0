/**
 * `npm run bench` runs the six benchmarks of issue 7 and the port-range one of issue 16 (7) and the IPv6 pinhole one of issue 14 (8) in the real-router lab (miniupnpd in network
 * namespaces, test/lab/lab.ts), comparing natmapper with @achingbrain/nat-port-mapper, natpmpc
 * and upnpc, prints the tables and writes BENCHMARKS.md.
 *
 *   npm run bench                  every benchmark, at least 7 samples each (several minutes)
 *   npm run bench -- --quick       3 samples, the slowest rows skipped; under a minute
 *   npm run bench -- --only=1,5    only these benchmarks (the file is written only for a full set)
 *   npm run bench -- --no-write    print, do not write BENCHMARKS.md
 *   npm run bench -- --only=8 --update   rewrite only these sections of BENCHMARKS.md, each noting its own run
 *
 * Needs root and the lab's packages, like `npm run test:lab`; sends nothing outside the lab's
 * namespaces and loopback (the footprint benchmark installs from the npm registry).
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import { loadavg } from 'node:os'
import { join } from 'node:path'
import { labPreflight } from '../test/lab/lab.js'
import { firstMapping } from './cases/first-mapping.js'
import { footprint } from './cases/footprint.js'
import { ipv6Pinhole } from './cases/ipv6-pinhole.js'
import { ranges } from './cases/ranges.js'
import { recovery } from './cases/recovery.js'
import { scale } from './cases/scale.js'
import { steadyState } from './cases/steady-state.js'
import { wholeProcess } from './cases/whole-process.js'
import { repoRoot, type BenchContext } from './lib/context.js'
import { machineInfo } from './lib/machine.js'
import { renderSection, renderTable, type Section } from './lib/report.js'

const CASES: Array<{ id: number, run: (ctx: BenchContext) => Promise<Section> }> = [
  { id: 1, run: firstMapping },
  { id: 2, run: wholeProcess },
  { id: 3, run: steadyState },
  { id: 4, run: recovery },
  { id: 5, run: scale },
  { id: 6, run: footprint },
  { id: 7, run: ranges },
  { id: 8, run: ipv6Pinhole }
]

const argv = process.argv.slice(2)
const quick = argv.includes('--quick')
const only = argv.find((a) => a.startsWith('--only='))?.slice('--only='.length).split(',').map(Number)
const write = !argv.includes('--no-write') && !quick && only === undefined
const update = argv.includes('--update') && !quick && only !== undefined
const started = performance.now()
const log = (line: string): void => { process.stderr.write(`[bench ${((performance.now() - started) / 1000).toFixed(1)} s] ${line}\n`) }

const reasons = await labPreflight()
if (reasons.length > 0) {
  console.error(`npm run bench needs the real-router lab, which cannot run here:\n${reasons.map((r) => `  - ${r}`).join('\n')}\n` +
    'Run it as root on Linux with iproute2 nftables miniupnpd-nftables miniupnpc natpmpc installed.')
  process.exit(1)
}

const ctx: BenchContext = { quick, reps: quick ? 3 : 7, repoRoot, log }
const machine = machineInfo(repoRoot)
const loadBefore = loadavg()
const sections: Section[] = []
let failed = false
for (const c of CASES) {
  if (only !== undefined && !only.includes(c.id)) continue
  const t0 = performance.now()
  try {
    const section = await c.run(ctx)
    section.notes.push(`(this benchmark took ${((performance.now() - t0) / 1000).toFixed(1)} s)`)
    sections.push(section)
    process.stdout.write(`\n${renderSection(section)}\n`)
  } catch (err) {
    failed = true
    log(`benchmark ${c.id} failed: ${(err as Error).stack ?? String(err)}`)
    sections.push({ id: c.id, title: `benchmark ${c.id}`, goal: '', method: '', columns: ['error'], rows: [[`failed: ${(err as Error).message}`]], verdicts: [], notes: [] })
  }
}
const loadAfter = loadavg()
const totalS = (performance.now() - started) / 1000
log(`done in ${totalS.toFixed(1)} s`)

if (write) {
  const head = [
    '# natmapper benchmarks',
    '',
    'Written by `npm run bench` (bench/run.ts) from one run; do not edit by hand. The issue is #7.',
    '',
    '## Machine and versions',
    '',
    renderTable(['what', 'value'], [
      ['date', machine.date],
      ['CPU', `${machine.cpuModel} (nproc ${machine.nproc})`],
      ['memory', machine.memory],
      ['kernel', machine.kernel],
      ['Node', machine.node],
      ...Object.entries(machine.versions).map(([k, v]) => [k, v]),
      ['load average (1 min) before / after', `${loadBefore[0]!.toFixed(2)} / ${loadAfter[0]!.toFixed(2)}`],
      ['run time', `${totalS.toFixed(0)} s`]
    ]),
    '',
    'The machine is shared: other work ran on its two cores during the run (see the load average), so absolute times are noisy;',
    'every comparison is between samples taken alternately in the same run, and medians are quoted.',
    '',
    '## Summary of this run',
    '',
    ...sections.flatMap((section) => section.verdicts.map((v) => `- ${section.id}. ${v}`)),
    '',
    '## Reproduce',
    '',
    '```sh',
    '# as root on Debian/Ubuntu (the lab needs network namespaces and nftables)',
    'apt-get install -y miniupnpd-nftables nftables miniupnpc natpmpc iproute2',
    'npm ci',
    'npm run bench            # all six, ≥ 7 samples each; writes BENCHMARKS.md',
    'npm run bench -- --quick # 3 samples, slowest rows skipped; prints only',
    '```',
    ''
  ]
  // The hand-written reading of the numbers (what the time is spent on, what was changed).
  const analysisFile = join(repoRoot, 'bench', 'analysis.md')
  const analysis = existsSync(analysisFile) ? [readFileSync(analysisFile, 'utf8').trim()] : []
  writeFileSync(join(repoRoot, 'BENCHMARKS.md'), [head.join('\n'), ...sections.map(renderSection), ...analysis, ''].join('\n\n').replace(/\n{3,}/g, '\n\n'))
  log('wrote BENCHMARKS.md')
}
if (update && !failed) {
  const file = join(repoRoot, 'BENCHMARKS.md')
  const load = `load average (1 min) ${loadBefore[0]!.toFixed(2)} before, ${loadAfter[0]!.toFixed(2)} after`
  let text = readFileSync(file, 'utf8')
  for (const section of sections) {
    section.notes.push(`(this section alone, \`npm run bench -- --only=${section.id} --update\`, on ${machineInfo(repoRoot).date}, Node ${process.version}, ${load}; the machine table above is the full run's)`)
    const rendered = renderSection(section)
    const at = new RegExp(`^## ${section.id}\\. [^]*?(?=^## |(?![^]))`, 'm')
    // A new section goes after the last numbered one, before the hand-written analysis.
    const lastNumbered = [...text.matchAll(/^## \d+\. /gm)].at(-1)?.index ?? 0
    const next = /^## (?!\d+\. )/m.exec(text.slice(lastNumbered))
    const analysis = next === null ? text.length : lastNumbered + next.index
    text = at.test(text) ? text.replace(at, `${rendered}\n\n`) : `${text.slice(0, analysis)}${rendered}\n\n${text.slice(analysis)}`
  }
  writeFileSync(file, text.replace(/\n{3,}/g, '\n\n'))
  log(`updated section(s) ${sections.map((s) => s.id).join(', ')} of BENCHMARKS.md`)
}
process.exit(failed ? 1 : 0)
