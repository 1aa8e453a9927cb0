import { createSocket as createDgramSocket, type RemoteInfo, type Socket, type SocketOptions, type SocketType } from 'node:dgram'
import type { Clock } from '../clock.js'
import { AbortError, NoResponseError, TimeoutError } from '../errors.js'
import { ipFamily, isIpv6Literal } from './address.js'

export type CreateSocket = (type: SocketType) => Socket

/**
 * Every address natmapper sends to is an IP literal (the gateway, the SSDP group), so the
 * socket's look-up only hands it back: no DNS can ever happen, and node:dns is not loaded.
 */
const literalLookup = (address: string, family: number, callback: (err: Error | null, address: string, family: number) => void): void => {
  if (ipFamily(address) === 0) callback(Object.assign(new Error(`not an IP address: ${address}`), { code: 'ENOTFOUND' }), address, family)
  else callback(null, address, family)
}

export function createUdpSocket (options: SocketOptions): Socket {
  return createDgramSocket({ ...options, lookup: literalLookup as unknown as SocketOptions['lookup'] })
}

export const defaultCreateSocket: CreateSocket = (type) => createUdpSocket({ type })

/**
 * Opens a UDP socket connected to the gateway. Connecting matters twice over: the kernel then
 * drops datagrams from any other source (RFC 6886 §3.2 and RFC 6887 §8.3 ask clients to
 * discard replies not from the server), and an ICMP port unreachable surfaces as ECONNREFUSED,
 * which lets us conclude "no server here" at once (RFC 6886 §3.1) instead of retransmitting
 * for seconds.
 */
export async function openConnectedSocket (createSocket: CreateSocket, address: string, port: number, localAddress?: string): Promise<Socket> {
  const socket = createSocket(isIpv6Literal(address) ? 'udp6' : 'udp4')
  // Bound first when the caller chose the address: the chosen interface (DiscoverOptions.interface),
  // or for PCP over IPv6 the address the MAP opens (RFC 6887 §8.1).
  if (localAddress !== undefined) {
    try {
      await bindSocket(socket, localAddress, 0)
    } catch (err) {
      socket.close()
      throw new NoResponseError(`cannot send from ${localAddress}: ${(err as Error).message}`, { cause: err })
    }
  }
  await connect(socket, port, address)
  // Errors are delivered to whichever exchange is waiting; without a listener an ICMP error
  // between exchanges would crash the process.
  socket.on('error', () => {})
  // Every exchange in flight listens for errors on the shared socket; hundreds at once are normal.
  socket.setMaxListeners(0)
  socket.unref()
  return socket
}

export interface ExchangeOptions<T> {
  socket: Socket
  payload: Uint8Array
  /** The expected source of replies; anything else is ignored. */
  from: { address: string, port: number }
  /** Returns the decoded reply if this datagram answers the request, undefined to keep waiting. */
  accept: (message: Uint8Array, from: RemoteInfo) => T | undefined
  clock: Clock
  /** First wait; each retransmission doubles it (RFC 6886 §3.1 starts at 250 ms). */
  initialTimeoutMs: number
  maxAttempts: number
  /** Upper bound for the whole exchange. */
  timeoutMs?: number
  signal?: AbortSignal
  /** Names the exchange in errors, e.g. "NAT-PMP map tcp 7001". */
  label: string
  /**
   * Where the exchange gets its datagrams. Default: its own 'message' listener on the socket,
   * which sees every datagram. A shared socket with many exchanges in flight passes its
   * dispatcher instead (GatewaySocket), so each datagram reaches only the exchanges it can
   * answer. Returns the function that unsubscribes.
   */
  subscribe?: (onMessage: (message: Buffer, rinfo: RemoteInfo) => void) => () => void
  /** Called when the exchange is answered, with the number of transmissions it took. */
  onAnswered?: (attempts: number) => void
  /** Called once the request has first been handed to the socket. */
  onSent?: (() => void) | undefined
  /** Called before each retransmission, with its number and how long the last one went unanswered. */
  onRetransmit?: ((attempt: number, waitedMs: number) => void) | undefined
}

/**
 * Sends a request and retransmits it with doubling waits until `accept` returns a value, the
 * attempts or the deadline run out, the signal aborts, or the host answers ICMP unreachable.
 * Several exchanges may share one socket: each sees the datagrams it is given (every one, unless
 * `subscribe` routes them) and keeps only its own.
 */
export async function exchange<T> (options: ExchangeOptions<T>): Promise<T> {
  const { socket, payload, from, accept, clock, signal, label } = options
  if (signal?.aborted === true) throw new AbortError(signal.reason)
  return await new Promise<T>((resolve, reject) => {
    const startMs = clock.now()
    const deadlineMs = options.timeoutMs === undefined ? Infinity : startMs + options.timeoutMs
    let attempts = 0
    /** Datagrams from the server that did not answer this request: garbage, stale, forged. */
    let ignored = 0
    let waitMs = options.initialTimeoutMs
    let timer: ReturnType<Clock['setTimeout']> | undefined
    let unsubscribe = (): void => { socket.off('message', onMessage) }

    let finished = false
    const finish = (err: Error | undefined, value?: T): void => {
      finished = true
      if (timer !== undefined) clock.clearTimeout(timer)
      unsubscribe()
      socket.off('error', onError)
      signal?.removeEventListener('abort', onAbort)
      if (err !== undefined) reject(err)
      else resolve(value as T)
    }
    const onMessage = (message: Buffer, rinfo: RemoteInfo): void => {
      if (rinfo.address !== from.address || rinfo.port !== from.port) return
      const value = accept(new Uint8Array(message.buffer, message.byteOffset, message.byteLength), rinfo)
      if (value !== undefined) {
        options.onAnswered?.(attempts)
        finish(undefined, value)
      } else {
        ignored++
      }
    }
    const onError = (err: NodeJS.ErrnoException): void => {
      if (err.code === 'ECONNREFUSED') {
        finish(new NoResponseError(`${label}: ${from.address}:${from.port} refused (ICMP port unreachable): no server there`, { cause: err }))
      }
    }
    const onAbort = (): void => { finish(new AbortError(signal?.reason)) }
    const send = (): void => {
      attempts++
      try {
        socket.send(payload, (err) => {
          // An ICMP error for an earlier datagram on this connected socket surfaces on the next send.
          if (err !== null && err !== undefined) (err as NodeJS.ErrnoException).code === 'ECONNREFUSED' ? onError(err) : finish(err)
        })
      } catch (err) {
        // The socket was closed meanwhile (its client closed while this request was waiting).
        finish(err as Error)
        return
      }
      const remainingMs = deadlineMs - clock.now()
      const lastAttempt = attempts >= options.maxAttempts
      const delayMs = Math.min(waitMs, remainingMs)
      waitMs *= 2
      timer = clock.setTimeout(() => {
        if (lastAttempt || clock.now() >= deadlineMs) {
          // Saying what did arrive tells a silent gateway from one that sends nonsense.
          const noise = ignored === 0 ? '' : ` (${ignored} datagram${ignored === 1 ? '' : 's'} that did not answer it ignored)`
          finish(new TimeoutError(`${label}: no answer from ${from.address}:${from.port} after ${attempts} attempt${attempts === 1 ? '' : 's'} in ${Math.round(clock.now() - startMs)} ms${noise}`))
        } else {
          options.onRetransmit?.(attempts + 1, delayMs)
          send()
        }
      }, delayMs)
    }

    if (options.subscribe === undefined) socket.on('message', onMessage)
    else unsubscribe = options.subscribe(onMessage)
    socket.on('error', onError)
    send()
    if (finished) return
    signal?.addEventListener('abort', onAbort, { once: true })
    options.onSent?.()
  })
}

/**
 * The local address the kernel would use to reach `address`: connecting a UDP socket picks the
 * route and source address without sending anything.
 */
export async function localAddressToward (address: string): Promise<string> {
  const socket = createUdpSocket({ type: isIpv6Literal(address) ? 'udp6' : 'udp4' })
  try {
    await connect(socket, 9, address)
    return socket.address().address
  } finally {
    socket.close()
  }
}

/** socket.bind as a promise: an 'error' event (EADDRNOTAVAIL, EADDRINUSE) rejects it. */
export async function bindSocket (socket: Socket, address: string | undefined, port: number): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    socket.once('error', reject)
    socket.bind(port, address, () => {
      socket.off('error', reject)
      resolve()
    })
  })
}

/** socket.connect as a promise: an 'error' event or a failed look-up rejects it. */
async function connect (socket: Socket, port: number, address: string): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const onError = (err: Error): void => { reject(err) }
    socket.once('error', onError)
    // A failed look-up reaches the callback as its argument (the typings say it takes none).
    const onConnect = (err?: Error): void => {
      socket.off('error', onError)
      if (err === undefined || err === null) resolve()
      else reject(err)
    }
    socket.connect(port, address, onConnect as () => void)
  })
}
