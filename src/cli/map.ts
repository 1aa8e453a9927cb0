import { parseArgs } from 'node:util'
import { discoverNAT } from '../discover.js'
import { UsageError } from '../errors.js'
import type { MappingMethod } from '../gateway.js'
import { createOutput, type Output } from './output.js'
import { parseIntegerOption, parsePortSpec } from './ports.js'

export const mapHelp = `Usage: natmapper map <port>[/tcp|/udp]... [options]

Maps each port on the gateway and keeps the mappings alive until interrupted (Ctrl-C or
SIGTERM), then deletes every mapping it made and exits 0.

Options:
  --protocol pcp|natpmp   use this protocol only (default: PCP, falling back to NAT-PMP)
  --gateway IP            the gateway's address (default: the default route's gateway)
  --gateway-port N        the gateway's NAT-PMP/PCP port (default 5351; for simulated gateways)
  --lifetime S            lease to ask for, in seconds (default 7200)
  --external-port N       external port to ask for (only with a single port)
  --once                  map, print, and exit, leaving the mappings for their lifetime
  --json                  print one JSON object per line (NDJSON) instead of text
  --verbose               print stack traces with errors
  -h, --help              show this help
`

const methods = ['pcp', 'natpmp'] as const
const methodNames: Record<MappingMethod, string> = { pcp: 'PCP', natpmp: 'NAT-PMP', upnp: 'UPnP IGD' }

export async function runMap (argv: string[], output?: Output): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      protocol: { type: 'string' },
      gateway: { type: 'string' },
      'gateway-port': { type: 'string' },
      lifetime: { type: 'string' },
      'external-port': { type: 'string' },
      once: { type: 'boolean', default: false },
      json: { type: 'boolean', default: false },
      verbose: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false }
    }
  })
  const out = output ?? createOutput({ json: values.json, verbose: values.verbose })
  if (values.help) {
    process.stdout.write(mapHelp)
    return 0
  }
  if (positionals.length === 0) throw new UsageError('map needs at least one port, e.g. natmapper map 4001/tcp')
  const specs = positionals.map(parsePortSpec)
  const method = values.protocol
  if (method !== undefined && !(methods as readonly string[]).includes(method)) {
    throw new UsageError(`--protocol must be one of ${methods.join(', ')}, not ${JSON.stringify(method)}`)
  }
  const lifetimeSeconds = parseIntegerOption('lifetime', values.lifetime, 1, 0xffffffff) ?? 7200
  const gatewayPort = parseIntegerOption('gateway-port', values['gateway-port'], 1, 65535)
  const externalPort = parseIntegerOption('external-port', values['external-port'], 1, 65535)
  if (externalPort !== undefined && specs.length > 1) throw new UsageError('--external-port applies to a single port')

  const nat = await discoverNAT({
    lifetimeSeconds,
    ...(values.gateway === undefined ? {} : { gateway: values.gateway }),
    ...(method === undefined ? {} : { methods: [method as MappingMethod] }),
    ...(gatewayPort === undefined ? {} : { port: gatewayPort })
  })
  out.info(`gateway ${nat.gatewayAddress}, ${methodNames[nat.method]}`)

  let lastError: Error | undefined
  nat.on('mapped', (m) => {
    out.event('mapped', {
      protocol: m.protocol, internalPort: m.internalPort, externalAddress: m.externalAddress,
      externalPort: m.externalPort, method: m.method, lifetime: m.lifetimeSeconds
    }, `mapped ${m.protocol} ${m.internalPort} -> ${m.externalAddress ?? '?'}:${m.externalPort} (${m.method}, lifetime ${m.lifetimeSeconds} s)`)
  })
  nat.on('renewed', (m) => {
    out.event('renewed', {
      protocol: m.protocol, internalPort: m.internalPort, externalAddress: m.externalAddress,
      externalPort: m.externalPort, method: m.method, lifetime: m.lifetimeSeconds
    }, `renewed ${m.protocol} ${m.internalPort} -> ${m.externalAddress ?? '?'}:${m.externalPort} (lifetime ${m.lifetimeSeconds} s)`)
  })
  nat.on('lost', (e) => {
    out.event('lost', { protocol: e.protocol, internalPort: e.internalPort, reason: e.reason.message },
      `lost ${e.protocol} ${e.internalPort}: ${e.reason.message}`)
  })
  nat.on('unmapped', (e) => {
    out.event('unmapped', { protocol: e.protocol, internalPort: e.internalPort }, `unmapped ${e.protocol} ${e.internalPort}`)
  })
  nat.on('error', (err) => {
    lastError = err
    out.event('error', { code: (err as { code?: string }).code, message: err.message }, `error: ${err.message}`)
  })

  // Install the handlers before the first request, so that an interrupt during mapping still
  // deletes whatever was mapped.
  const stopped = new Promise<string>((resolve) => {
    process.once('SIGINT', () => { resolve('SIGINT') })
    process.once('SIGTERM', () => { resolve('SIGTERM') })
  })
  await Promise.race([
    Promise.all(specs.map(async (spec) => {
      await nat.addMapping(spec.protocol, spec.port, externalPort === undefined ? {} : { externalPort })
    })),
    stopped
  ])

  const notPublic = nat.notPublicReason
  if (notPublic !== undefined) out.info(`warning: ${notPublic}; the mappings will not be reachable from the internet`)

  if (values.once) {
    // Leave the mappings on the router for their lifetime: exit without deleting them.
    const missing = specs.filter((s) => nat.getMapping(s.protocol, s.port) === undefined)
    if (missing.length > 0) {
      out.error(new Error(`could not map ${missing.map((s) => `${s.port}/${s.protocol}`).join(', ')}: ${notPublic ?? lastError?.message ?? 'no answer'}`))
      process.exit(1)
    }
    if (notPublic !== undefined) {
      out.error(new Error(notPublic))
      process.exit(1)
    }
    process.exit(0)
  }

  // The library's timers and sockets do not hold the process open (an application that is done
  // may exit); this command's whole job is to stay until interrupted.
  const keepAlive = setInterval(() => {}, 2 ** 30)
  const signal = await stopped
  clearInterval(keepAlive)
  // A second interrupt means "now": skip the cleanup.
  process.once('SIGINT', () => { process.exit(130) })
  out.info(`${signal}: removing mappings`)
  await nat.close()
  return 0
}
