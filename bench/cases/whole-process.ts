import type { Lab } from '../../test/lab/lab.js'
import { clearLeftovers, cliPath, describeCounts, PortPool, requestsSince, type BenchContext } from '../lib/context.js'
import { verdict, type Section } from '../lib/report.js'
import { startRunner, type Runner } from '../lib/runner.js'
import { formatMs, formatSummary, summarize } from '../lib/stats.js'
import { withBenchLab } from './first-mapping.js'

/**
 * Benchmark 2: whole-process time of `natmapper map --once` against natpmpc and upnpc, timed
 * from spawn to exit by runners/spawn-timer.ts inside the lan namespace (hyperfine-style: one
 * warm-up run, then alternating samples). Each sample maps a fresh port; the mapping is checked
 * on the router, then deleted by the same tool and the table checked empty.
 */

interface Command {
  label: string
  /** Skipped in --quick. */
  slow?: boolean
  argv: (lab: Lab, port: number) => string[]
  /** What must be in stdout for the run to count as a mapping. */
  expect: RegExp
  /** The same tool's delete, run the same way; `natmapper map --once` saves the PCP nonce for `natmapper unmap`. */
  cleanup: { label: string, argv: (lab: Lab, port: number) => string[] }
}

const natmapperUnmap = { label: 'natmapper unmap PORT/tcp', argv: (_lab: Lab, port: number): string[] => [process.execPath, cliPath, 'unmap', `${port}/tcp`] }
const natpmpcDelete = { label: 'natpmpc -a PORT 0 tcp 0', argv: (lab: Lab, port: number): string[] => ['natpmpc', '-g', lab.gatewayLanAddress, '-a', String(port), '0', 'tcp', '0'] }
const upnpcDelete = { label: 'upnpc -d PORT tcp', argv: (lab: Lab, port: number): string[] => ['upnpc', '-u', lab.descriptionUrl ?? '', '-d', String(port), 'tcp'] }

function commands (): Command[] {
  return [
    {
      label: 'natmapper map PORT/tcp --once',
      argv: (_lab, port) => [process.execPath, cliPath, 'map', `${port}/tcp`, '--once'],
      expect: /mapped tcp/,
      cleanup: natmapperUnmap
    },
    {
      label: 'natmapper map PORT/tcp --once --protocol natpmp',
      slow: true,
      argv: (_lab, port) => [process.execPath, cliPath, 'map', `${port}/tcp`, '--once', '--protocol', 'natpmp'],
      expect: /mapped tcp/,
      cleanup: natmapperUnmap
    },
    {
      label: 'natmapper map PORT/tcp --once --protocol upnp',
      slow: true,
      argv: (_lab, port) => [process.execPath, cliPath, 'map', `${port}/tcp`, '--once', '--protocol', 'upnp'],
      expect: /mapped tcp/,
      cleanup: natmapperUnmap
    },
    {
      label: 'natpmpc -g GW -a PORT PORT tcp 7200',
      argv: (lab, port) => ['natpmpc', '-g', lab.gatewayLanAddress, '-a', String(port), String(port), 'tcp', '7200'],
      expect: /Mapped public port/,
      cleanup: natpmpcDelete
    },
    {
      label: 'upnpc -u DESC_URL -a CLIENT PORT PORT tcp (no SSDP)',
      argv: (lab, port) => ['upnpc', '-u', lab.descriptionUrl ?? '', '-e', 'bench', '-a', lab.clientAddress, String(port), String(port), 'tcp', '7200'],
      expect: /is redirected to internal/,
      cleanup: upnpcDelete
    },
    {
      label: 'upnpc -a CLIENT PORT PORT tcp (SSDP discovery)',
      slow: true,
      argv: (lab, port) => ['upnpc', '-e', 'bench', '-a', lab.clientAddress, String(port), String(port), 'tcp', '7200'],
      expect: /is redirected to internal/,
      cleanup: upnpcDelete
    }
  ]
}

interface Result {
  command: Command
  samples: number[]
  deletes: number[]
  leftovers: number
  requests: string[]
  failures: string[]
  notMeasured: string | undefined
}

async function timed (runner: Runner, argv: string[]): Promise<{ ms: number, code: number | null, stdout: string, stderr: string }> {
  runner.send(JSON.stringify(argv))
  const m = await runner.next('timed', 30_000)
  return { ms: m.ms as number, code: m.code as number | null, stdout: String(m.stdout), stderr: String(m.stderr) }
}

export async function wholeProcess (ctx: BenchContext): Promise<Section> {
  const ports = new PortPool(31000)
  const list = commands().filter((c) => !(ctx.quick && c.slow === true))
  const results: Result[] = list.map((command) => ({ command, samples: [], deletes: [], leftovers: 0, requests: [], failures: [], notMeasured: undefined }))
  ctx.log('2. whole process: natmapper map --once vs natpmpc and upnpc')
  await withBenchLab({}, async (lab) => {
    // natmapper map --once records its mappings here for natmapper unmap; keep them out of $HOME.
    const runner = startRunner(lab, 'spawn-timer', [], 'lan', { ...process.env, NATMAPPER_STATE_FILE: `/tmp/natmapper-bench/state-${lab.prefix}.json` })
    try {
      const sample = async (r: Result, counted: boolean): Promise<void> => {
        const port = ports.take()
        const from = lab.routerLog().length
        const t = await timed(runner, r.command.argv(lab, port))
        const to = lab.routerLog().length
        const ok = t.code === 0 && r.command.expect.test(t.stdout + t.stderr)
        const onRouter = ok && (await lab.rules()).dnat.some((d) => d.protocol === 'tcp' && d.externalPort === port)
        if (counted) {
          if (ok && onRouter) {
            r.samples.push(t.ms)
            r.requests.push(describeCounts(requestsSince(lab, from, to)))
          } else {
            const why = ok ? 'exited 0 but no rule on the router' : `exit ${String(t.code)}: ${(t.stderr.trim() || t.stdout.trim()).split('\n').pop() ?? ''}`
            r.failures.push(why)
            if (/must be one of|not supported|unknown/i.test(why) || (r.samples.length === 0 && r.failures.length >= 2)) r.notMeasured = why
          }
        }
        if (onRouter) {
          const d = await timed(runner, r.command.cleanup.argv(lab, port))
          if (counted && d.code === 0) r.deletes.push(d.ms)
        }
        if ((await clearLeftovers(lab)).length > 0 && counted) r.leftovers++
      }
      // Warm-up: one untimed run of each, as hyperfine does (page cache, lazy kernel state).
      if (!ctx.quick) for (const r of results) await sample(r, false)
      for (let rep = 0; rep < ctx.reps; rep++) {
        for (let i = 0; i < results.length; i++) {
          const r = results[(i + rep) % results.length]!
          if (r.notMeasured === undefined) await sample(r, true)
        }
      }
      runner.send('exit')
      await runner.exited
    } finally {
      runner.kill()
    }
  })

  const rows = results.map((r) => {
    const s = summarize(r.samples)
    if (s === undefined) return [r.command.label, `not measured: ${r.notMeasured ?? r.failures[0] ?? 'no sample'}`, '', r.command.cleanup.label, '']
    const left = r.leftovers === 0 ? 'table empty after each' : `left a mapping ${r.leftovers} time(s)`
    return [r.command.label, formatSummary(s), r.requests[0] ?? '', `${r.command.cleanup.label}: ${formatSummary(summarize(r.deletes))}; ${left}` + (r.failures.length > 0 ? `; ${r.failures.length} failed: ${r.failures[0]!}` : '')]
  })
  if (ctx.quick) rows.push(['(natmapper --protocol natpmp / upnp, upnpc with SSDP discovery)', 'skipped in --quick', '', ''])
  const ours = summarize(results[0]!.samples)
  return {
    id: 2,
    title: 'Whole process: `natmapper map --once` against natpmpc and upnpc',
    goal: 'natmapper map --once under 150 ms.',
    method: `each command is spawned from a timer process inside the lan namespace and timed from spawn to exit (hyperfine-style, written in TS${ctx.quick ? '' : '; one untimed warm-up run each'}); ${ctx.reps} samples each, alternating; a fresh port per sample, checked on the router, then deleted by the same tool and the table checked empty.`,
    columns: ['command', 'median (min–max, n)', 'router requests (one run)', 'deleted with the same tool (median time)'],
    rows,
    verdicts: [verdict(ours === undefined ? undefined : ours.median < 150, `natmapper map --once: ${ours === undefined ? 'n/a' : formatMs(ours.median)} (target < 150 ms)`)],
    notes: [`\`node -e ''\` start-up on this machine is part of every natmapper figure; see the footprint table for the bare Node start-up.`]
  }
}
