import { createSocket, type RemoteInfo, type Socket } from 'node:dgram'
import type { Clock } from '../clock.js'
import { parseSsdpMessage } from '../upnp/ssdp-codec.js'
import { encodeNotify, encodeSsdpResponse } from '../upnp/ssdp-encode.js'
import { bind, type SsdpTarget } from '../upnp/ssdp.js'
import { SERVER, type IgdTypes } from './igd-description.js'
import type { IgdQuirks, IgdRequest } from './igd-types.js'

/**
 * SimulatedIgd's SSDP side: M-SEARCH answered on its unicast and multicast sockets (what they
 * stand for: igd.ts), NOTIFY sent from the first, and a third socket for the answers of
 * `quirks.replyFromEphemeralPort`.
 */

/** What the responder reads from its IGD, as it is at each message. */
export interface IgdSsdpHost {
  readonly quirks: IgdQuirks
  readonly types: IgdTypes
  readonly uuid: string
  readonly clock: Clock
  /** SSDP answer delay on the IGD's clock. */
  readonly delayMs: number
  readonly requests: IgdRequest[]
  location: () => string
  bootId: () => number
  notifyTargets: () => readonly SsdpTarget[]
}

/** The unicast, multicast and ephemeral-port sockets, bound (see bindSsdpSockets). */
export type SsdpSockets = [Socket, Socket, Socket]

/** The unicast socket on `unicastPort` (0: any free port), the other two on free ports. */
export async function bindSsdpSockets (address: string, unicastPort = 0): Promise<SsdpSockets> {
  const family = address.includes(':') ? 'udp6' : 'udp4'
  const sockets = [createSocket(family), createSocket(family), createSocket(family)] as SsdpSockets
  try {
    await Promise.all(sockets.map(async (s, i) => { await bind(s, address, i === 0 ? unicastPort : 0) }))
  } catch (err) {
    for (const s of sockets) try { s.close() } catch {}
    throw err
  }
  return sockets
}

export class IgdSsdp {
  readonly #host: IgdSsdpHost
  readonly #unicast: Socket
  readonly #multicast: Socket
  readonly #ephemeral: Socket
  #closed = false

  /** Answers searches from now on. */
  constructor (sockets: SsdpSockets, host: IgdSsdpHost) {
    ;[this.#unicast, this.#multicast, this.#ephemeral] = sockets
    this.#host = host
    this.#unicast.on('message', (message, rinfo) => { this.#onSearch(message, rinfo, 'unicast') })
    this.#multicast.on('message', (message, rinfo) => { this.#onSearch(message, rinfo, 'multicast') })
  }

  get unicastTarget (): SsdpTarget { return udpAddress(this.#unicast) }
  get multicastTarget (): SsdpTarget { return udpAddress(this.#multicast) }

  /** NOTIFY for the root device, the IGD and its WAN service, to the host's `notifyTargets`. */
  notify (nts: 'ssdp:alive' | 'ssdp:byebye'): void {
    const host = this.#host
    if (this.#closed) return
    for (const nt of ['upnp:rootdevice', host.types.device, host.types.service]) {
      const usn = `uuid:${host.uuid}::${nt}`
      const packet = nts === 'ssdp:alive'
        ? encodeNotify({ nts, nt, usn, location: host.location(), server: SERVER, bootId: host.bootId(), configId: 1 })
        : encodeNotify({ nts, nt, usn, bootId: host.bootId(), configId: 1 })
      for (const target of host.notifyTargets()) this.#unicast.send(packet, target.port, target.address)
    }
  }

  async close (): Promise<void> {
    this.#closed = true
    await Promise.all([this.#unicast, this.#multicast, this.#ephemeral].map(async (s) => { await new Promise<void>((resolve) => { s.close(() => { resolve() }) }) }))
  }

  #onSearch (message: Buffer, rinfo: RemoteInfo, via: 'unicast' | 'multicast'): void {
    const host = this.#host
    let parsed
    try {
      parsed = parseSsdpMessage(new Uint8Array(message.buffer, message.byteOffset, message.byteLength))
    } catch {
      return
    }
    if (parsed.kind !== 'm-search') return
    host.requests.push({ kind: 'ssdp', via, what: parsed.st, from: rinfo.address, atMs: host.clock.now() })
    if (host.quirks.silentSsdp || (via === 'unicast' && host.quirks.ignoreUnicastSsdp)) return
    if (!host.types.matches(parsed.st)) return
    const reply = encodeSsdpResponse({
      location: host.location(),
      st: parsed.st,
      usn: parsed.st.startsWith('uuid:') ? parsed.st : `uuid:${host.uuid}::${parsed.st}`,
      server: SERVER,
      bootId: host.bootId(),
      configId: 1
    })
    const socket = host.quirks.replyFromEphemeralPort ? this.#ephemeral : via === 'unicast' ? this.#unicast : this.#multicast
    const send = (): void => { if (!this.#closed) socket.send(reply, rinfo.port, rinfo.address) }
    if (host.delayMs > 0) host.clock.setTimeout(send, host.delayMs)
    else send()
  }
}

function udpAddress (socket: Socket): SsdpTarget {
  const { address, port } = socket.address()
  return { address, port }
}
