import { networkInterfaces } from 'node:os'
import { requireBuiltin } from '../builtin.js'
import { NoDefaultGatewayError } from '../errors.js'
import { readRouteTable } from './default-gateway.js'
import { chooseLocalInterface, type InterfaceChoice, type InterfaceList, type LocalInterface } from './local-interface.js'
import { noRouterHint, type NetworkFacts } from './network-hints.js'
import { bestDefaultRoute, type Ipv4Route } from './routes.js'

/**
 * What discovery reads of this host's network: its interfaces, its route table, and whether it
 * runs in a Docker container. An option (DiscoverOptions.network), so that tests give a host of
 * their making: two interfaces to two simulated routers on loopback, a container, a VPN.
 */
export interface HostNetwork {
  /** Names as os.networkInterfaces() gives them. */
  interfaces(): InterfaceList
  /** See readRouteTable: Linux's whole main table, Windows' default routes, the BSDs' one default route. */
  routes(): Promise<Ipv4Route[]>
  /** Whether a file exists (/.dockerenv). */
  exists(path: string): boolean
  /** Whose route table it is: it decides what can be known of it. */
  readonly platform: NodeJS.Platform
}

export const systemNetwork: HostNetwork = {
  interfaces: () => networkInterfaces(),
  routes: async () => await readRouteTable(process.platform),
  exists: (path) => {
    try {
      return requireBuiltin<typeof import('node:fs')>('node:fs').existsSync(path)
    } catch {
      return false
    }
  },
  platform: process.platform
}

export async function networkFacts (network: HostNetwork, routes?: readonly Ipv4Route[]): Promise<NetworkFacts> {
  return { routes: routes ?? await network.routes(), interfaces: network.interfaces(), inDocker: network.exists('/.dockerenv') }
}

/**
 * The gateway to probe: the default route's next hop, or, for a chosen interface, that of the
 * default route leaving by it (matched by name, or by address as Windows names interfaces).
 * NoDefaultGatewayError when there is none, with a hint when the table shows why.
 */
export async function findGatewayFor (network: HostNetwork, local: LocalInterface | undefined): Promise<{ gateway: string, interface: string | undefined }> {
  const routes = await network.routes()
  const route = bestDefaultRoute(routes, local === undefined ? undefined : [local.name, local.address])
  if (route?.gateway !== undefined) return { gateway: route.gateway, interface: local?.name ?? route.interface }
  const hint = noRouterHint(await networkFacts(network, routes))
  if (local === undefined) throw new NoDefaultGatewayError(`no IPv4 default route on ${network.platform}`, hint)
  // macOS and the BSDs show only the kernel's own default route (`route -n get default`).
  const limit = network.platform === 'linux' || network.platform === 'android' || network.platform === 'win32'
    ? ''
    : ` (on ${network.platform} natmapper sees only the system's default route${routes[0]?.interface === undefined ? '' : `, which leaves by ${routes[0].interface}`})`
  throw new NoDefaultGatewayError(`no IPv4 default route leaves by ${local.name} (${local.address})${limit}`, hint)
}

/**
 * The gateway discovery would probe for these options: the default route's, or the chosen
 * interface's (InterfaceError for a bad choice, NoDefaultGatewayError when it has none), with
 * the local address sockets would be bound to.
 */
export async function findGateway (options: InterfaceChoice & { network?: HostNetwork | undefined } = {}): Promise<{ gateway: string, interface: string | undefined, localAddress: string | undefined }> {
  const network = options.network ?? systemNetwork
  const local = options.interface === undefined && options.localAddress === undefined ? undefined : chooseLocalInterface(options, network.interfaces())
  return { ...await findGatewayFor(network, local), localAddress: local?.address }
}
