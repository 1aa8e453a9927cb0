import type { TestContext } from 'node:test'
import { createSocket, type Socket as UdpSocket } from 'node:dgram'
import { createServer, type Server, type Socket } from 'node:net'
import type { NetworkInterfaceInfo } from 'node:os'
import { parseSsdpMessage } from '../../src/upnp/ssdp-codec.js'

/**
 * A hostile LAN on loopback, for test/hostile/: an SSDP responder that answers M-SEARCHes with
 * whatever the test wants, raw TCP servers that misbehave on purpose (and count every
 * connection), and trap servers that must never be connected to. Nothing leaves loopback.
 *
 * The "LAN" is 127.0.0.0/24 (LAN_INTERFACES); 127.0.9.9 is outside it. Linux routes all of
 * 127.0.0.0/8 to the loopback interface, so those addresses can be bound; elsewhere the tests that
 * need them are skipped (EXTRA_LOOPBACK).
 */

export const GATEWAY = '127.0.0.1'
/** A host outside the LAN: SSRF through LOCATION would reach it. */
export const OUTSIDE = '127.0.9.9'
/** A host on the LAN that is neither the gateway nor the SSDP responder. */
export const NEIGHBOUR = '127.0.0.77'

export const LAN_INTERFACES: NodeJS.Dict<NetworkInterfaceInfo[]> = {
  lo: [{ address: GATEWAY, netmask: '255.255.255.0', family: 'IPv4', mac: '00:00:00:00:00:00', internal: true, cidr: `${GATEWAY}/24` }]
}

/** Whether more of 127.0.0.0/8 than 127.0.0.1 can be bound here (Linux: yes; macOS: no). */
export const EXTRA_LOOPBACK = process.platform === 'linux'

export const IGD1 = 'urn:schemas-upnp-org:device:InternetGatewayDevice:1'

let usnCounter = 0

/** A search response with this LOCATION, byte for byte, whatever it holds (the codec's encoder refuses bad ones). */
export function rawAnswer (location: string, st = IGD1): Buffer {
  const usn = `uuid:hostile-${++usnCounter}::${st}`
  return Buffer.from(`HTTP/1.1 200 OK\r\nCACHE-CONTROL: max-age=1800\r\nEXT:\r\nLOCATION: ${location}\r\nSERVER: Hostile/1.0 UPnP/1.1 hostile/1.0\r\nST: ${st}\r\nUSN: ${usn}\r\n\r\n`, 'latin1')
}

export interface Responder {
  readonly address: string
  readonly port: number
  /** M-SEARCHes received. */
  searches: number
  /** What to send back to each M-SEARCH (datagrams, sent in order). */
  answer: (search: { from: { address: string, port: number } }) => Buffer[]
  /** Sends from this socket to anyone (a flood not asked for). */
  send: (datagram: Buffer, port: number, address: string) => void
}

/** A UDP SSDP responder at `address`; answers nothing until `answer` is set. */
export async function startResponder (ctx: TestContext, address = GATEWAY): Promise<Responder> {
  const socket = createSocket('udp4')
  await bindUdp(socket, address)
  ctx.after(() => { socket.close() })
  const responder: Responder = {
    address,
    port: socket.address().port,
    searches: 0,
    answer: () => [],
    send: (datagram, port, to) => { socket.send(datagram, port, to) }
  }
  socket.on('message', (message, rinfo) => {
    try {
      if (parseSsdpMessage(new Uint8Array(message)).kind !== 'm-search') return
    } catch {
      return
    }
    responder.searches++
    for (const datagram of responder.answer({ from: { address: rinfo.address, port: rinfo.port } })) socket.send(datagram, rinfo.port, rinfo.address)
  })
  return responder
}

export interface TcpServer {
  readonly address: string
  readonly port: number
  /** Connections accepted so far. */
  readonly connections: number
  /** Connections still open. */
  readonly open: number
  /** Bytes of request received, in all. */
  readonly received: number
}

/**
 * A raw TCP server that counts connections and hands each to `behave` (which writes whatever
 * bytes it likes, at whatever pace). Without `behave` it only counts (a trap).
 */
export async function startTcp (ctx: TestContext, address: string, behave?: (socket: Socket) => void): Promise<TcpServer> {
  const sockets = new Set<Socket>()
  const state = { connections: 0, received: 0 }
  const server: Server = createServer((socket) => {
    state.connections++
    sockets.add(socket)
    socket.on('data', (chunk) => { state.received += chunk.length })
    socket.on('error', () => {})
    socket.on('close', () => { sockets.delete(socket) })
    behave?.(socket)
  })
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, address, () => { resolve() })
  })
  ctx.after(async () => {
    for (const socket of sockets) socket.destroy()
    await new Promise<void>((resolve) => { server.close(() => { resolve() }) })
  })
  const port = (server.address() as { port: number }).port
  return {
    address,
    port,
    get connections () { return state.connections },
    get open () { return sockets.size },
    get received () { return state.received }
  }
}

/** Waits for the end of a request's headers, then calls `reply`. */
export function afterRequest (socket: Socket, reply: () => void): void {
  let text = ''
  const onData = (chunk: Buffer): void => {
    text += chunk.toString('latin1')
    if (text.includes('\r\n\r\n')) {
      socket.off('data', onData)
      reply()
    }
  }
  socket.on('data', onData)
}

/** Writes `bytes` one byte every `everyMs` until the socket closes. */
export function drip (socket: Socket, bytes: string, everyMs: number): void {
  let i = 0
  const timer = setInterval(() => {
    if (socket.destroyed || i >= bytes.length) {
      clearInterval(timer)
      return
    }
    socket.write(bytes[i++]!)
  }, everyMs)
  socket.on('close', () => { clearInterval(timer) })
}

/** Writes chunks of `chunk` for as long as the peer reads them. */
export function endless (socket: Socket, head: string, chunk: string): void {
  socket.write(head)
  const block = Buffer.from(chunk.repeat(Math.ceil(16384 / chunk.length)))
  const pump = (): void => {
    while (!socket.destroyed && socket.write(block)) {}
    if (!socket.destroyed) socket.once('drain', pump)
  }
  pump()
}

/** "Billion laughs": ten levels of ten, a 10^9-fold expansion if anything expanded it. */
export function entityBomb (): string {
  const levels = ['<!ENTITY lol "lol">']
  for (let i = 1; i <= 9; i++) levels.push(`<!ENTITY lol${i} "${`&lol${i === 1 ? '' : i - 1};`.repeat(10)}">`)
  return `<?xml version="1.0"?>\n<!DOCTYPE root [${levels.join('')}]>\n<root xmlns="urn:schemas-upnp-org:device-1-0"><device><deviceType>${IGD1}</deviceType><friendlyName>&lol9;</friendlyName></device></root>\n`
}

export function httpResponse (body: string, headers: Record<string, string> = {}): string {
  const lines = Object.entries({ 'Content-Type': 'text/xml', 'Content-Length': String(Buffer.byteLength(body)), Connection: 'close', ...headers })
  return `HTTP/1.1 200 OK\r\n${lines.map(([k, v]) => `${k}: ${v}`).join('\r\n')}\r\n\r\n${body}`
}

/** Resolves with how the promise ended and how long it took. */
export async function settle<T> (promise: Promise<T>): Promise<{ value?: T, error?: unknown, ms: number }> {
  const start = performance.now()
  try {
    const value = await promise
    return { value, ms: performance.now() - start }
  } catch (error) {
    return { error, ms: performance.now() - start }
  }
}

async function bindUdp (socket: UdpSocket, address: string): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    socket.once('error', reject)
    socket.bind(0, address, () => {
      socket.off('error', reject)
      resolve()
    })
  })
}
