import type { Gateway as PeerGateway } from '@achingbrain/nat-port-mapper'

/**
 * The peer's gateway as its README has one get it: UPnP by its own SSDP search (the first IGD
 * found), NAT-PMP by the address it is given (it cannot find the gateway itself).
 */
export async function openPeerGateway (kind: 'upnp' | 'pmp', gatewayAddress: string | undefined, timeoutMs: number): Promise<PeerGateway> {
  const { upnpNat, pmpNat } = await import('@achingbrain/nat-port-mapper')
  if (kind === 'pmp') return pmpNat(gatewayAddress!)
  for await (const found of upnpNat().findGateways({ signal: AbortSignal.timeout(timeoutMs) })) return found
  throw new Error('no IGDv2 gateway found')
}
