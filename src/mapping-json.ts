import { RemoteProtocolError } from './errors.js'
import type { PortMapping } from './gateway.js'

/**
 * A PortMapping as JSON and back, so that a mapping made by one process can be renewed or
 * deleted by another (`natmapper map --once`, then `natmapper unmap`). The protocol session goes
 * along: a PCP server deletes a mapping only for the nonce it was made with. Byte arrays become
 * `{ "$bytes": "<hex>" }`; times are wall-clock (ms since the epoch) in JSON, since the clock a
 * mapping was made on does not survive the process.
 */

export interface MappingRecord {
  gateway: string
  mapping: unknown
}

export function mappingToJSON (mapping: PortMapping, clockNowMs: number, wallNowMs = Date.now()): unknown {
  const shift = wallNowMs - clockNowMs
  return toPlain({
    ...mapping,
    grantedAtMs: mapping.grantedAtMs + shift,
    expiresAtMs: Number.isFinite(mapping.expiresAtMs) ? mapping.expiresAtMs + shift : null
  })
}

export function mappingFromJSON (value: unknown, clockNowMs: number, wallNowMs = Date.now()): PortMapping {
  const plain = fromPlain(value) as Record<string, unknown>
  const shift = clockNowMs - wallNowMs
  const { method, protocol, internalPort, externalPort, lifetimeSeconds, grantedAtMs, expiresAtMs } = plain
  if ((method !== 'pcp' && method !== 'natpmp' && method !== 'upnp' && method !== 'upnp-pinhole') || (protocol !== 'tcp' && protocol !== 'udp') ||
      typeof internalPort !== 'number' || typeof externalPort !== 'number' || typeof lifetimeSeconds !== 'number' ||
      typeof grantedAtMs !== 'number') {
    throw new RemoteProtocolError('not a saved mapping')
  }
  return {
    method,
    protocol,
    internalPort,
    externalPort,
    externalAddress: typeof plain.externalAddress === 'string' ? plain.externalAddress : undefined,
    lifetimeSeconds,
    grantedAtMs: grantedAtMs + shift,
    expiresAtMs: typeof expiresAtMs === 'number' ? expiresAtMs + shift : Infinity,
    session: plain.session
  }
}

function toPlain (value: unknown): unknown {
  if (value instanceof Uint8Array) return { $bytes: Buffer.from(value).toString('hex') }
  if (Array.isArray(value)) return value.map(toPlain)
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined).map(([k, v]) => [k, toPlain(v)]))
  }
  return value
}

function fromPlain (value: unknown): unknown {
  if (Array.isArray(value)) return value.map(fromPlain)
  if (value !== null && typeof value === 'object') {
    const bytes = (value as { $bytes?: unknown }).$bytes
    if (typeof bytes === 'string' && Object.keys(value).length === 1) return new Uint8Array(Buffer.from(bytes, 'hex'))
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, fromPlain(v)]))
  }
  return value
}
