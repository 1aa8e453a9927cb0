import type { DiscoverNatOptions } from './discover.js'
import type { Gateway } from './gateway.js'
import { createLogger } from './log.js'
import type { AnnouncementSource } from './nat.js'
import { AnnouncementListener, type Announcement } from './net/announcements.js'
import { localAddressToward } from './net/udp.js'
import type { UpnpClient } from './upnp/client.js'

/**
 * The announcement source discoverNAT gives the NAT for a gateway: what it multicasts when it
 * restarts. Returned at once and bound in the background, from the next turn of the event loop:
 * binding the listener (and finding the interface to join its group on) takes a few ms that the
 * first mapping need not wait for, since the router announces nothing while it is up. Started
 * at once, its first socket call ran before discoverNAT returned; from the next turn, it runs
 * while the first mapping request is on its way.
 */
export function announcementsFrom (gateway: Gateway, options: DiscoverNatOptions): AnnouncementSource {
  const nextTurn = new Promise<void>((resolve) => { setImmediate(resolve) })
  return whenReady(nextTurn.then(async () => await listen(gateway, options)).catch((err: unknown) => {
    (options.logger ?? createLogger('discover'))('cannot listen for announcements (%s); recovery will rely on renewals', (err as Error).message)
    return undefined
  }))
}

/** An announcement source that is still starting: handlers are passed on once it has. */
function whenReady (starting: Promise<AnnouncementSource | undefined>): AnnouncementSource {
  const handlers: Array<(announcement: Announcement) => void> = []
  let source: AnnouncementSource | undefined
  let closed = false
  void starting.then((started) => {
    if (started === undefined) return
    if (closed) {
      started.close()
      return
    }
    source = started
    for (const handler of handlers) started.on('announcement', handler)
  })
  return {
    on: (_event, handler) => {
      if (source === undefined) handlers.push(handler)
      else source.on('announcement', handler)
    },
    close: () => {
      closed = true
      source?.close()
    }
  }
}

/**
 * What the gateway multicasts when it restarts: PCP ANNOUNCE and NAT-PMP address packets on
 * 224.0.0.1:5350, SSDP NOTIFY on 239.255.255.250:1900 for UPnP. Either listener degrades to
 * renewal-driven recovery, with a log line, when its port or group cannot be had.
 */
async function listen (gateway: Gateway, options: DiscoverNatOptions): Promise<AnnouncementSource | undefined> {
  const logger = options.logger ?? createLogger('discover')
  const where = options.ssdpListen
  if (gateway.method !== 'upnp' ? options.announcements === false : where === false) return undefined
  // A gateway on loopback is a simulated one: joining the real SSDP group would reach nothing.
  if (gateway.method === 'upnp' && where === undefined && isLoopbackAddress(gateway.address)) return undefined
  // Join groups on the interface that reaches the gateway (multi-homed hosts).
  const interfaceAddress = await (gateway.localAddress?.() ?? localAddressToward(gateway.address))
  if (gateway.method !== 'upnp') {
    return await AnnouncementListener.start({
      gateway: gateway.address,
      interfaceAddress,
      ...options.announcements,
      ...(options.logger === undefined ? {} : { logger: options.logger }),
      ...(options.createSocket === undefined ? {} : { createSocket: options.createSocket })
    })
  }
  try {
    const { SsdpListener } = await import('./upnp/ssdp-listener.js')
    const listener = await SsdpListener.start({
      ...where,
      interfaceAddress,
      acceptFrom: (address) => address === gateway.address,
      ...(options.logger === undefined ? {} : { logger: options.logger }),
      ...(options.createSocket === undefined ? {} : { createSocket: options.createSocket })
    })
    listener.on('warning', (err) => { logger('SSDP listener: %s', err.message) })
    // The router as discovery last saw it. A byebye, or an alive with another BOOTID or
    // LOCATION, means it restarted (miniupnpd sends both; LAB.md): the mappings are gone.
    const selection = (gateway as Partial<Pick<UpnpClient, 'selection'>>).selection
    let known = { bootId: selection?.bootId, location: selection?.location, down: false }
    return {
      on: (_event, handler) => {
        listener.on('byebye', () => { known = { ...known, down: true } })
        listener.on('alive', ({ notify }) => {
          const bootId = notify.bootId ?? known.bootId
          const location = notify.location ?? known.location
          if (!known.down && bootId === known.bootId && location === known.location) return
          known = { bootId, location, down: false }
          handler({ kind: 'ssdp', bootId, location })
        })
      },
      close: () => { listener.close() }
    }
  } catch (err) {
    logger('cannot listen for SSDP announcements (%s); recovery will rely on renewals', (err as Error).message)
    return undefined
  }
}

function isLoopbackAddress (address: string): boolean {
  return address.startsWith('127.') || address === '::1'
}
