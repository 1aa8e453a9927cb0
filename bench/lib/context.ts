import { fileURLToPath } from 'node:url'
import type { Lab, RequestCounts } from '../../test/lab/lab.js'

/** What every benchmark case gets from run.ts. */
export interface BenchContext {
  quick: boolean
  /** Samples per contender: at least 7 in a full run. */
  reps: number
  repoRoot: string
  log: (line: string) => void
}

export const repoRoot = fileURLToPath(new URL('../../../', import.meta.url))
/** What `npx natmapper` runs: the published bundle that `npm install` builds (npm run build). */
export const cliPath = fileURLToPath(new URL('../../../dist/cli/bin.js', import.meta.url))
/** The library as published (dist/index.js, bundled), for the runners that time a cold process. */
export const distIndexUrl = new URL('../../../dist/index.js', import.meta.url).href

/** Fresh ports: every sample maps a port no earlier sample used, so nothing stale can answer for it. */
export class PortPool {
  #next: number
  constructor (first: number) { this.#next = first }
  take (): number { return this.#next++ }
}

export function totalRequests (counts: RequestCounts): number {
  return counts.natpmp + counts.pcp + counts.http + counts.ssdp
}

/** Router requests logged since `from` (a length of lab.routerLog()). */
export function requestsSince (lab: Lab, from: number, to?: number): RequestCounts {
  return lab.countRequests(lab.routerLog().slice(from, to))
}

export function describeCounts (c: RequestCounts): string {
  const parts = [
    c.pcp > 0 ? `${c.pcp} PCP` : '',
    c.natpmp > 0 ? `${c.natpmp} NAT-PMP` : '',
    c.ssdp > 0 ? `${c.ssdp} SSDP` : '',
    c.http > 0 ? `${c.http} HTTP` : ''
  ].filter((p) => p !== '')
  return parts.length === 0 ? '0' : `${totalRequests(c)} (${parts.join(' + ')})`
}

/**
 * Deletes whatever DNAT rules are left on the router, so the next sample starts from an empty
 * table, and returns what was left. UPnP DeletePortMapping removes mappings made by any of the
 * three protocols on miniupnpd 2.3.1 (NAT-PMP's delete does not remove PCP mappings); without
 * UPnP, a NAT-PMP delete; a reboot of the router as the last resort.
 */
export async function clearLeftovers (lab: Lab): Promise<string[]> {
  const { dnat } = await lab.rules()
  if (dnat.length === 0) return []
  const left = dnat.map((r) => `${r.protocol}/${r.externalPort}`)
  // Hundreds of rules (the scale benchmark): a reboot flushes them faster than one delete each.
  if (dnat.length > 20) {
    await lab.restartRouter()
    return left
  }
  for (const rule of dnat) {
    const proto = rule.protocol === 'udp' ? 'udp' : 'tcp'
    if (lab.descriptionUrl !== undefined) {
      await lab.exec('lan', 'upnpc', ['-u', lab.descriptionUrl, '-d', String(rule.externalPort), proto])
    } else {
      await lab.exec('lan', 'natpmpc', ['-g', lab.gatewayLanAddress, '-a', String(rule.internalPort), '0', proto, '0'])
    }
  }
  if ((await lab.rules()).dnat.length > 0) await lab.restartRouter()
  return left
}

export async function sleep (ms: number): Promise<void> {
  await new Promise((resolve) => { setTimeout(resolve, ms) })
}

/** Wall-clock milliseconds comparable across processes (runners report the same scale). */
export function wallNow (): number {
  return performance.timeOrigin + performance.now()
}
