import { parseArgs, type ParseArgsConfig } from 'node:util'
import type { DiscoverOptions } from '../discover/discover.js'
import { UsageError } from '../errors.js'
import type { MappingMethod } from '../gateway.js'
import { parseIntegerOption } from './ports.js'
import { ipFamily } from '../net/address.js'

/** Options every command that talks to the gateway understands. */
export const gatewayOptionSpec = {
  protocol: { type: 'string' },
  gateway: { type: 'string' },
  interface: { type: 'string' },
  'local-address': { type: 'string' },
  'gateway-port': { type: 'string' },
  'ssdp-target': { type: 'string' },
  timeout: { type: 'string' },
  json: { type: 'boolean', default: false },
  verbose: { type: 'boolean', default: false },
  help: { type: 'boolean', short: 'h', default: false }
} as const satisfies ParseArgsConfig['options']

export const gatewayOptionsHelp = `  --protocol pcp|natpmp|upnp   use this protocol only (default: the best the gateway speaks)
  --gateway IP            the gateway's address (default: the default route's gateway)
  --interface NAME        use this network interface: bind to its IPv4 address, ask its
                          default route's gateway (default: the system's default route)
  --local-address IP      as --interface, for the interface with this IPv4 address
  --gateway-port N        the gateway's NAT-PMP/PCP port (default 5351; for simulated gateways)
  --ssdp-target IP:PORT   send the UPnP multicast search here instead (for simulated gateways)
  --timeout MS            how long to wait for the gateway (default 10000)
  --json                  print JSON instead of text
  --verbose               print stack traces with errors
  -h, --help              show this help`

export const methodNames: Record<MappingMethod, string> = { pcp: 'PCP', natpmp: 'NAT-PMP', upnp: 'UPnP IGD', 'upnp-pinhole': 'UPnP IPv6 pinhole' }
const methods: readonly string[] = ['pcp', 'natpmp', 'upnp']

export interface GatewayFlags {
  protocol?: string | undefined
  gateway?: string | undefined
  interface?: string | undefined
  'local-address'?: string | undefined
  'gateway-port'?: string | undefined
  'ssdp-target'?: string | undefined
  timeout?: string | undefined
}

/**
 * node:util's parseArgs, with its errors said in one line of our own: its messages suggest
 * `'-- "-1"'` quoting and call `--timeout -5` "ambiguous".
 */
export function parseCommandLine<T extends NonNullable<ParseArgsConfig['options']>> (command: string, argv: string[], options: T): ReturnType<typeof parseArgs<{ args: string[], allowPositionals: true, options: T }>> {
  try {
    return parseArgs({ args: argv, allowPositionals: true, options })
  } catch (err) {
    const code = (err as { code?: string }).code
    if (code === undefined || !code.startsWith('ERR_PARSE_ARGS')) throw err
    const name = /'(-{1,2}[^' ]+)/.exec((err as Error).message)?.[1] ?? '?'
    const see = `see natmapper ${command} --help`
    if (code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') {
      throw new UsageError(/^-\d/.test(name) ? `invalid port ${JSON.stringify(name)}: ports are 1-65535; ${see}` : `unknown option ${name} for natmapper ${command}; ${see}`)
    }
    if (code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE') {
      if (options[name.replace(/^-+/, '')]?.type === 'boolean') throw new UsageError(`${name} takes no value; ${see}`)
      const at = argv.indexOf(name)
      const next = at === -1 ? undefined : argv[at + 1]
      throw new UsageError(next !== undefined && next.startsWith('-') ? `${name} needs a value, not ${JSON.stringify(next)}; ${see}` : `${name} needs a value; ${see}`)
    }
    throw new UsageError(`${(err as Error).message.split('. ')[0] ?? 'bad arguments'}; ${see}`)
  }
}

/** DiscoverOptions from the shared flags; announcements are listened for only by long-running commands. */
export function discoverOptionsFrom (values: GatewayFlags): DiscoverOptions & { method: MappingMethod | undefined } {
  // As ports take 7001/TCP, protocols take PCP.
  const method = values.protocol?.toLowerCase()
  if (method !== undefined && !methods.includes(method)) {
    throw new UsageError(`--protocol must be one of ${methods.join(', ')}, not ${JSON.stringify(values.protocol)}`)
  }
  if (values.gateway !== undefined && ipFamily(values.gateway) === 0) throw new UsageError(`--gateway must be an IP address, not ${JSON.stringify(values.gateway)}`)
  const port = parseIntegerOption('gateway-port', values['gateway-port'], 1, 65535)
  const timeout = parseIntegerOption('timeout', values.timeout, 1, 3_600_000)
  const ssdpTarget = values['ssdp-target'] === undefined ? undefined : parseIpPort('ssdp-target', values['ssdp-target'])
  return {
    method: method as MappingMethod | undefined,
    ...(method === undefined ? {} : { methods: [method as MappingMethod] }),
    ...(values.gateway === undefined ? {} : { gateway: values.gateway }),
    ...(values.interface === undefined ? {} : { interface: values.interface }),
    ...(values['local-address'] === undefined ? {} : { localAddress: values['local-address'] }),
    ...(port === undefined ? {} : { port }),
    ...(ssdpTarget === undefined ? {} : { ssdpTarget }),
    ...(timeout === undefined ? {} : { timeout })
  }
}

/** `192.0.2.1:1900` or `[fe80::1]:1900`: an IP literal (no DNS) and a port. */
function parseIpPort (name: string, text: string): { address: string, port: number } {
  const match = /^(?:\[([^\]]+)\]|([^:]+)):(\d+)$/.exec(text)
  const address = match?.[1] ?? match?.[2]
  if (address === undefined || ipFamily(address) === 0) throw new UsageError(`--${name} must be IP:PORT, not ${JSON.stringify(text)}`)
  return { address, port: parseIntegerOption(name, match![3], 1, 65535)! }
}
