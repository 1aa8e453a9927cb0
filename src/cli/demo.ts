import { UsageError } from '../errors.js'
import { NAT } from '../nat/nat.js'
import { PcpClient } from '../port-control/pcp-client.js'
import { SimulatedPmpGateway } from '../testing/pmp-gateway.js'
import { parseCommandLine } from './common.js'
import { mappedLine, mappingFields } from './map-lines.js'
import { createOutput, type Output } from './output.js'

export const demoHelp = `Usage: natmapper demo [--json]

Runs the whole flow against a simulated router inside this process (natmapper/testing, on
127.0.0.1; nothing leaves the machine): find the router, map a port, see the router reboot
and the mapping come back, then close and leave nothing behind.
`

export async function runDemo (argv: string[], output?: Output): Promise<number> {
  const { values, positionals } = parseCommandLine('demo', argv, {
    json: { type: 'boolean', default: false }, verbose: { type: 'boolean', default: false }, help: { type: 'boolean', short: 'h', default: false }
  })
  if (values.help) {
    process.stdout.write(demoHelp)
    return 0
  }
  if (positionals.length > 0) throw new UsageError(`demo takes no arguments, not ${JSON.stringify(positionals[0])}`)
  const out = output ?? createOutput({ json: values.json, verbose: values.verbose })
  const say = (step: string, fields: Record<string, unknown>, line: string): void => { out.event(step, fields, line) }

  const router = await SimulatedPmpGateway.start({ externalAddress: '11.0.0.1' })
  const client = new PcpClient({ gateway: router.address, port: router.port })
  // Announcements on loopback, where the simulated router sends them.
  const listening = await client.describe().listen?.({ portControl: { port: 0, bindAddress: '127.0.0.1', multicastGroup: undefined } })
  say('router', { address: router.address, port: router.port, externalAddress: router.externalAddress },
    `simulated router (PCP + NAT-PMP) on ${router.address}:${router.port}, external address ${router.externalAddress}`)
  // A tenth of the RFC's 0-5 s wait keeps the demo short; real use waits the full random time.
  const nat = new NAT(client, { random: () => Math.random() / 10 })
  try {
    nat.on('mapped', (m) => { say('mapped', mappingFields(m), mappedLine('mapped', m)) })
    nat.on('lost', (e) => { say('lost', { protocol: e.protocol, internalPort: e.internalPort, reason: e.reason.message }, `lost ${e.protocol} ${e.internalPort}: ${e.reason.message}`) })
    nat.on('unmapped', (e) => { say('unmapped', { ...e }, `unmapped ${e.protocol} ${e.internalPort}`) })

    const started = performance.now()
    await nat.addMapping('tcp', 4001)
    say('timing', { ms: Math.round(performance.now() - started) }, `(${Math.round(performance.now() - started)} ms, ${router.requestCount} router request)`)
    say('reboot', {}, 'the router reboots and forgets its mappings; it announces the restart...')
    router.restart()
    const back = new Promise<void>((resolve) => nat.once('mapped', () => { resolve() }))
    if (listening !== undefined) router.announce({ address: '127.0.0.1', port: listening.port })
    await Promise.race([back, new Promise((resolve) => setTimeout(resolve, 3000))])
    say('table', { mappings: router.mappings().length }, `router table: ${router.mappings().map((m) => `${m.protocol} ${m.internalPort}->${m.externalPort}`).join(', ') || 'empty'}`)
  } finally {
    await nat.close()
    say('closed', { mappings: router.mappings().length, requests: router.requestCount },
      `closed: router table ${router.mappings().length === 0 ? 'empty' : 'NOT empty'}, ${router.requestCount} router requests in all`)
    await router.close()
  }
  return router.mappings().length === 0 ? 0 : 1
}
