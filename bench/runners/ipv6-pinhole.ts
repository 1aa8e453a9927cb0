/**
 * Time to first IPv6 pinhole beside IPv4's first mapping, in-process: from the first library call
 * to the granted mapping. Run inside the lab's lan namespace (`ipv6: true`), one fresh process per
 * sample. After the `result` line it waits for `cleanup`, closes the NAT (which deletes what it
 * made) and exits.
 *
 * --tool=ipv4            discoverNAT() + addMapping (PCP on this router)
 * --tool=ipv6-pcp        openIpv6Gateway({ localAddress }) (IPv6 default route, PCP) + a family-6 NAT's addMapping
 * --tool=ipv6-upnp       openIpv6Gateway({ localAddress, controlURL }) (UPnP pinholes) + addMapping
 * --port=N --client6=ADDR --control-url=URL
 */
import { distIndexUrl } from '../lib/context.js'
import { command, describe, parseArgs, runTool, send } from './io.js'

type Index = typeof import('../../src/index.js')
type Nat = InstanceType<Index['NAT']>

const args = parseArgs(process.argv.slice(2))
const port = Number(args.port)
const timeoutMs = 10_000

async function timed (open: (lib: Index) => Promise<Nat>): Promise<void> {
  // The published bundle, as an application gets it; its types are those of src/.
  const lib = await import(distIndexUrl) as Index
  const errors: string[] = []
  const t0 = performance.now()
  let nat: Nat
  try {
    nat = await open(lib)
  } catch (err) {
    send({ type: 'result', ok: false, error: describe(err), ms: performance.now() - t0 })
    await command()
    send({ type: 'cleaned', ms: 0, errors: [] })
    return
  }
  const openedMs = performance.now() - t0
  nat.on('error', (err) => { errors.push(describe(err)) })
  await nat.addMapping('tcp', port, { signal: AbortSignal.timeout(timeoutMs) }).catch((err: unknown) => { errors.push(describe(err)) })
  const ms = performance.now() - t0
  const mapping = nat.getMapping('tcp', port)
  send(mapping === undefined
    ? { type: 'result', ok: false, error: errors[0] ?? 'no mapping', ms }
    : { type: 'result', ok: true, ms, discoveredMs: openedMs, method: nat.method, externalAddress: mapping.address, externalPort: mapping.port })
  await command()
  const c0 = performance.now()
  await nat.close()
  send({ type: 'cleaned', ms: performance.now() - c0, errors })
}

const ipv6 = (lib: Index, controlURL?: string): Promise<Nat> =>
  lib.openIpv6Gateway({ localAddress: args.client6, ...(controlURL === undefined ? {} : { controlURL }) })
    .then((gateway) => new lib.NAT(gateway, { family: 6, requestTimeoutMs: timeoutMs }))

await runTool(args.tool, {
  ipv4: async () => { await timed((lib) => lib.discoverNAT({ timeout: timeoutMs })) },
  'ipv6-pcp': async () => { await timed((lib) => ipv6(lib)) },
  'ipv6-upnp': async () => { await timed((lib) => ipv6(lib, args['control-url'])) }
})
process.exit(0)
