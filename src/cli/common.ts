import type { ParseArgsConfig } from 'node:util'
import type { DiscoverOptions } from '../discover.js'
import { UsageError } from '../errors.js'
import type { MappingMethod } from '../gateway.js'
import { parseIntegerOption } from './ports.js'
import { ipFamily } from '../net/address.js'

/** Options every command that talks to the gateway understands. */
export const gatewayOptionSpec = {
  protocol: { type: 'string' },
  gateway: { type: 'string' },
  'gateway-port': { type: 'string' },
  'ssdp-target': { type: 'string' },
  timeout: { type: 'string' },
  json: { type: 'boolean', default: false },
  verbose: { type: 'boolean', default: false },
  help: { type: 'boolean', short: 'h', default: false }
} as const satisfies ParseArgsConfig['options']

export const gatewayOptionsHelp = `  --protocol pcp|natpmp|upnp   use this protocol only (default: the best the gateway speaks)
  --gateway IP            the gateway's address (default: the default route's gateway)
  --gateway-port N        the gateway's NAT-PMP/PCP port (default 5351; for simulated gateways)
  --ssdp-target IP:PORT   send the UPnP multicast search here instead (for simulated gateways)
  --timeout MS            how long to wait for the gateway (default 10000)
  --json                  print JSON instead of text
  --verbose               print stack traces with errors
  -h, --help              show this help`

export const methodNames: Record<MappingMethod, string> = { pcp: 'PCP', natpmp: 'NAT-PMP', upnp: 'UPnP IGD' }
const methods: readonly string[] = ['pcp', 'natpmp', 'upnp']

export interface GatewayFlags {
  protocol?: string | undefined
  gateway?: string | undefined
  'gateway-port'?: string | undefined
  'ssdp-target'?: string | undefined
  timeout?: string | undefined
}

/** DiscoverOptions from the shared flags; announcements are listened for only by long-running commands. */
export function discoverOptionsFrom (values: GatewayFlags): DiscoverOptions & { method: MappingMethod | undefined } {
  const method = values.protocol
  if (method !== undefined && !methods.includes(method)) {
    throw new UsageError(`--protocol must be one of ${methods.join(', ')}, not ${JSON.stringify(method)}`)
  }
  if (values.gateway !== undefined && ipFamily(values.gateway) === 0) throw new UsageError(`--gateway must be an IP address, not ${JSON.stringify(values.gateway)}`)
  const port = parseIntegerOption('gateway-port', values['gateway-port'], 1, 65535)
  const timeout = parseIntegerOption('timeout', values.timeout, 1, 3_600_000)
  const ssdpTarget = values['ssdp-target'] === undefined ? undefined : parseIpPort('ssdp-target', values['ssdp-target'])
  return {
    method: method as MappingMethod | undefined,
    ...(method === undefined ? {} : { methods: [method as MappingMethod] }),
    ...(values.gateway === undefined ? {} : { gateway: values.gateway }),
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
