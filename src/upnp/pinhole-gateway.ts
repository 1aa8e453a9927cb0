import { RemoteProtocolError, type GatewayRefusedError } from '../errors.js'
import type { CallOptions, Gateway, GatewayAbilities, MapRequest, MapResult, PortMapping } from '../gateway.js'
import { createLogger, type Logger } from '../log.js'
import { isNotAuthorized } from '../nat/retry.js'
import { isRefused, PinholeErrorCode, UpnpErrorCode } from './codes.js'
import { canonicalIpv6 } from './pinhole-actions.js'
import { hostOf } from './guard.js'
import type { Pinhole, PinholeClient } from './pinhole.js'

/**
 * The Gateway contract over a router's WANIPv6FirewallControl:1 service, for one host address:
 * map = AddPinhole, renew = UpdatePinhole (AddPinhole again after 704, or miniupnpd's 402), unmap = DeletePinhole.
 * A pinhole has no NAT: its "external" address and port are the host's own (`localAddress`).
 * 702/703 come as FirewallDisabledError/InboundPinholeNotAllowedError (pinhole-actions.ts decodes them).
 */

/** AddPinhole takes 1..86400 s; 0 (permanent, for UPnP port mappings) has no meaning here. */
const MAX_LEASE_SECONDS = 86_400

export interface PinholeGatewayOptions {
  client: PinholeClient
  /** The host's global IPv6 address to open (chooseIpv6Addresses); requests are sent from it. */
  localAddress: string
  logger?: Logger | undefined
}

export class PinholeGateway implements Gateway {
  readonly method = 'upnp-pinhole' as const
  readonly address: string
  readonly localAddress: string
  readonly #client: PinholeClient
  readonly #logger: Logger

  constructor (options: PinholeGatewayOptions) {
    this.#client = options.client
    this.localAddress = canonicalIpv6(options.localAddress)
    this.address = hostOf(new URL(options.client.controlURL))
    this.#logger = options.logger ?? createLogger('upnp-pinhole')
  }

  /** No NAT on IPv6: the address reachable from outside is the host's own. */
  async externalAddress (): Promise<string> { return this.localAddress }

  async map (request: MapRequest, options: CallOptions = {}): Promise<MapResult> {
    const lease = Math.min(Math.max(request.lifetimeSeconds, 1), MAX_LEASE_SECONDS)
    const pinhole = await this.#client.open({ internalClient: this.localAddress, internalPort: request.internalPort, protocol: request.protocol, leaseTimeSeconds: lease }, options)
    return { mapping: toMapping(pinhole) }
  }

  async renew (mapping: PortMapping, options: CallOptions = {}): Promise<PortMapping> {
    const pinhole = pinholeOf(mapping)
    const renewed = await this.#client.update(pinhole, options).catch(async (err: unknown) => {
      // miniupnpd 2.3.1 answers 402 InvalidArgs, not 704, for a UniqueID it lost in a restart (lab).
      if (!isRefused(err, PinholeErrorCode.NoSuchEntry, UpnpErrorCode.InvalidArgs)) throw err
      this.#logger('UpdatePinhole %d: %d, the router lost it: adding it again', pinhole.uniqueId, (err as GatewayRefusedError).resultCode)
      return await this.#client.open(pinhole, options)
    })
    return toMapping(renewed)
  }

  async unmap (mapping: PortMapping, options: CallOptions = {}): Promise<void> {
    await this.#client.delete(pinholeOf(mapping), options)
  }

  onReset (): () => void { return () => {} }

  /** The same service, pinholes for another of the host's addresses (AddPinhole is sent from the address it opens). */
  forAddress (localAddress: string): PinholeGateway {
    return new PinholeGateway({ client: this.#client, localAddress, logger: this.#logger })
  }

  describe (): GatewayAbilities {
    return { detail: `UPnP WANIPv6FirewallControl:1 at ${this.#client.controlURL}, pinholes for ${this.localAddress}` }
  }

  close (): void {}
}

/**
 * Wraps the PCP gateway of an IPv6 host so that a pinhole miniupnpd 2.3.1 will not delete after
 * a renewal (PCP delete NOT_AUTHORIZED: its nft backend relabels the rule on update; fixed upstream
 * 358f430) is deleted over UPnP: AddPinhole of the same tuple returns the existing UniqueID, then
 * DeletePinhole. Only for a router whose WANIPv6FirewallControl service is known (`client`).
 */
export function withPinholeDelete (pcp: Gateway, client: PinholeClient, localAddress: string, logger: Logger = createLogger('upnp-pinhole')): Gateway {
  const internalClient = canonicalIpv6(localAddress)
  const unmap = async (mapping: PortMapping, options?: CallOptions): Promise<void> => {
    try {
      await pcp.unmap(mapping, options)
    } catch (err) {
      if (!(err instanceof Error) || !isNotAuthorized(err) || mapping.method !== 'pcp') throw err
      logger('PCP delete of %s %d refused (%s): deleting the pinhole over UPnP', mapping.protocol, mapping.internalPort, err.message)
      // The shortest lease: should the delete then fail, the pinhole ends soon rather than in its PCP lifetime.
      const pinhole = await client.open({ internalClient, internalPort: mapping.internalPort, protocol: mapping.protocol, leaseTimeSeconds: 1 }, options)
      await client.delete(pinhole, options)
    }
  }
  // A Proxy, not Object.create: PcpClient's methods read private fields, which only `pcp` has.
  return new Proxy(pcp, {
    get (target, key) {
      if (key === 'unmap') return unmap
      if (key === 'forAddress' && target.forAddress !== undefined) return (address: string) => withPinholeDelete(target.forAddress!(address), client, address, logger)
      const value: unknown = Reflect.get(target, key, target)
      return typeof value === 'function' ? value.bind(target) : value
    }
  })
}

function toMapping (pinhole: Pinhole): PortMapping {
  return {
    method: 'upnp-pinhole',
    protocol: pinhole.protocol,
    internalPort: pinhole.internalPort,
    externalPort: pinhole.internalPort,
    externalAddress: pinhole.internalClient,
    lifetimeSeconds: pinhole.leaseTimeSeconds,
    grantedAtMs: pinhole.grantedAtMs,
    expiresAtMs: pinhole.expiresAtMs,
    session: pinhole
  }
}

function pinholeOf (mapping: PortMapping): Pinhole {
  const pinhole = mapping.session as Pinhole | undefined
  if (mapping.method !== 'upnp-pinhole' || typeof pinhole?.uniqueId !== 'number') throw new RemoteProtocolError(`not a UPnP pinhole: ${mapping.method} ${mapping.protocol} ${mapping.internalPort}`)
  return pinhole
}
