import { networkInterfaces, type NetworkInterfaceInfo } from 'node:os'
import { systemClock, type Clock } from '../clock.js'
import { createLogger, type Logger } from '../log.js'
import { findDefaultGateway } from '../net/default-gateway.js'
import type { CreateSocket } from '../net/udp.js'
import { isLocalResponder, localPrefixes6For, localSubnetFor, type UrlPolicy } from './guard.js'
import { SsdpSearch, type SearchBurst, type SsdpTarget } from './ssdp.js'

/**
 * The first step of UPnP discovery, apart from the rest: the M-SEARCH goes out with only the SSDP
 * code loaded, and the description, SOAP and client code (most of natmapper) can load while the
 * router takes its 50 ms or more to answer (discover.ts does that). The search keeps what it
 * hears until discoverIgd reads it.
 */

export interface IgdSearchOptions {
  /** The gateway's address; found from the default route when absent. */
  gateway?: string | undefined
  /**
   * The caller named the gateway (natmapper --gateway): then only it may answer and be
   * connected to. Otherwise another host of its subnet may answer for it, as a CARP pair does
   * (guard.ts); when the user asked for one router, another one answering is not it.
   */
  gatewayNamed?: boolean | undefined
  /** Where the multicast M-SEARCH goes (default 239.255.255.250:1900); false for none. */
  ssdpTarget?: SsdpTarget | false | undefined
  /** The gateway's SSDP port for the unicast M-SEARCH. Default 1900. */
  ssdpGatewayPort?: number | undefined
  /** The local address multicast leaves from; default localAddress, else the routing table's choice. */
  multicastInterface?: string | undefined
  /**
   * The local address every socket binds to, the search's and the HTTP connections' (the chosen
   * interface's: DiscoverOptions.interface); default any.
   */
  localAddress?: string | undefined
  /** What to search for and when; default DEFAULT_SEARCH_SCHEDULE (ssdp.ts). */
  searchSchedule?: readonly SearchBurst[] | undefined
  /** The local interfaces, for the gateway's subnet (see guard.ts). Default os.networkInterfaces(). */
  interfaces?: NodeJS.Dict<NetworkInterfaceInfo[]> | undefined
  clock?: Clock | undefined
  createSocket?: CreateSocket | undefined
  logger?: Logger | undefined
}

/** A search under way, for discoverIgd to go on with (it closes the search). */
export interface StartedIgdSearch {
  readonly search: SsdpSearch
  readonly gateway: string
  readonly subnet: UrlPolicy['subnet']
  /** For an IPv6 gateway: the prefixes of its link, where a LOCATION may point (guard.ts). */
  readonly prefixes6: UrlPolicy['prefixes6']
  readonly localAddress: string | undefined
}

export async function startIgdSearch (options: IgdSearchOptions = {}): Promise<StartedIgdSearch> {
  const gateway = options.gateway ?? (await findDefaultGateway()).gateway
  // No subnet, no other host: the URL policy then allows the gateway alone (guard.ts).
  const interfaces = options.gatewayNamed === true ? {} : options.interfaces ?? networkInterfaces()
  const subnet = options.gatewayNamed === true ? undefined : localSubnetFor(gateway, interfaces)
  const prefixes6 = options.gatewayNamed === true ? undefined : localPrefixes6For(gateway, interfaces)
  const base = { gateway, subnet, prefixes6 }
  const search = await SsdpSearch.start({
    gateway,
    gatewayPort: options.ssdpGatewayPort,
    multicast: options.ssdpTarget,
    multicastInterface: options.multicastInterface ?? options.localAddress,
    bindAddress: options.localAddress,
    schedule: options.searchSchedule,
    acceptFrom: (address) => isLocalResponder(address, base),
    refusedWhy: options.gatewayNamed === true ? 'not the gateway that was named' : 'not the gateway nor a host of its subnet',
    clock: options.clock ?? systemClock,
    createSocket: options.createSocket,
    logger: options.logger ?? createLogger('upnp')
  })
  return { search, gateway, subnet, prefixes6, localAddress: options.localAddress }
}
