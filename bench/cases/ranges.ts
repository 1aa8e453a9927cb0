import type { Lab } from '../../test/lab/lab.js'
import { clearLeftovers, describeCounts, requestsSince, type BenchContext } from '../lib/context.js'
import { verdict, type Section } from '../lib/report.js'
import { startRunner } from '../lib/runner.js'
import { formatSummary, summarize } from '../lib/stats.js'
import { withBenchLab } from './first-mapping.js'

/**
 * Benchmark 7 (issue 16): 256 UDP ports (49387-49642, Snowflake's range in miniupnp#851) on the
 * lab's miniupnpd, mapped and removed. natmapper: one addMappings of the range, then one
 * removeMappings and close(), in a runner process in lan, timed inside it (discovery not
 * counted). upnpc: `upnpc -u DESC_URL -r PORT udp ...` with all 256 ports in one run (it maps
 * them one after another), then `upnpc -N` twice, over 128 ports each (DeletePortMappingRange, IGD v2; over all 256 it kills miniupnpd 2.3.1),
 * timed as whole processes (-u skips its 2 s SSDP wait). The router's nftables chain is read
 * after each phase. PCP: miniupnpd with NAT-PMP/PCP on; UPnP-only: with enable_natpmp off.
 */

const FIRST = 49387
const COUNT = 256

interface Sample { mapMs: number, removeMs: number, mapped: number, rulesAfterMap: number, rulesAfterRemove: number, mapRequests: string, removeRequests: string, error: string | undefined }

async function natmapperSample (lab: Lab, method: 'pcp' | 'upnp'): Promise<Sample> {
  const runner = startRunner(lab, 'ranges', [`--first=${FIRST}`, `--count=${COUNT}`, `--method=${method}`])
  try {
    await runner.next('ready', 20_000)
    const m0 = lab.routerLog().length
    runner.send('map')
    const mapped = await runner.next('mapped', 600_000)
    const rulesAfterMap = (await lab.rules()).dnat.length
    const m1 = lab.routerLog().length
    runner.send('remove')
    const removed = await runner.next('removed', 600_000)
    await new Promise((resolve) => { setTimeout(resolve, 100) })
    return {
      mapMs: mapped.ms as number,
      removeMs: removed.ms as number,
      mapped: mapped.ok as number,
      rulesAfterMap,
      rulesAfterRemove: (await lab.rules()).dnat.length,
      mapRequests: describeCounts(requestsSince(lab, m0, m1)),
      removeRequests: describeCounts(requestsSince(lab, m1)),
      error: (mapped.error ?? removed.error) as string | undefined
    }
  } finally {
    runner.kill()
    await runner.exited
    await clearLeftovers(lab)
  }
}

async function upnpcSample (lab: Lab): Promise<Sample> {
  const ports = Array.from({ length: COUNT }, (_v, i) => FIRST + i)
  const url = lab.descriptionUrl ?? ''
  try {
    const m0 = lab.routerLog().length
    let t0 = performance.now()
    const map = await lab.exec('lan', 'upnpc', ['-u', url, '-e', 'bench', '-r', ...ports.flatMap((p) => [String(p), 'udp'])], { timeoutMs: 600_000 })
    const mapMs = performance.now() - t0
    const rulesAfterMap = (await lab.rules()).dnat.length
    const m1 = lab.routerLog().length
    t0 = performance.now()
    // Two ranges of 128: one -N over all 256 kills miniupnpd 2.3.1 (docs/quirks.md, "Beyond the list").
    const half = FIRST + COUNT / 2
    const removeLow = await lab.exec('lan', 'upnpc', ['-u', url, '-N', String(FIRST), String(half - 1), 'udp'], { timeoutMs: 600_000 })
    const removeHigh = await lab.exec('lan', 'upnpc', ['-u', url, '-N', String(half), String(FIRST + COUNT - 1), 'udp'], { timeoutMs: 600_000 })
    const remove = removeLow.code !== 0 ? removeLow : removeHigh
    const removeMs = performance.now() - t0
    await new Promise((resolve) => { setTimeout(resolve, 100) })
    return {
      mapMs,
      removeMs,
      mapped: rulesAfterMap,
      rulesAfterMap,
      rulesAfterRemove: (await lab.rules()).dnat.length,
      mapRequests: describeCounts(requestsSince(lab, m0, m1)),
      removeRequests: describeCounts(requestsSince(lab, m1)),
      error: map.code !== 0 ? `upnpc -r exit ${String(map.code)}` : remove.code !== 0 ? `upnpc -N exit ${String(remove.code)}` : undefined
    }
  } finally {
    await clearLeftovers(lab)
  }
}

interface Variant { label: string, router: string, natpmp: boolean, run: (lab: Lab) => Promise<Sample> }

export async function ranges (ctx: BenchContext): Promise<Section> {
  const reps = ctx.quick ? 1 : 3
  const variants: Variant[] = [
    { label: 'natmapper addMappings / removeMappings (PCP)', router: 'full (PCP, NAT-PMP, UPnP)', natpmp: true, run: async (lab) => await natmapperSample(lab, 'pcp') },
    { label: 'natmapper addMappings / removeMappings (UPnP)', router: 'UPnP only (IGD v2)', natpmp: false, run: async (lab) => await natmapperSample(lab, 'upnp') },
    { label: 'upnpc -r (256 ports) / upnpc -N x2 (DeletePortMappingRange, 128 each)', router: 'UPnP only (IGD v2)', natpmp: false, run: upnpcSample }
  ]
  const results = new Map<Variant, Sample[]>(variants.map((v) => [v, []]))
  ctx.log(`7. port ranges: ${COUNT} UDP ports, ${reps} run(s) each`)
  for (const natpmp of [true, false]) {
    await withBenchLab({ natpmp }, async (lab) => {
      for (let rep = 0; rep < reps; rep++) {
        for (const v of variants.filter((x) => x.natpmp === natpmp)) {
          const s = await v.run(lab)
          ctx.log(`7. ${v.label}: map ${s.mapMs.toFixed(0)} ms, remove ${s.removeMs.toFixed(0)} ms, ${s.mapped} mapped, ${s.rulesAfterRemove} left`)
          results.get(v)!.push(s)
        }
      }
    })
  }
  const rows = variants.map((v) => {
    const s = results.get(v)!
    const last = s[s.length - 1]!
    return [v.label, v.router, formatSummary(summarize(s.map((x) => x.mapMs))), formatSummary(summarize(s.map((x) => x.removeMs))),
      `${last.mapped}/${COUNT}; router held ${last.rulesAfterMap}`, s.map((x) => x.rulesAfterRemove).join(', '), `map: ${last.mapRequests}; remove: ${last.removeRequests}`, last.error ?? '']
  })
  const ours = [...results].filter(([v]) => v.label.startsWith('natmapper')).flatMap(([, s]) => s)
  return {
    id: 7,
    title: `Port ranges: ${COUNT} UDP ports (${FIRST}–${FIRST + COUNT - 1}) on the lab router`,
    goal: 'every port mapped, faster than upnpc -r, nothing left after close.',
    method: 'natmapper: one addMappings of the range (8 requests in flight on PCP, 4 on UPnP), then removeMappings and close(), timed in the runner; upnpc: whole processes with -u (no SSDP wait), -r with the 256 ports, -N twice (128 ports each) for the removal. The router\'s nftables chain is read after each phase.',
    columns: ['client', 'router', 'map all, median (min–max, n)', 'remove all', 'result (last run)', 'rules left after removal, each run', 'router requests (last run)', 'errors'],
    rows,
    verdicts: [
      verdict(ours.every((x) => x.mapped === COUNT && x.rulesAfterMap === COUNT), `natmapper: ${COUNT}/${COUNT} mapped in every run`),
      verdict(ours.every((x) => x.rulesAfterRemove === 0), 'natmapper: 0 rules left after close in every run')
    ],
    notes: []
  }
}
