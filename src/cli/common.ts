import type { ParseArgsConfig } from 'node:util'
import type { DiscoverOptions } from '../discover.js'
import { UsageError } from '../errors.js'
import type { MappingMethod } from '../gateway.js'
import { parseIntegerOption } from './ports.js'

/** Options every command that talks to the gateway understands. */
export const gatewayOptionSpec = {
  protocol: { type: 'string' },
  gateway: { type: 'string' },
  'gateway-port': { type: 'string' },
  timeout: { type: 'string' },
  json: { type: 'boolean', default: false },
  verbose: { type: 'boolean', default: false },
  help: { type: 'boolean', short: 'h', default: false }
} as const satisfies ParseArgsConfig['options']

export const gatewayOptionsHelp = `  --protocol pcp|natpmp|upnp   use this protocol only (default: the best the gateway speaks)
  --gateway IP            the gateway's address (default: the default route's gateway)
  --gateway-port N        the gateway's NAT-PMP/PCP port (default 5351; for simulated gateways)
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
  timeout?: string | undefined
}

/** DiscoverOptions from the shared flags; announcements are listened for only by long-running commands. */
export function discoverOptionsFrom (values: GatewayFlags): DiscoverOptions & { method: MappingMethod | undefined } {
  const method = values.protocol
  if (method !== undefined && !methods.includes(method)) {
    throw new UsageError(`--protocol must be one of ${methods.join(', ')}, not ${JSON.stringify(method)}`)
  }
  const port = parseIntegerOption('gateway-port', values['gateway-port'], 1, 65535)
  const timeout = parseIntegerOption('timeout', values.timeout, 1, 3_600_000)
  return {
    method: method as MappingMethod | undefined,
    ...(method === undefined ? {} : { methods: [method as MappingMethod] }),
    ...(values.gateway === undefined ? {} : { gateway: values.gateway }),
    ...(port === undefined ? {} : { port }),
    ...(timeout === undefined ? {} : { timeout })
  }
}
