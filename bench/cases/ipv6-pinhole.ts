import { LAB_IPV6, type Lab } from '../../test/lab/lab.js'
import { pinholeRules, ruleHex } from '../../test/lab/ipv6-net.js'
import { clearLeftovers, describeCounts, PortPool, requestsSince, totalRequests, type BenchContext } from '../lib/context.js'
import { verdict, type Section } from '../lib/report.js'
import { startRunner } from '../lib/runner.js'
import { formatMs, formatSummary, summarize } from '../lib/stats.js'
import { withBenchLab } from './first-mapping.js'

/**
 * Benchmark 8 (issue 14): time to the first IPv6 pinhole, over PCP and over UPnP
 * (WANIPv6FirewallControl), beside IPv4's first mapping on the same router (miniupnpd 2.3.1 with
 * IPv6, lab `ipv6: true`). One fresh runner process per sample in lan (runners/ipv6-pinhole.ts),
 * contenders alternating; the router's nftables chain is checked after each pinhole (the rule for
 * the client's address and port) and after each close (no rule left).
 */

interface Contender { tool: 'ipv4' | 'ipv6-pcp' | 'ipv6-upnp', label: string, family: 4 | 6 }

const CONTENDERS: Contender[] = [
  { tool: 'ipv4', label: 'IPv4: `discoverNAT()` + `addMapping`', family: 4 },
  { tool: 'ipv6-pcp', label: 'IPv6: `openIpv6Gateway()` (default route, PCP) + `addMapping`', family: 6 },
  { tool: 'ipv6-upnp', label: 'IPv6: `openIpv6Gateway({ controlURL })` (UPnP pinhole) + `addMapping`', family: 6 }
]

interface Result { contender: Contender, samples: number[], opened: number[], requests: number[], requestText: string[], failures: string[], left: string[], method: string | undefined }

async function ruleThere (lab: Lab, family: 4 | 6, port: number): Promise<boolean> {
  if (family === 6) return (await pinholeRules(lab)).some((r) => r.includes(`dport ${port} `) && r.includes(ruleHex(LAB_IPV6.client)))
  return (await lab.rules()).dnat.some((d) => d.protocol === 'tcp' && d.internalPort === port)
}

async function sample (ctx: BenchContext, lab: Lab, results: Result[], ports: PortPool): Promise<void> {
  const controlURL = `http://[${LAB_IPV6.gatewayLan}]:${lab.httpPort!}/ctl/IP6FCtl`
  for (let rep = 0; rep < ctx.reps; rep++) {
    ctx.log(`8. repetition ${rep + 1} of ${ctx.reps}`)
    for (const result of results.map((_r, i) => results[(i + rep) % results.length]!)) {
      const port = ports.take()
      const from = lab.routerLog().length
      const runner = startRunner(lab, 'ipv6-pinhole', [`--tool=${result.contender.tool}`, `--port=${port}`, `--client6=${LAB_IPV6.client}`, `--control-url=${controlURL}`])
      try {
        const r = await runner.next('result', 30_000)
        const to = lab.routerLog().length
        if (r.ok !== true) {
          result.failures.push(String(r.error))
        } else if (!await ruleThere(lab, result.contender.family, port)) {
          result.failures.push(`reported ${String(r.externalAddress)} port ${String(r.externalPort)} but the router has no such rule`)
        } else {
          result.samples.push(r.ms as number)
          result.opened.push(r.discoveredMs as number)
          const counts = requestsSince(lab, from, to)
          result.requests.push(totalRequests(counts))
          result.requestText.push(describeCounts(counts))
          result.method = String(r.method)
        }
        runner.send('cleanup')
        await runner.next('cleaned', 20_000)
      } catch (err) {
        result.failures.push((err as Error).message)
      } finally {
        runner.kill()
        await runner.exited
      }
      if (await ruleThere(lab, result.contender.family, port)) result.left.push(`tcp/${port}`)
      await clearLeftovers(lab)
    }
  }
}

export async function ipv6Pinhole (ctx: BenchContext): Promise<Section> {
  const ports = new PortPool(32000)
  const results: Result[] = CONTENDERS.map((contender) => ({ contender, samples: [], opened: [], requests: [], requestText: [], failures: [], left: [], method: undefined }))
  await withBenchLab({ ipv6: true }, async (lab) => { await sample(ctx, lab, results, ports) })
  const rows = results.map((r) => {
    const s = summarize(r.samples)
    const median = summarize(r.requests)?.median
    const requests = median === undefined ? '' : r.requestText[r.requests.findIndex((n) => n === median)] ?? String(median)
    const cleanup = r.left.length === 0 ? 'no rule left' : `left ${r.left.length} rule(s) on the router`
    return [
      r.contender.label + (r.method === undefined ? '' : ` → ${r.method}`),
      s === undefined ? `not measured: ${r.failures[0] ?? 'no sample'}` : formatSummary(s),
      summarize(r.opened) === undefined ? '' : formatMs(summarize(r.opened)!.median),
      requests,
      cleanup + (r.failures.length > 0 ? `; ${r.failures.length} failed sample(s): ${r.failures[0]!}` : '')
    ]
  })
  const median = (tool: Contender['tool']): number | undefined => summarize(results.find((r) => r.contender.tool === tool)!.samples)?.median
  const pair = (v6: Contender['tool'], v4: Contender['tool']): string => {
    const a = median(v6)
    const b = median(v4)
    return a === undefined || b === undefined ? 'n/a' : `${formatMs(a)} vs IPv4 ${formatMs(b)}`
  }
  const allMeasured = results.every((r) => r.samples.length === ctx.reps && r.left.length === 0)
  return {
    id: 8,
    title: 'Time to first IPv6 pinhole, beside IPv4 (issue 14)',
    goal: 'an IPv6 pinhole as fast as an IPv4 mapping on the same router (not an issue target: the issue asks for the row); none left after close().',
    method: `lab with IPv6 (miniupnpd 2.3.1, ipv6_listening_ip, documentation prefix 2001:db8::/32 inside the namespaces); one fresh Node process per sample in lan, natmapper as published (dist/); performance.now() from the first library call to the granted mapping; ${ctx.reps} samples per contender, alternating, a fresh port each; the router's rule (DNAT for IPv4, the forward chain's pinhole for IPv6) checked after each mapping and after each close(). Router requests from miniupnpd's -d log.`,
    columns: ['contender', 'median (min–max, n)', 'of which finding the gateway', 'router requests (median)', 'after close()'],
    rows,
    verdicts: [
      verdict(allMeasured ? true : undefined, `every sample granted and cleaned up (PCP ${pair('ipv6-pcp', 'ipv4')}; UPnP pinhole ${median('ipv6-upnp') === undefined ? 'n/a' : formatMs(median('ipv6-upnp')!)})`)
    ],
    notes: [
      'The IPv6 UPnP row is given the WANIPv6FirewallControl control URL, so it leaves out SSDP and the description.',
      'No IPv4 UPnP row here: miniupnpd 2.3.1 given ipv6_listening_ip serves HTTP on that IPv6 address only (ss in gw: one listener, [2001:db8:1::1]%lan:port), so its IPv4 LOCATION refuses connections; benchmark 1 has IPv4 UPnP on the IPv4 lab.',
      'IPv4 PCP here is the same code as benchmark 1\'s natmapper row, on a router that also serves IPv6.'
    ]
  }
}
