import type { Clock } from '../clock.js'
import { GatewayRefusedError } from '../errors.js'
import type { Gateway } from '../gateway.js'
import type { Logger } from '../log.js'
import { notPublicReasonOf } from '../net/address-class.js'
import type { CreateSocket } from '../net/udp.js'
import { NatPmpClient } from '../port-control/natpmp-client.js'
import { mapReplyKey, PcpClient } from '../port-control/pcp-client.js'
import { PortControlServer } from '../port-control/server.js'
import { startIgdSearch } from '../upnp/search.js'
import type { InterfaceList } from '../net/local-interface.js'
import type { SsdpTarget } from '../upnp/ssdp.js'

/** One protocol's probe of the gateway: each resolves with a client that works, or rejects saying why not. */

export interface ProbeValue { gateway: Gateway, externalAddress?: string, notPublicReason?: string, detail?: string }

/** What every probe of one discovery shares. */
export interface ProbeContext {
  address: string
  clock: Clock
  createSocket: CreateSocket | undefined
  logger: Logger | undefined
  /** The PCP/NAT-PMP server port (5351 but for simulated gateways). */
  port: number | undefined
  /** Every socket's local address, when the caller chose the network (DiscoverOptions.interface). */
  localAddress: string | undefined
  /** The one server PCP and NAT-PMP share (same port, same socket: RFC 6887 §9). */
  server: () => PortControlServer
  call: { signal: AbortSignal, timeoutMs: number }
  probeTimeoutMs: () => number
  upnp: {
    ssdpTarget: SsdpTarget | false | undefined
    ssdpGatewayPort: number | undefined
    /** Discovery returns at the best answer (discoverNAT): a lone WAN service is taken without GetExternalIPAddress. */
    deferExternalAddress: boolean | undefined
    /** The caller named the gateway: the UPnP device must be that host, not one beside it. */
    gatewayNamed: boolean
    /** The local interfaces, for the gateway's subnet (search.ts). */
    interfaces: InterfaceList | undefined
  }
}

/** The server both probes use, made on first use; discovery holds it until it ends (release), the winner after. */
export function portControlServer (ctx: Pick<ProbeContext, 'address' | 'clock' | 'createSocket' | 'logger' | 'port' | 'localAddress'>, withPcp: boolean): { get: () => PortControlServer, release: () => void } {
  let server: PortControlServer | undefined
  return {
    get: () => {
      // PCP's MAP replies are routed by nonce; a server for NAT-PMP alone needs no key.
      server ??= new PortControlServer({ gateway: ctx.address, clock: ctx.clock, port: ctx.port, localAddress: ctx.localAddress, createSocket: ctx.createSocket, logger: ctx.logger }, withPcp ? mapReplyKey : undefined).acquire()
      return server
    },
    release: () => { server?.release() }
  }
}

/** An ANNOUNCE: one request that creates nothing, and tells a PCP server from a NAT-PMP-only one. */
export async function probePcp (ctx: ProbeContext): Promise<ProbeValue> {
  const client = new PcpClient({ gateway: ctx.address, server: ctx.server() })
  try {
    if (!(await client.announce(ctx.call))) throw new GatewayRefusedError('pcp', 1, 'UNSUPP_VERSION', 'the server speaks only NAT-PMP')
    return { gateway: client }
  } catch (err) {
    client.close()
    throw err
  }
}

/** The external-address request, on the socket PCP uses. */
export async function probeNatPmp (ctx: ProbeContext, clearance: Promise<void> | undefined): Promise<ProbeValue> {
  await clearance
  const client = new NatPmpClient({ gateway: ctx.address, server: ctx.server() })
  try {
    return { gateway: client, externalAddress: await client.externalAddress(ctx.call) }
  } catch (err) {
    // miniupnpd answers NETWORK_FAILURE when its WAN address is private or reserved: the
    // server works, but there is another NAT beyond it.
    const notPublicReason = notPublicReasonOf(err)
    if (notPublicReason !== undefined) return { gateway: client, notPublicReason }
    client.close()
    throw err
  }
}

/** SSDP search, description, service choice. */
export async function probeUpnp (ctx: ProbeContext, turn: Promise<void>): Promise<ProbeValue> {
  await turn
  const { upnp, clock, address, call } = ctx
  // The M-SEARCH goes out first; the rest of the UPnP code, which a process whose gateway speaks
  // PCP or NAT-PMP never needs, loads while the router takes its 50 ms or more to answer.
  const search = {
    gateway: address,
    gatewayNamed: upnp.gatewayNamed,
    localAddress: ctx.localAddress,
    interfaces: upnp.interfaces,
    clock,
    ssdpTarget: upnp.ssdpTarget,
    ssdpGatewayPort: upnp.ssdpGatewayPort,
    createSocket: ctx.createSocket,
    logger: ctx.logger
  }
  const started = await startIgdSearch(search)
  let UpnpClient: typeof import('../upnp/client.js').UpnpClient
  try {
    ({ UpnpClient } = await import('../upnp/client.js'))
  } catch (err) {
    started.search.close()
    throw err
  }
  const client = await UpnpClient.discover({ ...search, started, signal: call.signal, timeoutMs: ctx.probeTimeoutMs(), deferExternalAddress: upnp.deferExternalAddress })
  const found = client.selection?.externalAddress
  const detail = client.describe().detail
  if (found?.ok === false) {
    // miniupnpd answers '' when its WAN address is private or reserved (LAB.md).
    return { gateway: client, detail, notPublicReason: `the gateway has no public external address (UPnP GetExternalIPAddress: ${found.text === '' ? 'empty' : JSON.stringify(found.text.slice(0, 40))}): its WAN link is down, or there is another NAT beyond it (double NAT or carrier-grade NAT)` }
  }
  return { gateway: client, ...(detail === undefined ? {} : { detail }), ...(found === undefined ? {} : { externalAddress: found.address }) }
}
