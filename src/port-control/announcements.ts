import { EventEmitter } from 'node:events'
import type { Socket } from 'node:dgram'
import { createLogger, type Logger } from '../log.js'
import { isIpv6Literal } from '../net/address.js'
import { defaultCreateSocket, type CreateSocket } from '../net/udp.js'
import { decodeNatPmpResponse } from '../natpmp/codec.js'
import { decodePcpResponse } from '../pcp/codec.js'
import { PcpOpcode, PcpResultCode } from '../pcp/codes.js'

/**
 * Listens for what a gateway multicasts when it restarts or its external address changes: a
 * PCP ANNOUNCE (RFC 6887 §14.1.3) and a NAT-PMP external-address packet (RFC 6886 §3.2.1), both
 * to 224.0.0.1:5350 (miniupnpd also sends the NAT-PMP one to 5351), and the ANNOUNCE to
 * [ff02::1]:5350 on IPv6. Reacting to them brings
 * mappings back within seconds of a reboot instead of at the next renewal.
 *
 * The port may be taken by another program (another mapper, an OS service). Then start()
 * logs it and resolves to undefined: recovery falls back to epoch checks on renewals.
 */

export type Announcement =
  | { kind: 'pcp', epochSeconds: number }
  | { kind: 'natpmp', epochSeconds: number, externalAddress: string }

export interface AnnouncementListenerOptions {
  /** Only packets from this address are believed (RFC 6886 §3.2.1: "MUST check the source"). */
  gateway: string
  /** Default 5350. */
  port?: number
  /** Default 0.0.0.0; tests bind loopback. */
  bindAddress?: string
  /** Default 224.0.0.1; undefined joins no group (loopback tests). */
  multicastGroup?: string | undefined
  /** The local address on the gateway's link, to join the group on the right interface. */
  interfaceAddress?: string
  createSocket?: CreateSocket
  logger?: Logger
}

export class AnnouncementListener extends EventEmitter<{ announcement: [Announcement] }> {
  readonly #socket: Socket

  private constructor (socket: Socket, gateway: string, logger: Logger) {
    super()
    this.#socket = socket
    socket.on('message', (message, rinfo) => {
      if (rinfo.address !== gateway) return
      const announcement = decodeAnnouncement(new Uint8Array(message.buffer, message.byteOffset, message.byteLength))
      if (announcement === undefined) return
      logger('announcement from %s: %s epoch %d', rinfo.address, announcement.kind, announcement.epochSeconds)
      this.emit('announcement', announcement)
    })
  }

  get port (): number { return this.#socket.address().port }
  get localAddress (): { address: string, port: number } { return this.#socket.address() }

  static async start (options: AnnouncementListenerOptions): Promise<AnnouncementListener | undefined> {
    const logger = options.logger ?? createLogger('announce')
    // An IPv6 gateway announces to [ff02::1]:5350 (RFC 6887 §14.1.3); every IPv6 host is in that
    // group on every link already (RFC 4291 §2.7.1), so there is nothing to join.
    const v6 = isIpv6Literal(options.gateway.split('%')[0]!)
    const socket = (options.createSocket ?? defaultCreateSocket)(v6 ? 'udp6' : 'udp4')
    const port = options.port ?? 5350
    try {
      await new Promise<void>((resolve, reject) => {
        socket.once('error', reject)
        // reuseAddr: RFC 6886 §3.2.1 expects several clients on one host to share the port.
        socket.bind({ port, address: options.bindAddress ?? (v6 ? '::' : '0.0.0.0'), exclusive: false }, () => {
          socket.off('error', reject)
          resolve()
        })
      })
      const group = 'multicastGroup' in options ? options.multicastGroup : v6 ? undefined : '224.0.0.1'
      if (group !== undefined) socket.addMembership(group, options.interfaceAddress)
    } catch (err) {
      logger('cannot listen for gateway announcements on port %d (%s); recovery will rely on renewals', port, (err as Error).message)
      socket.close()
      return undefined
    }
    socket.on('error', (err) => { logger('announcement socket: %s', err.message) })
    socket.unref()
    return new AnnouncementListener(socket, options.gateway, logger)
  }

  close (): void {
    try {
      this.#socket.close()
    } catch {}
  }
}

/** An unsolicited PCP ANNOUNCE or NAT-PMP external-address packet, or undefined for anything else. */
export function decodeAnnouncement (bytes: Uint8Array): Announcement | undefined {
  try {
    if (bytes[0] === 0) {
      const response = decodeNatPmpResponse(bytes)
      return response.opcode === 'external-address'
        ? { kind: 'natpmp', epochSeconds: response.epochSeconds, externalAddress: response.externalAddress }
        : undefined
    }
    const response = decodePcpResponse(bytes)
    return response.opcode === PcpOpcode.ANNOUNCE && response.resultCode === PcpResultCode.SUCCESS
      ? { kind: 'pcp', epochSeconds: response.epochSeconds }
      : undefined
  } catch {
    return undefined
  }
}
