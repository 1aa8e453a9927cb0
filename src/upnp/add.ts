import { AbortError, ConnectionResetError, GatewayRefusedError, TimeoutError, UncertainMappingError, UsageError } from '../errors.js'
import type { CallOptions, MapRequest, PortMapping, TransportProtocol } from '../gateway.js'
import { lowPortHint } from '../port-rules.js'
import { decodeAddAnyPortMapping, decodeAddPortMapping, encodeAddAnyPortMapping, encodeAddPortMapping, IGD2_MAX_LEASE_SECONDS, type PortMappingArgs } from './actions.js'
import type { ClientContext } from './client-context.js'
import { isRefused, UpnpErrorCode } from './codes.js'
import type { ExchangeContext } from './control.js'
import { capDescription } from './mapping-description.js'
import { deleteEntry, takenBy, type EntryLook } from './ownership.js'
import { grantedMapping } from './session.js'

/**
 * The add path of UpnpClient.map: which external ports to try, AddAnyPortMapping or
 * AddPortMapping, and the router workarounds on the way (leases refused, AddAnyPortMapping
 * missing, conflicts, low ports).
 */

export function checkRequest (request: MapRequest): void {
  if (request.protocol !== 'tcp' && request.protocol !== 'udp') throw new UsageError(`invalid protocol: ${JSON.stringify(request.protocol)}`)
  for (const [what, port] of [['internal port', request.internalPort], ['external port', request.suggestedExternalPort ?? 1]] as const) {
    if (!Number.isInteger(port) || port < 0 || port > 65535 || (what === 'internal port' && port === 0)) throw new UsageError(`invalid ${what}: ${String(port)}`)
  }
  if (!Number.isInteger(request.lifetimeSeconds) || request.lifetimeSeconds < 0 || request.lifetimeSeconds > 0xffffffff) {
    throw new UsageError(`invalid lifetime: ${String(request.lifetimeSeconds)} s`)
  }
}

/** What map() knows before its first add. */
export interface AddStart {
  readonly internalClient: string
  /** Undefined while `addressing` is still asking for it (see UpnpClient.map). */
  readonly externalAddress: string | undefined
  readonly addressing: Promise<string> | undefined
  readonly maxPortAttempts: number
}

/**
 * The first of up to `maxPortAttempts` candidate ports that is free and that the router grants,
 * with the external address the mapping has. The address may still be on its way (`addressing`):
 * when it fails, the mapping just made is taken back (see addressFor).
 */
export async function addOnFreePort (ctx: ClientContext, request: MapRequest, start: AddStart, context: ExchangeContext,
  options: CallOptions): Promise<{ mapping: PortMapping, externalAddress: string }> {
  const { internalClient, externalAddress, addressing } = start
  // As routers keep it (miniupnpd: 63 bytes escaped), so that what is read back compares equal.
  const description = capDescription(request.description ?? 'natmapper')
  let conflict: Error | undefined
  const wanted = { internalClient, internalPort: request.internalPort, description }
  const looking: EntryLook = { unreadableInARow: 0, sawFree: false }
  for (let attempt = 0; attempt < start.maxPortAttempts; attempt++) {
    const port = candidatePort(request, internalClient, attempt)
    // The router would overwrite an entry of our host made by another program (ownership.ts): look first.
    looking.sawFree = false
    const taken = await takenBy(ctx, request.protocol, port, wanted, looking, context)
    if (taken !== undefined) {
      ctx.logger('%s %d: %s; trying another external port', request.protocol, request.internalPort, taken.message)
      conflict = taken
      continue
    }
    let mapping: PortMapping
    try {
      mapping = await addMapping(ctx, request.protocol, request.internalPort, port, request.lifetimeSeconds, description, internalClient, externalAddress, context, { beforePermanent: addressing })
    } catch (err) {
      // No answer does not mean no mapping: say which one it may be, for the caller to delete (quirk 11).
      if (isUncertain(err)) {
        throw new UncertainMappingError(grantedMapping(ctx, request.protocol, request.internalPort, port, externalAddress, request.lifetimeSeconds, request.lifetimeSeconds, description), err as Error)
      }
      const outsideRules = lowPortRefusal(err, request.internalPort, looking.sawFree)
      if (outsideRules !== undefined) throw outsideRules
      // 718: another host holds this port; 729: another mechanism (NAT-PMP, PCP, a static rule) does.
      if (!isRefused(err, UpnpErrorCode.ConflictInMappingEntry, UpnpErrorCode.ConflictWithOtherMechanisms)) throw err
      ctx.logger('%s %d: external port %d is taken (%s), trying another', request.protocol, request.internalPort, port, (err as Error).message)
      conflict = err as Error
      continue
    }
    const address = externalAddress ?? await addressFor(ctx, mapping, addressing!, options)
    if (mapping.externalAddress !== address) mapping = { ...mapping, externalAddress: address }
    return { mapping, externalAddress: address }
  }
  throw conflict!
}

/**
 * The address asked for alongside the add that made `mapping`. When there is none to be had,
 * the mapping is deleted before the error is passed on; if even that fails, the error carries
 * the mapping for the manager to delete later (quirk 11).
 */
async function addressFor (ctx: ClientContext, mapping: PortMapping, addressing: Promise<string>, options: CallOptions): Promise<string> {
  try {
    return await addressing
  } catch (err) {
    ctx.logger('%s %d: no external address (%s): deleting external port %d again', mapping.protocol, mapping.internalPort, (err as Error).message, mapping.externalPort)
    try {
      await deleteEntry(ctx, mapping, options.signal === undefined ? {} : { signal: options.signal })
    } catch {
      throw new UncertainMappingError(mapping, err as Error)
    }
    throw err
  }
}

/** One add of `externalPort`. `how.beforePermanent`: what must succeed before a permanent lease may be asked for (see UpnpClient.map). */
export async function addMapping (ctx: ClientContext, protocol: TransportProtocol, internalPort: number, externalPort: number, lifetimeSeconds: number, description: string,
  internalClient: string, externalAddress: string | undefined, context: ExchangeContext,
  how: { exactPort?: boolean, beforePermanent?: Promise<unknown> | undefined } = {}): Promise<PortMapping> {
  const v2 = ctx.service.igdVersion === 2
  const asked = ctx.learnt.permanentOnly ? 0 : v2 ? Math.min(lifetimeSeconds, IGD2_MAX_LEASE_SECONDS) : lifetimeSeconds
  let lease = asked
  for (;;) {
    const args: PortMappingArgs = { externalPort, protocol, internalPort, internalClient, description, leaseDurationSeconds: lease }
    try {
      const granted = await addEntry(ctx, args, context, how.exactPort === true)
      // Remembered only once lease 0 has worked: then this router gets permanent leases from now on.
      if (lease !== asked) ctx.learnt.permanentOnly = true
      ctx.logger('%s %d: external port %d granted, lease %s', protocol, internalPort, granted, lease === 0 ? 'permanent' : `${lease} s`)
      return grantedMapping(ctx, protocol, internalPort, granted, externalAddress, lifetimeSeconds, lease, description)
    } catch (err) {
      // 725 OnlyPermanentLeasesSupported (MikroTik: tailscale#9343), or 402 InvalidArgs for any
      // lease but 0 (ARRIS NVG578LX: tailscale#15223): ask for a permanent lease. A 402 on
      // lease 0 is something else (a full table: miniupnp#92), not retried.
      if (lease === 0 || !isRefused(err, UpnpErrorCode.OnlyPermanentLeasesSupported, UpnpErrorCode.InvalidArgs)) throw err
      ctx.logger('lease %d s refused (%s): asking for a permanent lease', lease, (err as Error).message)
      await how.beforePermanent
      lease = 0
    }
  }
}

/** The granted external port: AddAnyPortMapping's choice, or the one AddPortMapping was given. */
async function addEntry (ctx: ClientContext, args: PortMappingArgs, context: ExchangeContext, exactPort: boolean): Promise<number> {
  const service = ctx.service
  if (!exactPort && service.igdVersion === 2 && !ctx.learnt.noAddAny && service.serviceType.includes(':WANIPConnection:')) {
    try {
      return await ctx.call((st) => encodeAddAnyPortMapping(st, args), decodeAddAnyPortMapping, context)
    } catch (err) {
      // An IGD v2 description is no promise: 401 InvalidAction or 602 OptionalActionNotImplemented,
      // or a TCP reset instead of a fault (Ubee EVW32C-0S: miniupnp#528).
      if (!isRefused(err, UpnpErrorCode.InvalidAction, UpnpErrorCode.OptionalActionNotImplemented) && !(err instanceof ConnectionResetError)) throw err
      ctx.logger('AddAnyPortMapping unavailable (%s): using AddPortMapping', (err as Error).message)
      ctx.learnt.noAddAny = true
    }
  }
  await ctx.call((st) => encodeAddPortMapping(st, args), decodeAddPortMapping, context)
  return args.externalPort
}

/**
 * The external port for attempt `attempt`. First the one asked for, or the internal port. Never
 * 0, which some routers read as "every port" (tailscale PR #8993), and never below 1024 unless
 * the caller asked for that port: TP-Link refuses them (tailscale PR #7457) and miniupnpd's
 * default rules allow 1024-65535 only. Otherwise, and after a conflict, a port derived from our
 * address and the internal port: the same host gets the same ports again (after a restart, or
 * from another process), and hosts mapping the same internal port get different ones.
 */
export function candidatePort (request: Pick<MapRequest, 'protocol' | 'internalPort' | 'suggestedExternalPort'>, internalClient: string, attempt: number): number {
  const asked = request.suggestedExternalPort !== undefined && request.suggestedExternalPort !== 0 ? request.suggestedExternalPort : undefined
  const first = asked ?? request.internalPort
  if (attempt === 0 && (asked !== undefined || first >= 1024)) return first
  return 1024 + fnv1a(`${internalClient}/${request.protocol}/${request.internalPort}/${attempt}`) % (65536 - 1024)
}

function fnv1a (text: string): number {
  let hash = 0x811c9dc5
  for (let i = 0; i < text.length; i++) {
    hash ^= text.charCodeAt(i)
    hash = Math.imul(hash, 0x01000193) >>> 0
  }
  return hash
}

/**
 * A refusal of an add for a low internal port as what it is: outside the router's rules
 * (port-rules.ts). miniupnpd answers 606 on IGD v2, 728 to AddAnyPortMapping (no permitted
 * external port for that internal port: upnpsoap.c, get_permitted_ext_ports) and 718 when built
 * without IGD_V2; a 718 counts only when the port was just seen free, else it is a conflict.
 * Told at once: other external ports are refused the same way (the internal port is the cause).
 */
function lowPortRefusal (err: unknown, internalPort: number, portWasFree: boolean): GatewayRefusedError | undefined {
  const hint = lowPortHint(internalPort)
  if (hint === undefined || !(err instanceof GatewayRefusedError) || err.protocol !== 'upnp') return undefined
  if (!isRefused(err, UpnpErrorCode.ActionNotAuthorized, UpnpErrorCode.NoPortMapsAvailable) && !(portWasFree && isRefused(err, UpnpErrorCode.ConflictInMappingEntry))) return undefined
  return new GatewayRefusedError('upnp', err.resultCode, err.resultName, hint)
}

/** The request may have reached the router and been applied: no answer, a reset, an abort after sending. */
function isUncertain (err: unknown): boolean {
  return err instanceof TimeoutError || err instanceof AbortError || err instanceof ConnectionResetError
}
