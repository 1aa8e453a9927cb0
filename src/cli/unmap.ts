import { parseArgs } from 'node:util'
import { systemClock } from '../clock.js'
import { openGateway } from '../discover.js'
import { UsageError } from '../errors.js'
import type { Gateway, MappingMethod, PortMapping } from '../gateway.js'
import { mappingFromJSON } from '../mapping-json.js'
import { findDefaultGateway } from '../net/default-gateway.js'
import { discoverOptionsFrom, gatewayOptionSpec, gatewayOptionsHelp } from './common.js'
import { createOutput, type Output } from './output.js'
import { parseIntegerOption, parsePortSpec } from './ports.js'
import { loadSaved, sameMapping, saveAll, type SavedMapping } from './state.js'

export const unmapHelp = `Usage: natmapper unmap <port>/<tcp|udp>... [options]

Deletes mappings on the gateway, typically ones that 'natmapper map --once' left there.
natmapper remembers those (with the PCP nonce the gateway requires for a delete); a mapping
it does not know is deleted as NAT-PMP or UPnP allow, at --external-port (default: the
internal port).

Options:
  --external-port N       the mapping's external port, when natmapper has no record of it
${gatewayOptionsHelp}
`

export async function runUnmap (argv: string[], output?: Output): Promise<number> {
  const { values, positionals } = parseArgs({ args: argv, allowPositionals: true, options: { ...gatewayOptionSpec, 'external-port': { type: 'string' } } })
  if (values.help) {
    process.stdout.write(unmapHelp)
    return 0
  }
  if (positionals.length === 0) throw new UsageError('unmap needs at least one port, e.g. natmapper unmap 4001/tcp')
  const specs = positionals.map(parsePortSpec)
  const out = output ?? createOutput({ json: values.json, verbose: values.verbose })
  const options = discoverOptionsFrom(values)
  const externalPort = parseIntegerOption('external-port', values['external-port'], 1, 65535)
  const address = options.gateway ?? (await findDefaultGateway()).gateway
  const saved = await loadSaved()
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
    for (const spec of specs) {
      const record = saved.find((s) => sameMapping(s, { gateway: address, protocol: spec.protocol, internalPort: spec.port }))
      try {
        const method = (record?.method as MappingMethod | undefined) ?? options.method
        const gateway = await open(method)
        const mapping: PortMapping = record !== undefined
          ? mappingFromJSON(record.mapping, systemClock.now())
          : {
              method: gateway.method,
              protocol: spec.protocol,
              internalPort: spec.port,
              externalPort: externalPort ?? spec.port,
              externalAddress: undefined,
              lifetimeSeconds: 0,
              grantedAtMs: systemClock.now(),
              expiresAtMs: Infinity
            }
        if (record === undefined && gateway.method === 'pcp') {
          throw new UsageError(`natmapper has no record of ${spec.port}/${spec.protocol}: a PCP gateway deletes a mapping only for the nonce it was made with, so it will expire at the end of its lifetime`)
        }
        await gateway.unmap(mapping, options.timeout === undefined ? {} : { timeoutMs: options.timeout })
        if (record !== undefined) done.push(record)
        out.event('unmapped', { protocol: spec.protocol, internalPort: spec.port, externalPort: mapping.externalPort, method: gateway.method },
          `unmapped ${spec.protocol} ${spec.port} (external port ${mapping.externalPort}, ${gateway.method})`)
      } catch (err) {
        failed++
        out.error(new Error(`could not unmap ${spec.port}/${spec.protocol}: ${(err as Error).message}`))
      }
    }
  } finally {
    for (const gateway of gateways.values()) gateway.then((g) => { g.close() }, () => {})
    if (done.length > 0) await saveAll((await loadSaved()).filter((s) => !done.some((d) => sameMapping(s, d))))
  }
  return failed === 0 ? 0 : 1
}
