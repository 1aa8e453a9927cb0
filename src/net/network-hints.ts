import { inIpv4Subnet } from './ipv4.js'
import { externalIpv4Interfaces, type InterfaceList } from './local-interface.js'
import { bestDefaultRoute, isDefaultRoute, type Ipv4Route } from './routes.js'

/**
 * Why no router answers, when the host's network shows one of the usual traps: a container on
 * Docker's default bridge (its gateway is the Docker host, which maps nothing), or a VPN that
 * took the default route (its far end maps nothing either). Pure: the caller reads the route
 * table, the interfaces and whether /.dockerenv exists (host-network.ts).
 */

export interface NetworkFacts {
  readonly routes: readonly Ipv4Route[]
  readonly interfaces: InterfaceList
  /** /.dockerenv exists: Docker puts it in every container it runs. */
  readonly inDocker: boolean
}

/** Docker's default bridge network (docker0): containers get 172.17.0.2 and up, the host is 172.17.0.1. */
const DOCKER_BRIDGE = { address: '172.17.0.0', prefixLength: 16 }
/** Where Docker's default address pools put user-defined bridges (172.17-31.x.x/16). */
const DOCKER_POOLS = { address: '172.16.0.0', prefixLength: 12 }
/** Interface names VPN software gives its tunnels: OpenVPN (tun, tap), WireGuard (wg), Tailscale, macOS (utun), PPP/L2TP/PPTP, IPsec, NordVPN, ZeroTier. */
const VPN_NAME = /^(tun|tap|wg|tailscale|utun|ppp|ipsec|nordlynx|zt)/i
/** Interfaces that are no LAN to suggest: bridges and veths of containers, and VPN tunnels. */
const NOT_A_LAN = /^(docker|br-|veth|virbr|cni|flannel|lo)/i

export function isVpnInterface (name: string | undefined): boolean {
  return name !== undefined && VPN_NAME.test(name)
}

/**
 * The hint for a gateway that did not answer (`probed`: its address and, where known, the
 * interface of its route), or for a host without a usable default route (`probed` undefined).
 * Undefined when nothing known explains it.
 */
export function noRouterHint (facts: NetworkFacts, probed?: { gateway: string, interface?: string | undefined }): string | undefined {
  return dockerHint(facts, probed) ?? vpnHint(facts, probed)
}

/** A container on a Docker bridge: its gateway is in Docker's pools, and /.dockerenv exists or the host is on docker0's network. */
function dockerHint (facts: NetworkFacts, probed: { gateway: string } | undefined): string | undefined {
  if (probed === undefined) return undefined
  const onBridge = externalIpv4Interfaces(facts.interfaces).some((i) => inIpv4Subnet(i.address, DOCKER_BRIDGE))
  // /.dockerenv alone says nothing of the network: a container with host networking has it too.
  const bridged = facts.inDocker ? inIpv4Subnet(probed.gateway, DOCKER_POOLS) : onBridge && inIpv4Subnet(probed.gateway, DOCKER_BRIDGE)
  if (!bridged) return undefined
  const why = facts.inDocker ? '/.dockerenv exists' : `this host is on ${DOCKER_BRIDGE.address}/${DOCKER_BRIDGE.prefixLength}`
  return `This looks like a Docker container (${why}): the gateway ${probed.gateway} is the Docker host, not your router, and the host maps no ports; ` +
    'a mapping made through the host\'s NAT would point at the host, not at this container. ' +
    'Run the container with host networking (docker run --network host) or run natmapper on the host'
}

function vpnHint (facts: NetworkFacts, probed: { gateway: string, interface?: string | undefined } | undefined): string | undefined {
  const lan = suggestedLan(facts)
  const choose = lan === undefined
    ? 'choose your LAN interface with --interface NAME (the `interface` option) or name your router with --gateway IP'
    : `choose your LAN interface with --interface ${lan} (the \`interface\` option) or name your router with --gateway IP`
  // The probed route itself goes through a tunnel: its far end is the VPN's server.
  if (probed !== undefined && isVpnInterface(probed.interface)) {
    return `The default route goes through ${probed.interface!}, a VPN tunnel: ${probed.gateway} is the VPN's end of it, which maps no ports for you; ${choose}`
  }
  // A tunnel's default route without a next hop (WireGuard's `default dev wg0`): no gateway to ask at all.
  const tunnelDefault = facts.routes.find((r) => isDefaultRoute(r) && r.gateway === undefined && isVpnInterface(r.interface))
  if (probed === undefined && tunnelDefault !== undefined) {
    return `The default route goes straight into ${tunnelDefault.interface!}, a VPN tunnel with no router on it; ${choose}`
  }
  // OpenVPN's redirect-gateway def1 (and others) cover the whole space with two halves, leaving the default route in place.
  const split = splitTunnel(facts.routes)
  if (split !== undefined) {
    return `A VPN on ${split} takes all traffic (routes 0.0.0.0/1 and 128.0.0.0/1, as OpenVPN's redirect-gateway def1 sets): SSDP multicast and your connections leave through it, not through your router, and a mapping on the router would not serve them; ${choose}`
  }
  return undefined
}

/** The interface that holds both halves of a def1-style split, if any. */
function splitTunnel (routes: readonly Ipv4Route[]): string | undefined {
  const half = (destination: string): Ipv4Route | undefined => routes.find((r) => r.prefixLength === 1 && r.destination === destination)
  const low = half('0.0.0.0')
  const high = half('128.0.0.0')
  if (low === undefined || high === undefined || low.interface !== high.interface) return undefined
  return low.interface ?? 'a tunnel'
}

/** A LAN interface to name in the advice: one with a default route of its own first, else the first plausible one. */
function suggestedLan (facts: NetworkFacts): string | undefined {
  const lans = externalIpv4Interfaces(facts.interfaces).filter((i) => !isVpnInterface(i.name) && !NOT_A_LAN.test(i.name))
  const withRoute = bestDefaultRoute(facts.routes, lans.flatMap((i) => [i.name, i.address]))
  return withRoute?.interface === undefined ? lans[0]?.name : lans.find((i) => i.name === withRoute.interface || i.address === withRoute.interface)?.name
}
