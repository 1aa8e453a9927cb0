import { AbortError, InterfaceError, NoGatewayError, UsageError } from '../errors.js'
import { systemNetwork } from '../net/host-network.js'
import { externalIpv4Interfaces } from '../net/local-interface.js'
import { discoverNAT, type DiscoverNatOptions } from './discover-nat.js'
import type { NAT } from './nat.js'
import type { LeftMapping } from './types.js'

/** discoverNAT's options but those that choose one network: discoverNATs chooses each in turn. */
export type DiscoverNatsOptions = Omit<DiscoverNatOptions, 'gateway' | 'interface' | 'localAddress'>

/** A NAT found on one interface: its sockets are bound to `localAddress`. */
export interface InterfaceNat {
  interface: string
  localAddress: string
  nat: NAT
}

/** An interface on which no NAT was found, and why (NoDefaultGatewayError, NoGatewayError, ...). */
export interface InterfaceWithoutNat {
  interface: string
  localAddress: string
  /** The gateway that was probed, when the interface has a default route. */
  gateway: string | undefined
  error: Error
}

export interface DiscoveredNats {
  /** One per interface whose gateway answered, in the order of the host's interface list. */
  nats: InterfaceNat[]
  /** Every other interface with an IPv4 address that is not loopback. */
  failures: InterfaceWithoutNat[]
  /** Closes every NAT (each deletes its own mappings); resolves with what none could delete. */
  close(): Promise<LeftMapping[]>
}

/**
 * One NAT per network this host is on: discoverNAT for every interface with an IPv4 address
 * that is not loopback, all at once, each bound to its interface and its gateway. An interface
 * without a gateway, or whose gateway does not answer, is listed in `failures` with its error;
 * the result has no NAT at all when none answered. Rejects only for the caller's errors (a
 * UsageError, an abort), after closing whatever it had found. Each NAT is the caller's, as
 * discoverNAT's is: close it, or close them all with `close()`.
 */
export async function discoverNATs (options: DiscoverNatsOptions = {}): Promise<DiscoveredNats> {
  for (const key of ['gateway', 'interface', 'localAddress'] as const) {
    if ((options as DiscoverNatOptions)[key] !== undefined) throw new UsageError(`discoverNATs chooses every interface itself: use discoverNAT for one ${key}`)
  }
  const network = options.network ?? systemNetwork
  const candidates = externalIpv4Interfaces(network.interfaces())
  const settled = await Promise.allSettled(candidates.map(async (local) => await discoverNAT({ ...options, network, interface: local.name, localAddress: local.address })))
  const nats: InterfaceNat[] = []
  const failures: InterfaceWithoutNat[] = []
  settled.forEach((result, i) => {
    const { name, address } = candidates[i]!
    if (result.status === 'fulfilled') nats.push({ interface: name, localAddress: address, nat: result.value })
    else failures.push({ interface: name, localAddress: address, gateway: result.reason instanceof NoGatewayError ? result.reason.gateway : undefined, error: result.reason as Error })
  })
  const close = async (): Promise<LeftMapping[]> => (await Promise.all(nats.map(async ({ nat }) => await nat.close()))).flat()
  // The caller's own mistakes and aborts are not one interface's story (an interface gone since it was listed is).
  const callers = failures.find((f) => (f.error instanceof UsageError && !(f.error instanceof InterfaceError)) || f.error instanceof AbortError)?.error
  if (callers !== undefined || options.signal?.aborted === true) {
    await close()
    throw callers ?? new AbortError(options.signal?.reason)
  }
  return { nats, failures, close }
}
