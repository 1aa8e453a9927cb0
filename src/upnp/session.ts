import { UsageError } from '../errors.js'
import type { PortMapping, TransportProtocol } from '../gateway.js'
import { IGD2_MAX_LEASE_SECONDS } from './actions.js'
import type { ClientContext } from './client-context.js'

/** A UPnP mapping: the PortMapping an add grants, and the session it carries for its renewal and delete. */

/** What a renewal or delete needs. */
export interface UpnpSession {
  readonly requestedLifetimeSeconds: number
  readonly description: string
  /** The lease the router was asked for: 0 is permanent (604800 s on IGD v2). */
  readonly leaseSeconds?: number
}

export function isUpnpSession (session: unknown): session is UpnpSession {
  const s = session as Partial<UpnpSession> | null | undefined
  return typeof s?.requestedLifetimeSeconds === 'number' && typeof s.description === 'string'
}

export function sessionOf (mapping: PortMapping): UpnpSession {
  if (mapping.method !== 'upnp' || !isUpnpSession(mapping.session)) throw new UsageError('not a mapping made by a UPnP client')
  return mapping.session
}

/** The mapping an add was granted, with its session. */
export function grantedMapping (ctx: ClientContext, protocol: TransportProtocol, internalPort: number, externalPort: number, externalAddress: string | undefined,
  requestedLifetimeSeconds: number, leaseSeconds: number, description: string): PortMapping {
  const grantedAtMs = ctx.clock.now()
  const v2 = ctx.service.igdVersion === 2
  // A lease of 0 is permanent on IGD v1 and the 604800 s maximum on v2. A permanent lease that
  // the caller did not ask for is refreshed at the pace asked for all the same (as tailscale
  // does), so that it comes back after the router reboots.
  const leaseEndsSeconds = leaseSeconds !== 0 ? leaseSeconds : v2 ? IGD2_MAX_LEASE_SECONDS : Infinity
  const lifetimeSeconds = requestedLifetimeSeconds !== 0 ? Math.min(requestedLifetimeSeconds, leaseEndsSeconds) : v2 ? IGD2_MAX_LEASE_SECONDS : 0
  const session: UpnpSession = { requestedLifetimeSeconds, description, leaseSeconds }
  return {
    method: 'upnp',
    protocol,
    internalPort,
    externalPort,
    externalAddress,
    lifetimeSeconds,
    grantedAtMs,
    expiresAtMs: grantedAtMs + leaseEndsSeconds * 1000,
    session
  }
}
