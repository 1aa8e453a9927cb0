import { discoverGateway, type DiscoverOptions } from '../discover/discover.js'
import type { ListenOptions } from '../gateway.js'
import { findGateway } from '../net/host-network.js'
import { NAT } from './nat.js'
import type { NatOptions } from './types.js'

export type DiscoverNatOptions = DiscoverOptions & Pick<NatOptions, 'lifetimeSeconds' | 'requestTimeoutMs' | 'closeTimeoutMs' | 'random' | 'keep' | 'maxConcurrentRequests' | 'verifyIntervalMs' | 'ipv6'>

/** How often a NAT looks at the default route, to notice a new network. */
const ROUTE_CHECK_INTERVAL_MS = 10_000

/**
 * Finds the gateway and returns a NAT that keeps mappings on it: the entry point of the library.
 * The NAT listens for the gateway's announcements, and finds the gateway again by itself when it
 * stops answering or the default route changes. With `interface` (or `localAddress`) every socket
 * is bound to that interface's address, now and at each rediscovery, and the route watched is
 * that interface's default route.
 */
export async function discoverNAT (options: DiscoverNatOptions = {}): Promise<NAT> {
  // The NAT learns the address from the first mapping, or asks for it (askExternalAddress).
  const found = await discoverGateway({ deferExternalAddress: true, ...options })
  const { gateway } = found
  const listen: ListenOptions = {
    ...(options.announcements === undefined ? {} : { portControl: options.announcements }),
    ...(options.ssdpListen === undefined ? {} : { ssdp: options.ssdpListen })
  }
  return new NAT(gateway, {
    ...pick(options, ['lifetimeSeconds', 'requestTimeoutMs', 'closeTimeoutMs', 'random', 'clock', 'logger', 'keep', 'maxConcurrentRequests', 'verifyIntervalMs', 'ipv6']),
    externalAddress: found.externalAddress,
    notPublicReason: found.notPublicReason,
    askExternalAddress: found.externalAddress === undefined && found.notPublicReason === undefined,
    listen,
    rediscover: async (signal) => (await discoverGateway({ ...options, signal })).gateway,
    ...(options.gateway === undefined
      ? { watchRoute: { lookup: async () => (await findGateway(options)).gateway, intervalMs: ROUTE_CHECK_INTERVAL_MS, initialGateway: gateway.address } }
      : {})
  })
}

function pick<T extends object, K extends keyof T> (object: T, keys: K[]): Partial<Pick<T, K>> {
  const out: Partial<Pick<T, K>> = {}
  for (const key of keys) if (object[key] !== undefined) out[key] = object[key]
  return out
}
