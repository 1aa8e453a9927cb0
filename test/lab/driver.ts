/**
 * Drives the natmapper library from inside a lab namespace: reads one JSON command per line on
 * stdin, answers one JSON line per command on stdout, and streams the NAT's events as lines too.
 * The lab tests run it with `lab.spawn('lan', node, [driver.js])` and check the router between
 * steps. Not a test file itself.
 */
import { createInterface } from 'node:readline'
import { discoverNAT, type DiscoverNatOptions } from '../../src/nat/discover-nat.js'
import type { MappingRequest, NAT } from '../../src/nat/nat.js'
import type { TransportProtocol } from '../../src/gateway.js'

interface Command { id: number, op: string, protocol?: TransportProtocol, port?: number, externalPort?: number, count?: number, options?: DiscoverNatOptions, requests?: MappingRequest[] }

let nat: NAT | undefined

function write (value: unknown): void {
  process.stdout.write(`${JSON.stringify(value)}\n`)
}

function describeError (err: unknown): { name: string, code?: string, message: string } {
  const e = err as Error & { code?: string }
  return { name: e.name, ...(e.code === undefined ? {} : { code: e.code }), message: e.message }
}

async function run (command: Command): Promise<unknown> {
  const started = performance.now()
  const ms = (): number => Math.round((performance.now() - started) * 10) / 10
  switch (command.op) {
    case 'discover': {
      nat = await discoverNAT(command.options ?? {})
      for (const event of ['mapped', 'renewed', 'lost', 'unmapped', 'external-address', 'gateway-changed', 'error'] as const) {
        nat.on(event, (payload: unknown) => {
          write({ event, at: performance.now(), ...(payload instanceof Error ? describeError(payload) : payload as object) })
        })
      }
      return { method: nat.method, gatewayAddress: nat.gatewayAddress, externalAddress: nat.externalAddress, notPublicReason: nat.notPublicReason, ms: ms() }
    }
    case 'add': {
      const n = command.count ?? 1
      await Promise.all(Array.from({ length: n }, async () => {
        await nat!.addMapping(command.protocol!, command.port!, command.externalPort === undefined ? {} : { externalPort: command.externalPort })
      }))
      return { mapping: nat!.getMapping(command.protocol!, command.port!), ms: ms() }
    }
    case 'add-many': {
      const results = await nat!.addMappings(command.requests!)
      return { results: results.map((r) => ({ protocol: r.protocol, internalPort: r.internalPort, externalPort: r.mapping?.externalPort, error: r.error === undefined ? undefined : describeError(r.error) })), ms: ms() }
    }
    case 'remove-many': {
      const results = await nat!.removeMappings(command.requests!)
      return { results: results.map((r) => ({ protocol: r.protocol, internalPort: r.internalPort, error: r.error === undefined ? undefined : describeError(r.error) })), ms: ms() }
    }
    case 'get':
      return { mapping: nat!.getMapping(command.protocol!, command.port!) ?? null }
    case 'state':
      return { method: nat!.method, externalAddress: nat!.externalAddress ?? null, notPublicReason: nat!.notPublicReason ?? null }
    case 'remove':
      await nat!.removeMapping(command.protocol!, command.port!)
      return { ms: ms() }
    case 'close':
      await nat!.close()
      return { ms: ms() }
    case 'exit':
      process.exit(0)
      break
    default:
      throw new Error(`unknown op ${command.op}`)
  }
}

const keepAlive = setInterval(() => {}, 1 << 30)
createInterface({ input: process.stdin }).on('line', (line) => {
  const command = JSON.parse(line) as Command
  run(command).then(
    (result) => { write({ id: command.id, ok: true, ...(result as object) }) },
    (err: unknown) => { write({ id: command.id, ok: false, error: describeError(err) }) }
  )
}).on('close', () => { clearInterval(keepAlive) })
