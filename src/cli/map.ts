import { parseArgs } from 'node:util'
import { systemClock } from '../clock.js'
import { discoverGateway, discoverNAT } from '../discover.js'
import { UsageError } from '../errors.js'
import type { PortMapping } from '../gateway.js'
import { mappingToJSON } from '../mapping-json.js'
import { classifyAddress, notPublicReason, notPublicReasonOf } from '../net/address-class.js'
import type { MappingEvent } from '../nat.js'
import { capDescription } from '../upnp/mapping-description.js'
import { discoverOptionsFrom, gatewayOptionSpec, gatewayOptionsHelp, methodNames } from './common.js'
import { createOutput, type Output } from './output.js'
import { parseIntegerOption, parsePortSpec, type PortSpec } from './ports.js'
import { loadSaved, sameMapping, saveAll } from './state.js'

export const mapHelp = `Usage: natmapper map <port>[/tcp|/udp]... [options]

Maps each port on the gateway and keeps the mappings alive (renewals, recovery after a router
reboot) until interrupted (Ctrl-C or SIGTERM), then deletes every mapping it made and exits 0.

Options:
  --lifetime S            lease to ask for, in seconds (default 7200)
  --external-port N       external port to ask for (only with a single port)
  --description TEXT      shown in the router's table where the protocol carries it (UPnP)
  --once                  map, print, and exit, leaving the mappings for their lifetime
                          (natmapper unmap deletes them); exits 1 when no public mapping is possible
${gatewayOptionsHelp}

With --json, events are printed one JSON object per line: mapped, renewed, lost,
external-address, not-public, gateway-changed, unmapped, error.
`

export async function runMap (argv: string[], output?: Output): Promise<number> {
  const { values, positionals } = parseArgs({ args: argv, allowPositionals: true, options: {
    ...gatewayOptionSpec,
    lifetime: { type: 'string' },
    'external-port': { type: 'string' },
    description: { type: 'string' },
    once: { type: 'boolean', default: false }
  } })
  if (values.help) {
    process.stdout.write(mapHelp)
    return 0
  }
  const out = output ?? createOutput({ json: values.json, verbose: values.verbose })
  if (positionals.length === 0) throw new UsageError('map needs at least one port, e.g. natmapper map 4001/tcp')
  const specs = positionals.map(parsePortSpec)
  const discover = discoverOptionsFrom(values)
  const lifetimeSeconds = parseIntegerOption('lifetime', values.lifetime, 1, 0xffffffff) ?? 7200
  const externalPort = parseIntegerOption('external-port', values['external-port'], 1, 65535)
  if (externalPort !== undefined && specs.length > 1) throw new UsageError('--external-port applies to a single port')
  // Cut to what routers keep (miniupnpd: 63 bytes, escaped), on a character, never inside an entity.
  const request = { lifetimeSeconds, externalPort, description: capDescription(values.description ?? 'natmapper') }
  return values.once ? await mapOnce(specs, discover, request, out) : await mapAndKeep(specs, discover, request, out)
}

interface Request { lifetimeSeconds: number, externalPort: number | undefined, description: string }

function mappingFields (m: MappingEvent): Record<string, unknown> {
  return {
    protocol: m.protocol, internalPort: m.internalPort, externalAddress: m.externalAddress,
    externalPort: m.externalPort, method: m.method, lifetime: m.lifetimeSeconds
  }
}

function mappedLine (verb: string, m: MappingEvent): string {
  return `${verb} ${m.protocol} ${m.internalPort} -> ${m.externalAddress ?? '?'}:${m.externalPort} (${m.method}, lifetime ${m.lifetimeSeconds} s)`
}

async function mapAndKeep (specs: PortSpec[], discover: ReturnType<typeof discoverOptionsFrom>, request: Request, out: Output): Promise<number> {
  out.info(`looking for the gateway${discover.gateway === undefined ? '' : ` at ${discover.gateway}`}...`)
  // One listener for the command's whole life. Removing a signal's last listener and adding
  // another later drops a signal that arrived in between and was not yet dispatched (libuv hands
  // it to the closed handle), so the first Ctrl-C would be lost.
  const stop = new AbortController()
  let signals = 0
  const onSignal = (name: string): void => {
    signals += 1
    // A second interrupt means "now": skip the cleanup.
    if (signals > 1) process.exit(130)
    stop.abort(name)
  }
  const onSigint = (): void => { onSignal('SIGINT') }
  const onSigterm = (): void => { onSignal('SIGTERM') }
  process.on('SIGINT', onSigint)
  process.on('SIGTERM', onSigterm)
  try {
    return await keepMapped(specs, discover, request, out, stop.signal)
  } finally {
    process.off('SIGINT', onSigint)
    process.off('SIGTERM', onSigterm)
  }
}

async function keepMapped (specs: PortSpec[], discover: ReturnType<typeof discoverOptionsFrom>, request: Request, out: Output, stopSignal: AbortSignal): Promise<number> {
  let nat
  try {
    nat = await discoverNAT({ ...discover, lifetimeSeconds: request.lifetimeSeconds, signal: stopSignal })
  } catch (err) {
    if (!stopSignal.aborted) throw err
    out.error(new Error('interrupted while looking for the gateway; nothing was mapped'))
    return 130
  }
  // Interrupted just as the gateway was found: stop here, not later.
  if (stopSignal.aborted) {
    await nat.close()
    out.error(new Error('interrupted while looking for the gateway; nothing was mapped'))
    return 130
  }
  out.info(`gateway ${nat.gatewayAddress}, ${methodNames[nat.method]}`)
  nat.on('mapped', (m) => { out.event('mapped', mappingFields(m), mappedLine('mapped', m)) })
  nat.on('renewed', (m) => { out.event('renewed', mappingFields(m), mappedLine('renewed', m)) })
  nat.on('lost', (e) => {
    out.event('lost', { protocol: e.protocol, internalPort: e.internalPort, reason: e.reason.message }, `lost ${e.protocol} ${e.internalPort}: ${e.reason.message}`)
  })
  nat.on('unmapped', (e) => { out.event('unmapped', { protocol: e.protocol, internalPort: e.internalPort }, `unmapped ${e.protocol} ${e.internalPort}`) })
  nat.on('external-address', (e) => {
    out.event('external-address', { address: e.address, previous: e.previous, public: e.addressClass === 'public' }, `external address is now ${e.address}`)
  })
  nat.on('gateway-changed', (e) => {
    out.event('gateway-changed', { previous: e.previous, address: e.address, method: e.method, reason: e.reason }, `gateway changed to ${e.address} (${methodNames[e.method]}): ${e.reason}`)
  })
  nat.on('error', (err) => {
    out.event('error', { code: (err as { code?: string }).code, message: err.message }, `error: ${err.message}`)
  })
  let warned = false
  const warnNotPublic = (reason: string): void => {
    if (warned) return
    warned = true
    out.event('not-public', { reason }, `warning: ${reason}; the mappings will not be reachable from the internet`)
  }
  // Known at discovery, or learnt later: from a mapping reply, a refusal, or the NAT's own
  // address request after a failed first mapping (miniupnpd behind a reserved WAN address).
  nat.on('not-public', (e) => { warnNotPublic(e.reason) })

  const stopped = new Promise<string>((resolve) => {
    stopSignal.addEventListener('abort', () => { resolve(String(stopSignal.reason)) }, { once: true })
  })
  // The library's timers and sockets do not hold the process open (an application that is done
  // may exit); this command's whole job is to stay until interrupted.
  const keepAlive = setInterval(() => {}, 2 ** 30)
  try {
    await Promise.race([
      Promise.all(specs.map(async (spec) => {
        await nat.addMapping(spec.protocol, spec.port, {
          description: request.description,
          ...(request.externalPort === undefined ? {} : { externalPort: request.externalPort })
        })
      })),
      stopped
    ])
    if (nat.notPublicReason !== undefined) warnNotPublic(nat.notPublicReason)
    out.info(`${await stopped}: removing mappings`)
  } finally {
    // Also on an unexpected error: whatever was mapped goes.
    clearInterval(keepAlive)
    await nat.close()
  }
  return 0
}

async function mapOnce (specs: PortSpec[], discover: ReturnType<typeof discoverOptionsFrom>, request: Request, out: Output): Promise<number> {
  // As discoverNAT does: the best protocol's first answer, the external address from the mapping
  // replies (a PCP router gets an ANNOUNCE and the MAPs, no NAT-PMP request).
  const found = await discoverGateway({ ...discover, deferExternalAddress: true })
  const { gateway } = found
  const made: PortMapping[] = []
  const failures: string[] = []
  let refusedAsNotPublic: string | undefined
  const callOptions = discover.timeout === undefined ? {} : { timeoutMs: discover.timeout }
  try {
    await Promise.all(specs.map(async (spec) => {
      try {
        const mapping = await gateway.map({
          protocol: spec.protocol,
          internalPort: spec.port,
          lifetimeSeconds: request.lifetimeSeconds,
          description: request.description,
          ...(request.externalPort === undefined ? {} : { suggestedExternalPort: request.externalPort })
        }, callOptions)
        made.push(mapping)
        out.event('mapped', mappingFields(mapping), mappedLine('mapped', mapping))
      } catch (err) {
        failures.push(`${spec.port}/${spec.protocol}: ${(err as Error).message}`)
        // No external address to map on (PCP NETWORK_FAILURE): double NAT, said as such.
        refusedAsNotPublic ??= notPublicReasonOf(err)
      }
    }))
    if (made.length === 0 && found.externalAddress === undefined && found.notPublicReason === undefined && refusedAsNotPublic === undefined) {
      // Nothing was mapped and nothing said why in terms of the address: ask for it, since a
      // gateway without a public one may refuse mappings with something vaguer (miniupnpd 2.3.1
      // behind a reserved WAN address answers PCP MAP with NO_RESOURCES, and the external
      // address request with NETWORK_FAILURE).
      try {
        await gateway.externalAddress(callOptions)
      } catch (err) {
        refusedAsNotPublic = notPublicReasonOf(err)
      }
    }
  } finally {
    gateway.close()
  }
  if (made.length > 0) {
    const saved = (await loadSaved()).filter((s) => !made.some((m) => sameMapping(s, { gateway: gateway.address, ...m })))
    for (const m of made) {
      const json = mappingToJSON(m, systemClock.now())
      saved.push({
        gateway: gateway.address,
        method: m.method,
        protocol: m.protocol,
        internalPort: m.internalPort,
        externalPort: m.externalPort,
        ...(m.externalAddress === undefined ? {} : { externalAddress: m.externalAddress }),
        expiresAt: (json as { expiresAtMs: number | null }).expiresAtMs,
        mapping: json
      })
    }
    await saveAll(saved)
  }
  const external = made.find((m) => m.externalAddress !== undefined)?.externalAddress ?? found.externalAddress
  const reason = found.notPublicReason ?? refusedAsNotPublic ?? (external === undefined ? undefined : notPublicReason(external, classifyAddress(external)))
  if (failures.length > 0) {
    out.error(new Error(`${reason === undefined ? '' : `${reason}: `}could not map ${failures.join('; ')}`))
    return 1
  }
  if (reason !== undefined) {
    out.error(new Error(reason))
    return 1
  }
  return 0
}
