import type { TestContext } from 'node:test'
import type { NetworkInterfaceInfo } from 'node:os'
import { SimulatedIgd, type SimulatedIgdOptions } from '../../src/testing/igd.js'
import type { UpnpDiscoverOptions } from '../../src/upnp/discovery.js'

/**
 * Shared set-up of the UPnP tests. Every search goes to loopback: the simulated IGD's unicast
 * socket stands for gateway:1900 and its second socket for the multicast group, so nothing is
 * ever multicast from the test machine.
 */

/** The loopback interface as os.networkInterfaces() shows it: 127.0.0.0/8 is the "LAN". */
export const LOOPBACK_INTERFACES: NodeJS.Dict<NetworkInterfaceInfo[]> = {
  lo: [{ address: '127.0.0.1', netmask: '255.0.0.0', family: 'IPv4', mac: '00:00:00:00:00:00', internal: true, cidr: '127.0.0.1/8' }]
}

export async function startIgd (ctx: TestContext, options: SimulatedIgdOptions = {}): Promise<SimulatedIgd> {
  const igd = await SimulatedIgd.start(options)
  ctx.after(async () => { await igd.close() })
  return igd
}

/** Discovery options that reach `igd` over loopback only. */
export function discoverOptions (igd: SimulatedIgd, extra: UpnpDiscoverOptions = {}): UpnpDiscoverOptions {
  return {
    gateway: igd.address,
    ssdpGatewayPort: igd.ssdpUnicastTarget.port,
    ssdpTarget: igd.ssdpMulticastTarget,
    timeoutMs: 2000,
    settleMs: 5,
    interfaces: LOOPBACK_INTERFACES,
    ...extra
  }
}
