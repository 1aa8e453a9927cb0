import { discoverGateway } from '../discover/discover.js'
import { UsageError } from '../errors.js'
import { classifyAddress, notPublicReason } from '../net/address-class.js'
import { discoverOptionsFrom, gatewayOptionSpec, gatewayOptionsHelp, parseCommandLine } from './common.js'
import { createOutput, type Output } from './output.js'

export const externalIpHelp = `Usage: natmapper external-ip [options]

Prints the gateway's external address. Exits 1 when the gateway does not report one; warns on
stderr when the address is not public (double NAT, carrier-grade NAT).

Options:
${gatewayOptionsHelp}
`

export async function runExternalIp (argv: string[], output?: Output): Promise<number> {
  const { values, positionals } = parseCommandLine('external-ip', argv, gatewayOptionSpec)
  if (values.help) {
    process.stdout.write(externalIpHelp)
    return 0
  }
  if (positionals.length > 0) throw new UsageError(`external-ip takes no arguments, not ${JSON.stringify(positionals[0])}`)
  const out = output ?? createOutput({ json: values.json, verbose: values.verbose })
  const options = discoverOptionsFrom(values)
  const found = await discoverGateway(options)
  let address = found.externalAddress
  try {
    address ??= await found.gateway.externalAddress(options.timeout === undefined ? {} : { timeoutMs: options.timeout })
  } catch (err) {
    const reason = `${found.notPublicReason ?? 'the gateway did not report an external address'}: ${(err as Error).message}`
    // Scripts reading --json get JSON either way.
    if (out.json) out.result({ externalAddress: null, addressClass: null, public: false, reason, method: found.gateway.method }, reason)
    out.error(new Error(reason))
    return 1
  } finally {
    found.gateway.close()
  }
  const addressClass = classifyAddress(address)
  const reason = found.notPublicReason ?? notPublicReason(address, addressClass)
  out.result({ externalAddress: address, addressClass, public: reason === undefined, reason: reason ?? null, method: found.gateway.method }, address)
  if (reason !== undefined) out.info(`warning: ${reason}`)
  return 0
}
