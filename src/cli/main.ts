import { requireBuiltin } from '../builtin.js'
import { UsageError } from '../errors.js'
import { createOutput } from './output.js'

export const mainHelp = `Usage: natmapper <command> [options]

Keeps ports on this machine reachable from the internet through the NAT router, with PCP,
NAT-PMP or UPnP IGD.

Commands:
  discover                   which gateway, which protocols it speaks, its external address
  map <port>[/tcp|/udp]...   map ports and keep them mapped until interrupted
  unmap <port>/<proto>...    delete mappings (e.g. those 'map --once' left)
  list                       mappings natmapper left on the gateway
  external-ip                print the gateway's external address
  doctor                     step-by-step check, with advice, to paste into a bug report
  demo                       the whole flow against a simulated router, in-process

Options:
  -h, --help                 show help (also: natmapper <command> --help)
  -v, --version              show the version

Exit codes: 0 success, 1 failure (no gateway, refused, timed out, not public with --once),
2 bad usage, 130 interrupted twice (cleanup skipped).
Environment: NODE_DEBUG=natmapper logs every exchange with the router on stderr; NO_COLOR
turns colour off.
`

interface Command { run: (argv: string[]) => Promise<number>, help: string }

/**
 * Each command's module is loaded when it runs: a process start of `natmapper map` then compiles
 * the mapping code only, not the demo's simulated routers or the doctor's report.
 */
const commands: Record<string, () => Promise<Command>> = {
  discover: async () => { const m = await import('./discover.js'); return { run: m.runDiscover, help: m.discoverHelp } },
  map: async () => { const m = await import('./map.js'); return { run: m.runMap, help: m.mapHelp } },
  unmap: async () => { const m = await import('./unmap.js'); return { run: m.runUnmap, help: m.unmapHelp } },
  list: async () => { const m = await import('./list.js'); return { run: m.runList, help: m.listHelp } },
  'external-ip': async () => { const m = await import('./external-ip.js'); return { run: m.runExternalIp, help: m.externalIpHelp } },
  doctor: async () => { const m = await import('./doctor.js'); return { run: m.runDoctor, help: m.doctorHelp } },
  demo: async () => { const m = await import('./demo.js'); return { run: m.runDemo, help: m.demoHelp } }
}

export async function main (argv: string[]): Promise<number> {
  const [command, ...rest] = argv
  const verbose = argv.includes('--verbose')
  try {
    if (command === undefined || command === '-h' || command === '--help' || command === 'help') {
      const topic = command === 'help' ? rest[0] : undefined
      const load = topic === undefined ? undefined : commands[topic]
      process.stdout.write(load !== undefined ? (await load()).help : mainHelp)
      return command === undefined ? 2 : 0
    }
    if (command === '-v' || command === '--version') {
      process.stdout.write(`${version()}\n`)
      return 0
    }
    const load = commands[command]
    if (load === undefined) throw new UsageError(`unknown command ${JSON.stringify(command)}; see natmapper --help`)
    return await (await load()).run(rest)
  } catch (err) {
    createOutput({ json: false, verbose }).error(err)
    return err instanceof UsageError || (err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS') === true ? 2 : 1
  }
}

function version (): string {
  // The code runs from dist/cli/bin.js or a bundle chunk in dist/chunks/ (one or two levels
  // below the package root), or from build/src/cli/ in the tests (three).
  for (const up of ['../package.json', '../../package.json', '../../../package.json']) {
    try {
      const pkg = JSON.parse(requireBuiltin<typeof import('node:fs')>('node:fs').readFileSync(new URL(up, import.meta.url), 'utf8')) as { name?: string, version?: string }
      if (pkg.name === 'natmapper' && pkg.version !== undefined) return pkg.version
    } catch {}
  }
  return 'unknown'
}
