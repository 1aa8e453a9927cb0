import { requireBuiltin } from '../builtin.js'
import { UsageError } from '../errors.js'
import { createOutput } from './output.js'
import * as demoCommand from './demo.js'
import * as discoverCommand from './discover.js'
import * as doctorCommand from './doctor.js'
import * as externalIpCommand from './external-ip.js'
import * as listCommand from './list.js'
import * as mapCommand from './map.js'
import * as unmapCommand from './unmap.js'

export const mainHelp = `Usage: natmapper <command> [options]

Keeps ports on this machine reachable from the internet through the NAT router, with PCP,
NAT-PMP or UPnP IGD.

Commands:
  discover                   which gateway, which protocols it speaks, its external address
  map <port>[/tcp|/udp]...   map ports and keep them mapped until interrupted
  unmap <port>/<proto>...    delete mappings natmapper left (map --once, a crash); --all for every one
  list                       mappings natmapper left on the gateway
  external-ip                print the gateway's external address
  doctor                     step-by-step check, with advice, to paste into a bug report
  demo                       the whole flow against a simulated router, in-process

Options:
  -h, --help                 show help (also: natmapper <command> --help)
  -v, --version              show the version

Exit codes: 0 success, 1 failure (no gateway, refused, timed out, not public with --once, a
mapping not deleted), 2 bad usage, 130 interrupted before anything was mapped, or twice
(cleanup skipped).
Environment: NODE_DEBUG=natmapper logs every exchange with the router on stderr; NO_COLOR
turns colour off.
`

interface Command { run: (argv: string[]) => Promise<number>, help: string }

/**
 * Every command is loaded with the CLI. Each in a module of its own, loaded when it ran, split the
 * published bundle into 29 files, and the library's `import 'natmapper'` took 13 of them instead
 * of 6: Node's ESM loader costs about a millisecond per module in a fresh process, more than
 * compiling the commands a run does not use (bench/analysis.md).
 */
const commands: Record<string, Command> = {
  discover: { run: discoverCommand.runDiscover, help: discoverCommand.discoverHelp },
  map: { run: mapCommand.runMap, help: mapCommand.mapHelp },
  unmap: { run: unmapCommand.runUnmap, help: unmapCommand.unmapHelp },
  list: { run: listCommand.runList, help: listCommand.listHelp },
  'external-ip': { run: externalIpCommand.runExternalIp, help: externalIpCommand.externalIpHelp },
  doctor: { run: doctorCommand.runDoctor, help: doctorCommand.doctorHelp },
  demo: { run: demoCommand.runDemo, help: demoCommand.demoHelp }
}

export async function main (argv: string[]): Promise<number> {
  const [command, ...rest] = argv
  const verbose = argv.includes('--verbose')
  try {
    if (command === undefined || command === '-h' || command === '--help' || command === 'help') {
      const topic = command === 'help' ? rest[0] : undefined
      const about = topic === undefined ? undefined : commands[topic]
      process.stdout.write(about !== undefined ? about.help : mainHelp)
      return command === undefined ? 2 : 0
    }
    if (command === '-v' || command === '--version') {
      process.stdout.write(`${version()}\n`)
      return 0
    }
    const run = commands[command]?.run
    if (run === undefined) throw new UsageError(`unknown command ${JSON.stringify(command)}; see natmapper --help`)
    return await run(rest)
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
