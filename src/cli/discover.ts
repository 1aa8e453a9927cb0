import { discoverGateway, type ProbeResult } from '../discover/discover.js'
import { NoDefaultGatewayError, NoGatewayError, UsageError } from '../errors.js'
import { classifyAddress, notPublicReason } from '../net/address-class.js'
import { systemNetwork } from '../net/host-network.js'
import { externalIpv4Interfaces } from '../net/local-interface.js'
import { discoverOptionsFrom, gatewayOptionSpec, gatewayOptionsHelp, parseCommandLine, methodNames } from './common.js'
import { colourEnabled, createOutput, paint, type Output } from './output.js'

export const discoverHelp = `Usage: natmapper discover [options]

Finds the gateway and reports which port-mapping protocols it answered, its external
address, and whether that address is public (behind a double NAT or carrier-grade NAT it
is not, and mappings there are not reachable from the internet).

Options:
  --all-interfaces        report on the gateway of every interface with IPv4 (not
                          loopback), all at once: one report each (a JSON array with --json)
${gatewayOptionsHelp}
`

export interface DiscoverReport {
  gateway: string
  /** The interface asked for (--interface, --local-address) or the default route's; null when unknown. */
  interface: string | null
  /** The address every socket was bound to, with --interface or --local-address; null otherwise. */
  localAddress: string | null
  method: string | undefined
  protocols: Record<string, { ok: boolean, ms: number, error?: string, detail?: string }>
  externalAddress: string | null
  addressClass: string | null
  public: boolean
  reason: string | null
  /** Why mappings there are not reachable, when the gateway said so (double NAT, CGNAT); null when public or unknown. */
  notPublicReason: string | null
}

export async function runDiscover (argv: string[], output?: Output): Promise<number> {
  const { values, positionals } = parseCommandLine('discover', argv, { ...gatewayOptionSpec, 'all-interfaces': { type: 'boolean', default: false } })
  if (values.help) {
    process.stdout.write(discoverHelp)
    return 0
  }
  if (positionals.length > 0) throw new UsageError(`discover takes no arguments, not ${JSON.stringify(positionals[0])}`)
  const out = output ?? createOutput({ json: values.json, verbose: values.verbose })
  const options = discoverOptionsFrom(values)
  if (values['all-interfaces']) return await discoverAll(options, out)
  const chosen = options.interface ?? options.localAddress
  out.info(`probing ${options.gateway ?? (chosen === undefined ? 'the default gateway' : `the gateway of ${chosen}`)} (${(options.methods ?? ['pcp', 'natpmp', 'upnp']).map((m) => methodNames[m]).join(', ')})...`)
  const report = await discoverReport(options)
  out.result(report, formatReport(report, colourEnabled(process.stdout)))
  return report.method === undefined ? 1 : 0
}

/** --all-interfaces: every interface's gateway probed at once; exit 0 when any answered. */
async function discoverAll (options: ReturnType<typeof discoverOptionsFrom>, out: Output): Promise<number> {
  if (options.gateway !== undefined || options.interface !== undefined || options.localAddress !== undefined) {
    throw new UsageError('--all-interfaces chooses every interface itself: leave out --gateway, --interface and --local-address')
  }
  const interfaces = externalIpv4Interfaces(systemNetwork.interfaces())
  out.info(`probing the gateways of ${interfaces.map((i) => i.name).join(', ') || 'no interface'} (${(options.methods ?? ['pcp', 'natpmp', 'upnp']).map((m) => methodNames[m]).join(', ')})...`)
  const reports = await Promise.all(interfaces.map(async ({ name, address }) => {
    try {
      return await discoverReport({ ...options, interface: name, localAddress: address })
    } catch (err) {
      // No default route on that interface: a report that says so, not the end of the others.
      if (!(err instanceof NoDefaultGatewayError)) throw err
      return { gateway: '', interface: name, localAddress: address, method: undefined, protocols: {}, externalAddress: null, addressClass: null, public: false, reason: err.message, notPublicReason: null } satisfies DiscoverReport
    }
  }))
  const colour = colourEnabled(process.stdout)
  out.result(reports, reports.map((r) => formatReport(r, colour)).join('\n\n'))
  return reports.some((r) => r.method !== undefined) ? 0 : 1
}

/** Probes the gateway and describes what answered, without keeping any client open. */
export async function discoverReport (options: ReturnType<typeof discoverOptionsFrom>): Promise<DiscoverReport> {
  let probes: ProbeResult[]
  let gateway = options.gateway ?? ''
  let where: { interface: string | undefined, localAddress: string | undefined } = { interface: options.interface, localAddress: options.localAddress }
  let method: string | undefined
  let externalAddress: string | undefined
  let reason: string | undefined
  let failure: string | undefined
  try {
    const found = await discoverGateway({ ...options, waitForAll: true })
    found.gateway.close()
    probes = found.probes
    gateway = found.gateway.address
    where = found
    method = found.gateway.method
    externalAddress = found.externalAddress
    reason = found.notPublicReason
  } catch (err) {
    if (!(err instanceof NoGatewayError)) throw err
    probes = [...err.probes]
    gateway = err.gateway
    failure = err.message
  }
  externalAddress ??= probes.find((p) => p.externalAddress !== undefined)?.externalAddress
  const addressClass = externalAddress === undefined ? undefined : classifyAddress(externalAddress)
  if (externalAddress !== undefined && reason === undefined) reason = notPublicReason(externalAddress, addressClass)
  const protocols: DiscoverReport['protocols'] = {}
  for (const p of probes) {
    protocols[p.method] = {
      ok: p.ok,
      ms: Math.round(p.durationMs * 10) / 10,
      ...(p.error === undefined ? {} : { error: p.error.message }),
      ...(p.detail === undefined ? {} : { detail: p.detail })
    }
  }
  return {
    gateway,
    interface: where.interface ?? null,
    localAddress: where.localAddress ?? null,
    method,
    protocols,
    externalAddress: externalAddress ?? null,
    addressClass: addressClass ?? null,
    // Public only when an address is known and nothing says otherwise: never claim it behind
    // a double NAT or when the gateway would not tell.
    public: externalAddress !== undefined && addressClass === 'public' && reason === undefined,
    reason: reason ?? failure ?? (externalAddress === undefined ? 'the gateway did not report an external address' : null),
    notPublicReason: reason ?? null
  }
}

export function formatReport (report: DiscoverReport, colour: boolean): string {
  const on = report.interface === null ? '' : ` on ${report.interface}${report.localAddress === null ? '' : ` (from ${report.localAddress})`}`
  const lines = [`gateway ${report.gateway || '(none found)'}${on}`]
  for (const [method, p] of Object.entries(report.protocols)) {
    const name = methodNames[method as keyof typeof methodNames].padEnd(9)
    lines.push(p.ok
      ? `  ${name} ${paint('answered', 'green', colour)} in ${p.ms} ms${p.detail === undefined ? '' : ` (${p.detail})`}`
      : `  ${name} ${paint('no', 'yellow', colour)}: ${p.error ?? 'no answer'}`)
  }
  if (report.externalAddress !== null) {
    lines.push(`external address ${report.externalAddress} (${report.public ? paint('public', 'green', colour) : paint(`not public: ${report.addressClass ?? '?'}`, 'yellow', colour)})`)
  }
  if (report.reason !== null) lines.push(paint(report.reason, 'yellow', colour))
  lines.push(report.method === undefined ? 'no port-mapping protocol answered' : `natmapper will use ${methodNames[report.method as keyof typeof methodNames]}`)
  return lines.join('\n')
}
