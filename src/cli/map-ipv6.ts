import { UsageError } from '../errors.js'
import type { AddressFamily } from '../gateway.js'
import { discoverNAT } from '../nat/discover-nat.js'
import { openIpv6Gateway } from '../nat/ipv6-gateway.js'
import { NAT } from '../nat/nat.js'
import type { discoverOptionsFrom } from './common.js'
import { parseIntegerOption } from './ports.js'

/** `map --ipv6` (and `--ipv4`): which families, and the IPv6 gateway's options. */
export const ipv6OptionSpec = {
  ipv4: { type: 'boolean', default: false },
  ipv6: { type: 'boolean', default: false },
  gateway6: { type: 'string' },
  'gateway6-port': { type: 'string' },
  'local-address6': { type: 'string' },
  'pinhole-url': { type: 'string' },
  'ipv6-method': { type: 'string' }
} as const

interface Ipv6Flags { ipv4?: boolean, ipv6?: boolean, gateway6?: string | undefined, 'gateway6-port'?: string | undefined, 'local-address6'?: string | undefined, 'pinhole-url'?: string | undefined, 'ipv6-method'?: string | undefined }

/** Makes the command's NAT when IPv6 is asked for; `family` is what to ask addMappings for, `controlURL` goes into the state file's pinhole records. */
export type NatMaker = ((signal: AbortSignal | undefined) => Promise<NAT>) & { family: AddressFamily | 'both', controlURL?: string | undefined }

/** undefined without --ipv6: the command discovers its IPv4 NAT as it always has. */
export function natMaker (values: Ipv6Flags, discover: ReturnType<typeof discoverOptionsFrom>, nat: { lifetimeSeconds: number, keep: boolean }): NatMaker | undefined {
  if (values.ipv6 !== true) {
    const stray = (['gateway6', 'gateway6-port', 'local-address6', 'pinhole-url', 'ipv6-method'] as const).find((name) => values[name] !== undefined)
    if (stray !== undefined) throw new UsageError(`--${stray} applies with --ipv6`)
    return undefined
  }
  const method = values['ipv6-method']
  if (method !== undefined && !isIpv6Method(method)) throw new UsageError(`--ipv6-method takes pcp or upnp-pinhole, not ${JSON.stringify(method)}`)
  if (method === 'upnp-pinhole' && values['pinhole-url'] === undefined) throw new UsageError('--ipv6-method upnp-pinhole needs --pinhole-url')
  const family: AddressFamily | 'both' = values.ipv4 === true ? 'both' : 6
  // With --ipv6 alone, --gateway, --gateway-port and --local-address are the IPv6 side's.
  const alone = family === 6
  const port = parseIntegerOption('gateway6-port', values['gateway6-port'], 1, 65535) ?? (alone ? discover.port : undefined)
  const options = {
    gateway: values.gateway6 ?? (alone ? discover.gateway : undefined),
    port,
    localAddress: values['local-address6'] ?? (alone ? discover.localAddress : undefined),
    controlURL: values['pinhole-url'],
    method
  }
  const requestTimeoutMs = discover.timeout
  const make = async (signal: AbortSignal | undefined): Promise<NAT> => {
    const gateway = await openIpv6Gateway(options)
    if (alone) return new NAT(gateway, { family: 6, ...nat, ...(requestTimeoutMs === undefined ? {} : { requestTimeoutMs }) })
    try {
      return await discoverNAT({ ...discover, ...nat, ...(signal === undefined ? {} : { signal }), ipv6: { gateway } })
    } catch (err) {
      gateway.close()
      throw err
    }
  }
  return Object.assign(make, { family, controlURL: options.controlURL })
}

function isIpv6Method (method: string): method is 'pcp' | 'upnp-pinhole' {
  return method === 'pcp' || method === 'upnp-pinhole'
}
