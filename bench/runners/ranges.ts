/**
 * A port range on one gateway: maps --count UDP ports from --first with one nat.addMappings,
 * then removes them with one nat.removeMappings and closes. Reports the time of each phase
 * (performance.now()) and how many ports each result says were done.
 *
 * --first=N --count=N --method=pcp|upnp
 */
import { command, describe, parseArgs, runTool, send } from './io.js'

const args = parseArgs(process.argv.slice(2))
const first = Number(args.first ?? 49387)
const count = Number(args.count ?? 256)
const method = args.method === 'upnp' ? 'upnp' : 'pcp'

async function natmapper (): Promise<void> {
  const { discoverNAT } = await import('../../src/index.js')
  const nat = await discoverNAT({ timeout: 5000, methods: [method] })
  const errors: string[] = []
  nat.on('error', (err) => { errors.push(describe(err)) })
  send({ type: 'ready', method: nat.method })
  const requests = [{ protocol: 'udp' as const, ports: [first, first + count - 1] as [number, number] }]
  await command()
  let t0 = performance.now()
  const mapped = await nat.addMappings(requests)
  send({ type: 'mapped', ms: performance.now() - t0, ok: mapped.filter((r) => r.mapping !== undefined).length, error: mapped.find((r) => r.error !== undefined)?.error?.message })
  await command()
  t0 = performance.now()
  const removed = await nat.removeMappings(requests)
  const left = await nat.close()
  send({ type: 'removed', ms: performance.now() - t0, ok: removed.filter((r) => r.error === undefined).length, left: left.length, error: removed.find((r) => r.error !== undefined)?.error?.message })
  send({ type: 'errors', errors: errors.slice(0, 5), total: errors.length })
}

await runTool('natmapper', { natmapper: async () => { await natmapper() } })
process.exit(0)
