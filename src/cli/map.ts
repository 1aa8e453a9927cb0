import { discoverNAT } from '../nat/discover-nat.js'
import { UsageError } from '../errors.js'
import { discoverOptionsFrom, gatewayOptionSpec, gatewayOptionsHelp, parseCommandLine } from './common.js'
import { gatewayOfFamily, mapAndKeep, reportStats } from './map-keep.js'
import { ipv6OptionSpec, natMaker, type NatMaker } from './map-ipv6.js'
import { mappedLine, mappingFields, type MapRequest } from './map-lines.js'
import { createOutput, type Output } from './output.js'
import { describePorts, parseIntegerOption, parsePortArguments, type PortSpec } from './ports.js'
import { recordOf, rememberRecords } from './state.js'

export const mapHelp = `Usage: natmapper map <port>[/tcp|/udp]... [options]
       natmapper map <first>-<last>[/tcp|/udp]... [options]

Maps each port (or each port of a range, e.g. 49387-49642/udp; at most 4096 in all) on the
gateway and keeps the mappings alive (renewals, recovery after a router reboot) until
interrupted (Ctrl-C, SIGTERM, SIGHUP, or a closed stdout), then deletes every mapping it made
and exits 0. Exits 1 when a port could not be mapped while it ran, or a mapping could not be
deleted (each is named, with how long it stays on the router), 130 when interrupted before
anything was mapped or twice.

Options:
  --lifetime S            lease to ask for, in seconds (default 7200)
  --external-port N       external port to ask for (only with a single port)
  --description TEXT      shown in the router's table where the protocol carries it (UPnP)
  --ipv4, --ipv6          the IP version(s) to open the ports on (default IPv4; both flags: both).
                          On IPv6 a port is a pinhole in the router's firewall for this host's
                          global address, over PCP, or over UPnP with --pinhole-url
  --gateway6 ADDR         the IPv6 gateway (default: --gateway with --ipv6 alone, else the IPv6
                          default route); --gateway6-port N its PCP port
  --local-address6 ADDR   the host's global IPv6 address to open (default: the first one toward it)
  --pinhole-url URL       the router's WANIPv6FirewallControl:1 control URL (UPnP pinholes)
  --ipv6-method M         pcp or upnp-pinhole (default: upnp-pinhole with --pinhole-url, else pcp);
                          pcp with --pinhole-url deletes over UPnP a pinhole PCP will not delete
  --once                  map, print, and exit, leaving the mappings for their lifetime
                          (natmapper unmap deletes them); exits 1 when a port could not be
                          mapped or no public mapping is possible
${gatewayOptionsHelp}

With --json, events are printed one JSON object per line: mapped, renewed, lost,
external-address, not-public, gateway-changed, unmapped, error, left.
While it runs, natmapper records each mapping in its state file, so that 'natmapper unmap'
can delete what a crash left.
`

export async function runMap (argv: string[], output?: Output): Promise<number> {
  const { values, positionals } = parseCommandLine('map', argv, {
    ...gatewayOptionSpec,
    lifetime: { type: 'string' },
    'external-port': { type: 'string' },
    description: { type: 'string' },
    once: { type: 'boolean', default: false },
    ...ipv6OptionSpec
  })
  if (values.help) {
    process.stdout.write(mapHelp)
    return 0
  }
  const out = output ?? createOutput({ json: values.json, verbose: values.verbose })
  if (positionals.length === 0) throw new UsageError('map needs at least one port, e.g. natmapper map 4001/tcp')
  const specs = parsePortArguments(positionals)
  const discover = discoverOptionsFrom(values)
  const lifetimeSeconds = parseIntegerOption('lifetime', values.lifetime, 1, 0xffffffff) ?? 7200
  const externalPort = parseIntegerOption('external-port', values['external-port'], 1, 65535)
  if (externalPort !== undefined && specs.length > 1) throw new UsageError('--external-port applies to a single port')
  // Cut to what routers keep (miniupnpd: 63 bytes, escaped), on a character, never inside an entity.
  const request = { lifetimeSeconds, externalPort, description: values.description ?? 'natmapper' }
  const makeNat = natMaker(values, discover, { lifetimeSeconds, keep: !values.once })
  return values.once ? await mapOnce(specs, discover, request, out, makeNat) : await mapAndKeep(specs, discover, request, out, makeNat)
}

/** The NAT in its map-once mode: the same discovery, requests and double-NAT reading as `map`. */
async function mapOnce (specs: PortSpec[], discover: ReturnType<typeof discoverOptionsFrom>, request: MapRequest, out: Output, makeNat: NatMaker | undefined): Promise<number> {
  const nat = await (makeNat?.(undefined) ?? discoverNAT({ ...discover, keep: false, lifetimeSeconds: request.lifetimeSeconds, ...(discover.timeout === undefined ? {} : { requestTimeoutMs: discover.timeout }) }))
  let failures: Array<{ spec: PortSpec, error: Error }> = []
  try {
    const results = await nat.addMappings(specs.map((spec) => ({ protocol: spec.protocol, port: spec.port, externalPort: request.externalPort })), { description: request.description, ...(makeNat === undefined ? {} : { family: makeNat.family }) })
    failures = results.flatMap((r) => r.error === undefined ? [] : [{ spec: { protocol: r.protocol, port: r.internalPort }, error: r.error }])
    // A gateway without a public address may refuse mappings with something vaguer (miniupnpd
    // 2.3.1 behind a reserved WAN address answers PCP MAP with NO_RESOURCES): its address says why.
    // NOT_AUTHORIZED is the router's rules speaking, not its address: no need to ask then.
    if (nat.externalAddress === undefined && nat.refusal === undefined) await nat.askExternalAddress()
  } finally {
    const made = nat.mappings()
    // In the order asked, whatever order the answers came in.
    for (const spec of specs) {
      for (const m of made.filter((x) => x.protocol === spec.protocol && x.internalPort === spec.port)) out.event('mapped', mappingFields(m), mappedLine('mapped', m))
    }
    await rememberRecords(made.flatMap((m) => {
      const gateway = gatewayOfFamily(nat, nat.gatewayAddress, m.family)
      return gateway === undefined ? [] : [recordOf(gateway, m, m.family, { controlURL: makeNat?.controlURL })]
    }))
    await nat.close()
    reportStats(nat, out)
  }
  const reason = nat.notPublicReason
  if (failures.length > 0) {
    if (out.json) {
      for (const { spec, error } of failures) out.event('error', { code: (error as { code?: string }).code, message: error.message, protocol: spec.protocol, internalPort: spec.port }, '')
    }
    out.error(new Error(`${reason === undefined ? '' : `${reason}: `}could not map ${failureSummary(failures)}`))
    return 1
  }
  if (reason !== undefined) {
    out.error(new Error(reason))
    return 1
  }
  return 0
}

/** "4001/tcp: refused; 5000-5031/udp: NO_RESOURCES": ports that failed alike, together, in the order asked. */
export function failureSummary (failures: ReadonlyArray<{ spec: PortSpec, error: Error }>): string {
  const groups: Array<{ message: string, specs: PortSpec[] }> = []
  for (const { spec, error } of failures) {
    const last = groups[groups.length - 1]
    if (last?.message === error.message) last.specs.push(spec)
    else groups.push({ message: error.message, specs: [spec] })
  }
  return groups.map((g) => `${describePorts(g.specs)}: ${g.message}`).join('; ')
}
