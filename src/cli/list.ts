import { discoverGateway } from '../discover/discover.js'
import { UsageError } from '../errors.js'
import { discoverOptionsFrom, gatewayOptionSpec, gatewayOptionsHelp, parseCommandLine, methodNames } from './common.js'
import { createOutput, type Output } from './output.js'
import { loadSaved } from './state.js'

export const listHelp = `Usage: natmapper list [options]

Lists port mappings. Where the gateway's protocol can list its table (UPnP IGD), this is the
gateway's whole table, whoever made each entry. PCP and NAT-PMP cannot list, so then it is
what natmapper left there ('natmapper map --once') and has not expired.

Options:
${gatewayOptionsHelp}
`

export async function runList (argv: string[], output?: Output): Promise<number> {
  const { values, positionals } = parseCommandLine('list', argv, gatewayOptionSpec)
  if (values.help) {
    process.stdout.write(listHelp)
    return 0
  }
  if (positionals.length > 0) throw new UsageError(`list takes no arguments, not ${JSON.stringify(positionals[0])}`)
  const out = output ?? createOutput({ json: values.json, verbose: values.verbose })
  const options = discoverOptionsFrom(values)
  const { gateway } = await discoverGateway(options)
  try {
    const list = gateway.describe().list
    if (list !== undefined) {
      const { entries: rows, unreadable } = await list(options.timeout === undefined ? {} : { timeoutMs: options.timeout })
      // Entries the router answered with something unreadable (a description it cut mid-entity) are skipped, and said.
      const lines = rows.length === 0 && unreadable.length === 0
        ? [`the gateway ${gateway.address} has no mappings (${methodNames[gateway.method]})`]
        : rows.map((r) => `${r.protocol} ${r.externalPort} -> ${r.internalClient}:${r.internalPort} ${JSON.stringify(r.description)} (${r.leaseSeconds === 0 ? 'permanent' : r.leaseSeconds === undefined ? 'lease unknown' : `lease ${r.leaseSeconds} s`}${r.enabled === false ? ', disabled' : ''})`)
      if (unreadable.length > 0) {
        lines.push(`${unreadable.length} entr${unreadable.length === 1 ? 'y' : 'ies'} could not be read: ${unreadable.map((u) => `index ${u.index} (${u.reason})`).join('; ')}`)
      }
      out.result({ gateway: gateway.address, source: 'gateway', method: gateway.method, mappings: rows, unreadable }, lines.join('\n'))
      return 0
    }
  } finally {
    gateway.close()
  }
  const now = Date.now()
  const rows = (await loadSaved(now)).filter((s) => s.gateway === gateway.address).map((s) => ({
    method: s.method,
    protocol: s.protocol,
    internalPort: s.internalPort,
    externalAddress: s.externalAddress ?? null,
    externalPort: s.externalPort,
    expiresInSeconds: s.expiresAt === null ? null : Math.round((s.expiresAt - now) / 1000)
  }))
  const human = rows.length === 0
    ? `no mappings held by natmapper on ${gateway.address} (${methodNames[gateway.method]} cannot list the gateway's table)`
    : rows.map((r) => `${r.protocol} ${r.internalPort} -> ${r.externalAddress ?? '?'}:${r.externalPort} (${r.method}, ${r.expiresInSeconds === null ? 'permanent' : `expires in ${r.expiresInSeconds} s`})`).join('\n')
  out.result({ gateway: gateway.address, source: 'natmapper', method: gateway.method, mappings: rows }, human)
  return 0
}
