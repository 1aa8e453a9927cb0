import type { Clock } from '../clock.js'
import { NoDefaultGatewayError, NoIpv6Error, UsageError } from '../errors.js'
import type { Gateway } from '../gateway.js'
import type { Logger } from '../log.js'
import { isIpv6Literal } from '../net/address.js'
import { findDefaultGateway6, type DefaultRoute6 } from '../net/default-gateway6.js'
import { hostIpv6Addresses } from '../net/ipv6-addresses.js'
import { PcpClient } from '../port-control/pcp-client.js'
import { PinholeClient } from '../upnp/pinhole.js'
import { PinholeGateway, withPinholeDelete } from '../upnp/pinhole-gateway.js'

/**
 * The IPv6 side's Gateway (NatOptions.ipv6): PCP to the IPv6 gateway from the host's global
 * address, or UPnP pinholes where the WANIPv6FirewallControl control URL is known. Discovery of
 * that URL over SSDP on IPv6 is not here yet: callers pass it.
 */
export interface Ipv6GatewayOptions {
  /** The IPv6 gateway; default: the IPv6 default route's next hop. */
  gateway?: string | undefined
  /** PCP server port (5351 unless a test points at a simulated gateway). */
  port?: number | undefined
  /** The host's global IPv6 address to open; default: the first chooseIpv6Addresses gives toward the gateway. */
  localAddress?: string | undefined
  /** http://[2001:db8:1::1]:5000/ctl/IP6FCtl: the router's WANIPv6FirewallControl:1 control URL. */
  controlURL?: string | undefined
  /** Default: 'upnp-pinhole' when `controlURL` is given, 'pcp' otherwise (then deletes refused after a renewal go over UPnP). */
  method?: 'pcp' | 'upnp-pinhole' | undefined
  clock?: Clock | undefined
  logger?: Logger | undefined
}

export async function openIpv6Gateway (options: Ipv6GatewayOptions = {}): Promise<Gateway> {
  if (options.gateway !== undefined && !isIpv6Literal(options.gateway.replace(/%.*$/, ''))) throw new UsageError(`not an IPv6 gateway address: ${JSON.stringify(options.gateway)}`)
  const method = options.method ?? (options.controlURL === undefined ? 'pcp' : 'upnp-pinhole')
  if (method === 'upnp-pinhole' && options.controlURL === undefined) throw new UsageError('UPnP pinholes need the router\'s WANIPv6FirewallControl control URL')
  let route: DefaultRoute6 | undefined
  // UPnP needs no route when the address to open is given: its URL names the router.
  if (options.gateway === undefined && (method === 'pcp' || options.localAddress === undefined)) {
    try {
      route = await findDefaultGateway6()
    } catch (err) {
      if (err instanceof NoDefaultGatewayError) throw new NoIpv6Error('no-route', 'the host has no IPv6 default route')
      throw err
    }
  }
  const localAddress = options.localAddress ?? hostIpv6Addresses(route)[0]?.address
  if (localAddress === undefined) throw new NoIpv6Error('no-global-address', `the host has no global IPv6 address${route?.interface === undefined ? '' : ` on ${route.interface}`}`)
  const client = options.controlURL === undefined ? undefined : new PinholeClient({ controlURL: options.controlURL, clock: options.clock, logger: options.logger })
  if (method === 'upnp-pinhole') return new PinholeGateway({ client: client!, localAddress, logger: options.logger })
  const gateway = options.gateway ?? route!.scoped
  const pcp = new PcpClient({ gateway, localAddress, ...(options.port === undefined ? {} : { port: options.port }), ...(options.clock === undefined ? {} : { clock: options.clock }), ...(options.logger === undefined ? {} : { logger: options.logger }) })
  return client === undefined ? pcp : withPinholeDelete(pcp, client, localAddress, options.logger)
}
