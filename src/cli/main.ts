import { readFileSync } from 'node:fs'
import { NatmapperError, UsageError } from '../errors.js'
import { mapHelp, runMap } from './map.js'
import { createOutput } from './output.js'

export const mainHelp = `Usage: natmapper <command> [options]

Keeps ports on this machine reachable from the internet through the NAT router.

Commands:
  map <port>[/tcp|/udp]...   map ports and keep them mapped until interrupted

Options:
  -h, --help                 show help (also: natmapper <command> --help)
  -v, --version              show the version

Exit codes: 0 success, 1 failure (no gateway, refused, timed out), 2 bad usage,
130 interrupted twice (cleanup skipped).
Logs: NODE_DEBUG=natmapper prints every exchange with the router on stderr.
`

const commandHelp: Record<string, string> = { map: mapHelp }

export async function main (argv: string[]): Promise<number> {
  const [command, ...rest] = argv
  const verbose = argv.includes('--verbose')
  try {
    if (command === undefined || command === '-h' || command === '--help' || command === 'help') {
      const topic = command === 'help' ? rest[0] : undefined
      process.stdout.write(topic !== undefined && commandHelp[topic] !== undefined ? commandHelp[topic] : mainHelp)
      return command === undefined ? 2 : 0
    }
    if (command === '-v' || command === '--version') {
      process.stdout.write(`${version()}\n`)
      return 0
    }
    switch (command) {
      case 'map': return await runMap(rest)
      default: throw new UsageError(`unknown command ${JSON.stringify(command)}; see natmapper --help`)
    }
  } catch (err) {
    createOutput({ json: false, verbose }).error(err)
    if (err instanceof UsageError || (err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS') === true) return 2
    if (err instanceof NatmapperError) return 1
    return 1
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
