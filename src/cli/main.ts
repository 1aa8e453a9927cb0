import { readFileSync } from 'node:fs'
import { UsageError } from '../errors.js'
import { demoHelp, runDemo } from './demo.js'
import { discoverHelp, runDiscover } from './discover.js'
import { doctorHelp, runDoctor } from './doctor.js'
import { externalIpHelp, runExternalIp } from './external-ip.js'
import { listHelp, runList } from './list.js'
import { mapHelp, runMap } from './map.js'
import { createOutput } from './output.js'
import { runUnmap, unmapHelp } from './unmap.js'

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

const commands: Record<string, { run: (argv: string[]) => Promise<number>, help: string }> = {
  discover: { run: runDiscover, help: discoverHelp },
  map: { run: runMap, help: mapHelp },
  unmap: { run: runUnmap, help: unmapHelp },
  list: { run: runList, help: listHelp },
  'external-ip': { run: runExternalIp, help: externalIpHelp },
  doctor: { run: runDoctor, help: doctorHelp },
  demo: { run: runDemo, help: demoHelp }
}

export async function main (argv: string[]): Promise<number> {
  const [command, ...rest] = argv
  const verbose = argv.includes('--verbose')
  try {
    if (command === undefined || command === '-h' || command === '--help' || command === 'help') {
      const topic = command === 'help' ? rest[0] : undefined
      process.stdout.write(topic !== undefined && commands[topic] !== undefined ? commands[topic].help : mainHelp)
      return command === undefined ? 2 : 0
    }
    if (command === '-v' || command === '--version') {
      process.stdout.write(`${version()}\n`)
      return 0
    }
    const entry = commands[command]
    if (entry === undefined) throw new UsageError(`unknown command ${JSON.stringify(command)}; see natmapper --help`)
    return await entry.run(rest)
  } catch (err) {
    createOutput({ json: false, verbose }).error(err)
    return err instanceof UsageError || (err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS') === true ? 2 : 1
  }
}

function version (): string {
  // dist/cli/main.js and build/src/cli/main.js sit two and three levels below package.json.
  for (const up of ['../../package.json', '../../../package.json']) {
    try {
      const pkg = JSON.parse(readFileSync(new URL(up, import.meta.url), 'utf8')) as { name?: string, version?: string }
      if (pkg.name === 'natmapper' && pkg.version !== undefined) return pkg.version
    } catch {}
  }
  return 'unknown'
}
