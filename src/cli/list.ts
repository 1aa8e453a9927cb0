import { parseArgs } from 'node:util'
import { UsageError } from '../errors.js'
import { findDefaultGateway } from '../net/default-gateway.js'
import { discoverOptionsFrom, gatewayOptionSpec, gatewayOptionsHelp } from './common.js'
import { createOutput, type Output } from './output.js'
import { loadSaved } from './state.js'

export const listHelp = `Usage: natmapper list [options]

Lists the mappings natmapper left on the gateway ('natmapper map --once') that have not
expired. PCP and NAT-PMP cannot list a gateway's table, so this is what natmapper holds.

Options:
${gatewayOptionsHelp}
`

export async function runList (argv: string[], output?: Output): Promise<number> {
  const { values, positionals } = parseArgs({ args: argv, allowPositionals: true, options: gatewayOptionSpec })
  if (values.help) {
    process.stdout.write(listHelp)
    return 0
  }
  if (positionals.length > 0) throw new UsageError(`list takes no arguments, not ${JSON.stringify(positionals[0])}`)
  const out = output ?? createOutput({ json: values.json, verbose: values.verbose })
  const options = discoverOptionsFrom(values)
  const gateway = options.gateway ?? (await findDefaultGateway().catch(() => undefined))?.gateway
  const now = Date.now()
  const saved = (await loadSaved(now)).filter((s) => gateway === undefined || s.gateway === gateway)
  const rows = saved.map((s) => ({
    gateway: s.gateway,
    method: s.method,
    protocol: s.protocol,
    internalPort: s.internalPort,
    externalAddress: s.externalAddress ?? null,
    externalPort: s.externalPort,
    expiresInSeconds: s.expiresAt === null ? null : Math.round((s.expiresAt - now) / 1000)
  }))
  const human = rows.length === 0
    ? `no mappings held by natmapper${gateway === undefined ? '' : ` on ${gateway}`}`
    : rows.map((r) => `${r.protocol} ${r.internalPort} -> ${r.externalAddress ?? '?'}:${r.externalPort} (${r.method} on ${r.gateway}, ${r.expiresInSeconds === null ? 'permanent' : `expires in ${r.expiresInSeconds} s`})`).join('\n')
  out.result({ gateway: gateway ?? null, source: 'natmapper', mappings: rows }, human)
  return 0
}
