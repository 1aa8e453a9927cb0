import { openGateway } from '../discover/discover.js'
import { InterfaceError, UsageError } from '../errors.js'
import { mapChecked, type GatewayAbilities, type MappingMethod } from '../gateway.js'
import { notPublicReason } from '../net/address-class.js'
import { findGateway } from '../net/host-network.js'
import { discoverOptionsFrom, gatewayOptionSpec, gatewayOptionsHelp, methodNames, parseCommandLine } from './common.js'
import { discoverReport } from './discover.js'
import { colourEnabled, createOutput, paint, type Output } from './output.js'

export const doctorHelp = `Usage: natmapper doctor [options]

Checks, step by step, what stands between this machine and a working port mapping, and
prints a report to paste into a bug report: the default route, each protocol's answer and
timing, the external address, and a test mapping made and removed. Each failure comes with
what to do about it.

Options:
${gatewayOptionsHelp}
`

/** One line of the report. A protocol that does not answer is `optional`: one is enough. */
interface Step { step: string, ok: boolean, ms: number, detail: string, advice?: string, optional?: boolean }

const advice: Record<MappingMethod, string> = {
  pcp: 'PCP is optional; most routers speak NAT-PMP or UPnP instead',
  natpmp: 'enable NAT-PMP (sometimes called "NAT-PMP/PCP") in the router\'s settings if it has it',
  upnp: 'enable UPnP IGD in the router\'s settings (often under "UPnP" or "NAT passthrough")',
  'upnp-pinhole': 'allow UPnP IPv6 pinholes (WANIPv6FirewallControl) in the router\'s settings; the IPv6 firewall must be on'
}

export async function runDoctor (argv: string[], output?: Output): Promise<number> {
  const { values, positionals } = parseCommandLine('doctor', argv, gatewayOptionSpec)
  if (values.help) {
    process.stdout.write(doctorHelp)
    return 0
  }
  if (positionals.length > 0) throw new UsageError(`doctor takes no arguments, not ${JSON.stringify(positionals[0])}`)
  const out = output ?? createOutput({ json: values.json, verbose: values.verbose })
  const options = discoverOptionsFrom(values)
  const steps: Step[] = []
  const timed = async <T>(fn: () => Promise<T>): Promise<[T | Error, number]> => {
    const start = performance.now()
    try {
      const value = await fn()
      return [value, performance.now() - start]
    } catch (err) {
      return [err as Error, performance.now() - start]
    }
  }
  const round = (ms: number): number => Math.round(ms * 10) / 10

  // 1. Where is the gateway?
  let gateway = options.gateway
  if (gateway === undefined) {
    const [route, ms] = await timed(async () => await findGateway(options))
    // A bad --interface is a usage error, not a step that failed.
    if (route instanceof InterfaceError) throw route
    if (route instanceof Error) {
      steps.push({ step: 'default route', ok: false, ms: round(ms), detail: route.message, advice: 'connect to a network, or pass --gateway with the router\'s address (or --interface with the network\'s interface)' })
    } else {
      gateway = route.gateway
      steps.push({ step: 'default route', ok: true, ms: round(ms), detail: `via ${route.gateway}${route.interface === undefined ? '' : ` on ${route.interface}`}${route.localAddress === undefined ? '' : `, from ${route.localAddress}`}` })
    }
  } else {
    steps.push({ step: 'default route', ok: true, ms: 0, detail: `gateway given: ${gateway}` })
  }

  // 2. Which protocols answer, 3. what is the external address, 4. does a mapping work?
  let method: MappingMethod | undefined
  let externalAddress: string | undefined
  let reason: string | undefined
  if (gateway !== undefined) {
    // Not named when it came from the route table: a gateway that does not answer then gets the hint (Docker, VPN).
    const [report, ms] = await timed(async () => await discoverReport(options))
    if (report instanceof Error) {
      steps.push({ step: 'protocols', ok: false, ms: round(ms), detail: report.message })
    } else {
      for (const [name, p] of Object.entries(report.protocols)) {
        steps.push({
          step: methodNames[name as MappingMethod],
          ok: p.ok,
          ms: p.ms,
          detail: p.ok ? `answered${p.detail === undefined ? '' : ` (${p.detail})`}` : p.error ?? 'no answer',
          optional: true,
          ...(p.ok ? {} : { advice: advice[name as MappingMethod] })
        })
      }
      method = report.method as MappingMethod | undefined
      externalAddress = report.externalAddress ?? undefined
      reason = report.notPublicReason ?? undefined
    }
  }

  // A test mapping, made and removed.
  if (gateway !== undefined && method !== undefined) {
    const port = 40000 + Math.floor(Math.random() * 10000)
    let counted: ReturnType<NonNullable<GatewayAbilities['counters']>> | undefined
    const [result, ms] = await timed(async () => {
      const client = await openGateway({ ...options, gateway, method })
      try {
        const mapping = await mapChecked(client, { protocol: 'tcp', internalPort: port, lifetimeSeconds: 120, description: 'natmapper doctor' })
        await client.unmap(mapping)
        return mapping
      } finally {
        counted = client.describe().counters?.()
        client.close()
      }
    })
    if (!(result instanceof Error) && externalAddress === undefined && result.externalAddress !== undefined) {
      // PCP tells the external address only with a mapping: judge it now.
      externalAddress = result.externalAddress
      reason = notPublicReason(result.externalAddress)
    }
    steps.push(externalAddressStep(externalAddress, reason))
    steps.push(result instanceof Error
      ? {
          step: 'test mapping',
          ok: false,
          ms: round(ms),
          detail: `tcp ${port} with ${methodNames[method]}: ${result.message}`,
          // Behind a second NAT the refusal is the missing address, not a setting of this router.
          advice: reason !== undefined
            ? 'the router has no public address to map on (see the external address line): the fix is upstream, not in this router\'s settings'
            : 'the router answered but refused to map: check its port-forwarding permissions (UPnP/NAT-PMP "secure mode", allowed port ranges)'
        }
      : { step: 'test mapping', ok: true, ms: round(ms), detail: `tcp ${port} -> ${result.externalAddress ?? '?'}:${result.externalPort} with ${methodNames[method]}, then removed` })
    // What the test mapping cost the router, as counted: timeouts and retransmissions tell a lossy link.
    if (counted !== undefined) {
      const lines = Object.entries(counted).map(([protocol, c]) => `${methodNames[protocol as MappingMethod]} ${c.requests} requests, ${c.answers} answered, ${c.timeouts} timed out, ${c.retransmissions} sent again${Object.keys(c.refusals).length === 0 ? '' : `, refused: ${Object.entries(c.refusals).map(([r, n]) => `${n} ${r}`).join(', ')}`}`)
      steps.push({ step: 'router requests', ok: true, ms: 0, detail: lines.join('; '), optional: true })
    }
  } else if (gateway !== undefined) {
    // Nothing answered: nothing is known of the address either, and no double NAT is implied.
    steps.push({ step: 'external address', ok: false, ms: 0, detail: 'unknown: no protocol answered' })
    steps.push({ step: 'test mapping', ok: false, ms: 0, detail: 'skipped: no protocol answered', advice: 'enable UPnP IGD or NAT-PMP on the router' })
  }

  const colour = colourEnabled(process.stdout)
  const human = steps.map((s, i) => {
    const mark = s.ok ? paint('ok  ', 'green', colour) : paint('FAIL', 'red', colour)
    return `${i + 1}. ${mark} ${s.step.padEnd(16)} ${s.detail}${s.ms > 0 ? ` [${s.ms} ms]` : ''}${s.advice === undefined ? '' : `\n          -> ${s.advice}`}`
  }).join('\n')
  const ok = method !== undefined && steps.every((s) => s.ok || s.optional === true)
  out.result({ ok, steps }, `${human}\n${ok ? 'everything needed for port mapping works' : 'port mapping will not work as things are: see the FAIL lines'}`)
  return ok ? 0 : 1
}

function externalAddressStep (address: string | undefined, reason: string | undefined): Step {
  if (address !== undefined && reason === undefined) return { step: 'external address', ok: true, ms: 0, detail: `${address} (public)` }
  // Unknown is not double NAT: PCP tells the address only with a mapping, which may be refused.
  if (address === undefined && reason === undefined) return { step: 'external address', ok: false, ms: 0, detail: 'unknown: the gateway did not report it', optional: true }
  return {
    step: 'external address',
    ok: false,
    ms: 0,
    detail: `${address ?? 'unknown'}: ${reason ?? 'the gateway did not report it'}`,
    advice: 'mappings on this router are not reachable from the internet: put the upstream router in bridge mode, map the port on it too, or ask your provider for a public address'
  }
}
