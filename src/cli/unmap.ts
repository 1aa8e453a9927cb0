import { systemClock } from '../clock.js'
import { openGateway } from '../discover/discover.js'
import { UsageError } from '../errors.js'
import type { Gateway, MappingMethod, PortMapping, TransportProtocol } from '../gateway.js'
import { mappingFromJSON } from '../mapping-json.js'
import { findGateway } from '../net/host-network.js'
import { discoverOptionsFrom, gatewayOptionSpec, gatewayOptionsHelp, parseCommandLine } from './common.js'
import { createOutput, type Output } from './output.js'
import { parseIntegerOption, parsePortArguments } from './ports.js'
import { forget, loadSaved, sameMapping, type SavedMapping } from './state.js'

export const unmapHelp = `Usage: natmapper unmap <port>/<tcp|udp>... [options]
       natmapper unmap <first>-<last>/<tcp|udp>... [options]
       natmapper unmap --all [options]

Deletes mappings on the gateway: ones that 'natmapper map --once' left there, or that a
'natmapper map' which did not end cleanly (a crash, kill -9, a router that stopped answering)
could not delete. natmapper records those (with the PCP nonce the gateway requires for a
delete); a mapping it has no record of is deleted as NAT-PMP or UPnP allow, at
--external-port (default: the internal port).

Options:
  --all                   every mapping natmapper has a record of on this gateway
  --external-port N       the mapping's external port, when natmapper has no record of it
${gatewayOptionsHelp}
`

interface Target { protocol: TransportProtocol, port: number, record: SavedMapping | undefined }

export async function runUnmap (argv: string[], output?: Output): Promise<number> {
  const { values, positionals } = parseCommandLine('unmap', argv, { ...gatewayOptionSpec, 'external-port': { type: 'string' }, all: { type: 'boolean', default: false } })
  if (values.help) {
    process.stdout.write(unmapHelp)
    return 0
  }
  if (values.all && positionals.length > 0) throw new UsageError('unmap takes either ports or --all, not both')
  if (!values.all && positionals.length === 0) throw new UsageError('unmap needs at least one port, e.g. natmapper unmap 4001/tcp, or --all')
  const specs = parsePortArguments(positionals)
  const out = output ?? createOutput({ json: values.json, verbose: values.verbose })
  const options = discoverOptionsFrom(values)
  const externalPort = parseIntegerOption('external-port', values['external-port'], 1, 65535)
  const address = options.gateway ?? (await findGateway(options)).gateway
  // A record made with another protocol than the one asked for is not the mapping asked for.
  const saved = (await loadSaved()).filter((s) => s.gateway === address && (options.method === undefined || s.method === options.method))
  const targets: Target[] = values.all
    ? saved.map((record) => ({ protocol: record.protocol as TransportProtocol, port: record.internalPort, record }))
    : specs.map((spec) => ({ ...spec, record: saved.find((s) => sameMapping(s, { gateway: address, protocol: spec.protocol, internalPort: spec.port })) }))
  if (targets.length === 0) {
    out.result({ gateway: address, unmapped: [] }, `natmapper has no record of mappings on ${address}${options.method === undefined ? '' : ` made with ${options.method}`}`)
    return 0
  }
  const gateways = new Map<string, Promise<Gateway>>()
  const open = async (method: MappingMethod | undefined): Promise<Gateway> => {
    const key = method ?? 'best'
    let gateway = gateways.get(key)
    if (gateway === undefined) {
      gateway = openGateway({ ...options, gateway: address, ...(method === undefined ? {} : { method }) })
      gateways.set(key, gateway)
    }
    return await gateway
  }
  let failed = 0
  const done: SavedMapping[] = []
  try {
    for (const target of targets) {
      try {
        const gateway = await open((target.record?.method as MappingMethod | undefined) ?? options.method)
        const mapping = target.record !== undefined ? mappingFromJSON(target.record.mapping, systemClock.now()) : unrecorded(gateway, target, externalPort)
        await gateway.unmap(mapping, options.timeout === undefined ? {} : { timeoutMs: options.timeout })
        if (target.record !== undefined) done.push(target.record)
        out.event('unmapped', { protocol: target.protocol, internalPort: target.port, externalPort: mapping.externalPort, method: gateway.method },
          `unmapped ${target.protocol} ${target.port} (external port ${mapping.externalPort}, ${gateway.method})`)
      } catch (err) {
        failed++
        out.error(new Error(`could not unmap ${target.port}/${target.protocol}: ${(err as Error).message}`))
      }
    }
  } finally {
    for (const gateway of gateways.values()) gateway.then((g) => { g.close() }, () => {})
    await forget(address, done)
  }
  return failed === 0 ? 0 : 1
}

/** A mapping natmapper has no record of, as far as NAT-PMP and UPnP need to delete one. */
function unrecorded (gateway: Gateway, target: Target, externalPort: number | undefined): PortMapping {
  if (gateway.method === 'pcp') {
    throw new UsageError(`natmapper has no record of ${target.port}/${target.protocol}: a PCP gateway deletes a mapping only for the nonce it was made with, so it will expire at the end of its lifetime`)
  }
  const nowMs = systemClock.now()
  return {
    method: gateway.method,
    protocol: target.protocol,
    internalPort: target.port,
    externalPort: externalPort ?? target.port,
    externalAddress: undefined,
    lifetimeSeconds: 0,
    grantedAtMs: nowMs,
    expiresAtMs: Infinity,
    session: undefined
  }
}
