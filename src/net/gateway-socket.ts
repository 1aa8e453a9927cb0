import type { RemoteInfo, Socket } from 'node:dgram'
import { systemClock, type Clock } from '../clock.js'
import { AbortError, ClosedError, TimeoutError } from '../errors.js'
import { silentLogger, type Logger } from '../log.js'
import { defaultCreateSocket, exchange, openConnectedSocket, type CreateSocket } from './udp.js'

export interface GatewaySocketOptions {
  gateway: string
  port: number
  /** The local address to send from (the chosen interface's, or for PCP over IPv6 the address a MAP opens); default: the route's choice. */
  localAddress?: string | undefined
  clock?: Clock
  createSocket?: CreateSocket
  logger?: Logger
  /**
   * First retransmission wait. RFC 6886 §3.1 says 250 ms. RFC 6887 §8.1.1 starts PCP at 3 s and
   * never gives up; a gateway is one LAN hop away and answers in a few milliseconds, so PCP uses
   * NAT-PMP's schedule too (as tailscale and libplum do), bounded by the caller's timeout. This
   * is the floor: a gateway that answers slowly gets a longer first wait (see `#firstWaitMs`).
   */
  initialTimeoutMs?: number
  /** Attempts per request before giving up. */
  maxAttempts?: number
  /** Default upper bound for one request when the caller gives none. */
  timeoutMs?: number
  /**
   * Reads the key of a reply (the PCP nonce), or undefined when it has none; must not throw.
   * With it, a reply goes only to the requests waiting under its key, instead of being decoded
   * by every request in flight (see `#dispatch`).
   */
  replyKey?: (message: Uint8Array) => string | undefined
  /** Requests sent and not yet answered, at most; more wait their turn (see `#acquire`). Default 8. */
  maxInFlight?: number
}

export interface RequestOptions {
  signal?: AbortSignal | undefined
  timeoutMs?: number | undefined
  maxAttempts?: number | undefined
  /** The key this request's reply will carry (see GatewaySocketOptions.replyKey). */
  key?: string | undefined
  /** Called when the request first leaves: from then on the server may act on it, answered or not. */
  onSent?: (() => void) | undefined
  /** Told what happens to the request, for counters: sent, each retransmission, answered, timed out. */
  observe?: ((event: 'sent' | 'retransmitted' | 'answered' | 'timeout') => void) | undefined
}

type Listener = (message: Buffer, rinfo: RemoteInfo) => void

const FIRST_WAIT_CAP_MS = 3000

/**
 * One connected UDP socket to a server, opened on first use and shared by every request to it:
 * retransmission, a bound on requests in flight, answer-time estimates, replies routed by key.
 * Transport only: what the datagrams mean is the caller's.
 */
export class GatewaySocket {
  readonly gateway: string
  readonly port: number
  readonly clock: Clock
  readonly logger: Logger
  readonly #createSocket: CreateSocket
  readonly #localAddress: string | undefined
  readonly #initialTimeoutMs: number
  readonly #maxAttempts: number
  readonly #timeoutMs: number
  #socket: Promise<Socket> | undefined
  #closed = false
  #inFlight = 0
  #requests = 0
  readonly #replyKey: ((message: Uint8Array) => string | undefined) | undefined
  /** Requests waiting for a reply with a known key, by key. */
  readonly #keyed = new Map<string, Set<Listener>>()
  /** Requests whose reply has no key: they see every datagram. */
  readonly #unkeyed = new Set<Listener>()
  readonly #maxInFlight: number
  #sending = 0
  /** Smoothed answer time and its variation (RFC 6298 §2), undefined before the first answer. */
  #srttMs: number | undefined
  #rttVarMs = 0
  readonly #waiting: Array<{ go: () => void }> = []

  constructor (options: GatewaySocketOptions) {
    this.gateway = options.gateway
    this.port = options.port
    this.clock = options.clock ?? systemClock
    this.logger = options.logger ?? silentLogger
    this.#createSocket = options.createSocket ?? defaultCreateSocket
    this.#localAddress = options.localAddress
    this.#initialTimeoutMs = options.initialTimeoutMs ?? 250
    this.#maxAttempts = options.maxAttempts ?? 9
    this.#timeoutMs = options.timeoutMs ?? 10_000
    this.#replyKey = options.replyKey
    this.#maxInFlight = Math.max(1, options.maxInFlight ?? 8)
  }

  async #open (): Promise<Socket> {
    if (this.#closed) throw new ClosedError(`socket to ${this.gateway}:${this.port}`)
    this.#socket ??= openConnectedSocket(this.#createSocket, this.gateway, this.port, this.#localAddress).then((socket) => {
      socket.on('message', (message, rinfo) => { this.#dispatch(message, rinfo) })
      return socket
    })
    try {
      return await this.#socket
    } catch (err) {
      this.#socket = undefined
      throw err
    }
  }

  /** The local address the kernel picked to reach the gateway: our address on that link. */
  async localAddress (): Promise<string> {
    return (await this.#open()).address().address
  }

  async request<T> (what: string, payload: Uint8Array, accept: (message: Uint8Array, from: RemoteInfo) => T | undefined, options: RequestOptions = {}): Promise<T> {
    // A number per request, so that interleaved log lines can be told apart in a bug report.
    const label = `${what} #${++this.#requests}`
    const socket = await this.#open()
    // The socket holds the process open only while a request waits for its answer: an idle
    // client must not keep a finished program from exiting.
    if (this.#inFlight++ === 0) socket.ref()
    const calledMs = this.clock.now()
    const timeoutMs = options.timeoutMs ?? this.#timeoutMs
    let startMs = calledMs
    let sending = false
    try {
      await this.#acquire(label, options.signal, timeoutMs)
      sending = true
      startMs = this.clock.now()
      this.logger('%s: sending to %s:%d', label, this.gateway, this.port)
      const value = await exchange({
        socket,
        payload,
        from: { address: this.gateway, port: this.port },
        accept,
        clock: this.clock,
        initialTimeoutMs: this.#firstWaitMs(),
        maxAttempts: options.maxAttempts ?? this.#maxAttempts,
        // The caller's bound covers the wait for a slot too.
        timeoutMs: Math.max(0, timeoutMs - (startMs - calledMs)),
        ...(options.signal === undefined ? {} : { signal: options.signal }),
        label,
        subscribe: (listener) => this.#subscribe(listener, this.#replyKey === undefined ? undefined : options.key),
        onAnswered: () => { this.#sampleAnswerTime(this.clock.now() - startMs) },
        onSent: () => {
          options.observe?.('sent')
          options.onSent?.()
        },
        onRetransmit: (attempt, waitedMs) => {
          options.observe?.('retransmitted')
          this.logger('%s: no answer within %d ms, sending again (attempt %d)', label, Math.round(waitedMs), attempt)
        }
      })
      options.observe?.('answered')
      this.logger('%s: answered in %d ms', label, Math.round(this.clock.now() - startMs))
      return value
    } catch (err) {
      if (err instanceof TimeoutError && sending) options.observe?.('timeout')
      this.logger('%s: failed after %d ms: %s', label, Math.round(this.clock.now() - startMs), (err as Error).message)
      throw err
    } finally {
      if (sending) this.#release()
      if (--this.#inFlight === 0) socket.unref()
    }
  }

  /**
   * Waits for one of `maxInFlight` sending slots. A client that sends 1,000 requests at once
   * overflows the router's receive buffer (about 270 small datagrams in Linux's default 208 KiB):
   * most are dropped and come back as retransmissions 250 ms, 750 ms, 1.75 s later, and a slow
   * router (miniupnpd walks its whole rule set per request) also works through duplicates of
   * requests it is still answering. The wait counts against the request's timeout and ends
   * with its signal.
   */
  async #acquire (label: string, signal: AbortSignal | undefined, timeoutMs: number): Promise<void> {
    if (signal?.aborted === true) throw new AbortError(signal.reason)
    if (this.#sending < this.#maxInFlight) {
      this.#sending++
      return
    }
    await new Promise<void>((resolve, reject) => {
      const leave = (err: Error): void => {
        const i = this.#waiting.indexOf(waiter)
        if (i !== -1) this.#waiting.splice(i, 1)
        this.clock.clearTimeout(timer)
        signal?.removeEventListener('abort', onAbort)
        reject(err)
      }
      const onAbort = (): void => { leave(new AbortError(signal?.reason)) }
      const timer = this.clock.setTimeout(() => {
        leave(new TimeoutError(`${label}: not sent within ${timeoutMs} ms: ${this.#maxInFlight} earlier requests to ${this.gateway}:${this.port} are still waiting for answers`))
      }, timeoutMs)
      const waiter = {
        go: () => {
          this.clock.clearTimeout(timer)
          signal?.removeEventListener('abort', onAbort)
          resolve()
        }
      }
      signal?.addEventListener('abort', onAbort, { once: true })
      this.#waiting.push(waiter)
    })
  }

  /** Hands the slot to the next waiting request, if any. */
  #release (): void {
    const next = this.#waiting.shift()
    if (next === undefined) this.#sending--
    else next.go()
  }

  /**
   * The first retransmission wait: initialTimeoutMs, or longer when this gateway has been
   * answering slowly, as TCP computes its RTO (RFC 6298 §2: SRTT + 4·RTTVAR), capped at PCP's
   * initial 3 s (RFC 6887 §8.1.1). A router that takes 500 ms per request (miniupnpd 2.3.1 walks
   * its whole nftables rule set for each one) otherwise receives every request three or four
   * times, spends its time on duplicates, and deletes give up before it reaches them.
   */
  #firstWaitMs (): number {
    if (this.#srttMs === undefined) return this.#initialTimeoutMs
    return Math.min(Math.max(this.#initialTimeoutMs, this.#srttMs + 4 * this.#rttVarMs), FIRST_WAIT_CAP_MS)
  }

  /**
   * An answer's time since the first transmission. Unlike TCP (Karn's rule) answers to
   * retransmitted requests count too, measured from the first send: that overestimates, which
   * errs towards fewer duplicates, and a gateway that is always slower than the current wait
   * still teaches us its pace.
   */
  #sampleAnswerTime (ms: number): void {
    if (this.#srttMs === undefined) {
      this.#srttMs = ms
      this.#rttVarMs = ms / 2
      return
    }
    this.#rttVarMs = 0.75 * this.#rttVarMs + 0.25 * Math.abs(this.#srttMs - ms)
    this.#srttMs = 0.875 * this.#srttMs + 0.125 * ms
  }

  #subscribe (listener: Listener, key: string | undefined): () => void {
    if (key === undefined) {
      this.#unkeyed.add(listener)
      return () => { this.#unkeyed.delete(listener) }
    }
    let set = this.#keyed.get(key)
    if (set === undefined) this.#keyed.set(key, set = new Set())
    set.add(listener)
    return () => {
      set.delete(listener)
      if (set.size === 0 && this.#keyed.get(key) === set) this.#keyed.delete(key)
    }
  }

  /**
   * One listener on the socket hands each datagram on. With every request listening for itself,
   * n requests in flight decoded every reply n times: 1,000 mappings at once meant a million
   * decodes, replies handled late, and retransmissions of requests already answered. A reply
   * with a key now reaches only the requests waiting under that key; a reply without one (an
   * error before the opcode data, a NAT-PMP answer) reaches every request, as before. Requests
   * without a key see everything.
   */
  #dispatch (message: Buffer, rinfo: RemoteInfo): void {
    const key = this.#replyKey?.(new Uint8Array(message.buffer, message.byteOffset, message.byteLength))
    const keyed = key === undefined ? undefined : this.#keyed.get(key)
    // Copies: a listener that finishes unsubscribes while we iterate.
    const targets = key === undefined
      ? [...this.#unkeyed, ...[...this.#keyed.values()].flatMap((set) => [...set])]
      : [...this.#unkeyed, ...(keyed ?? [])]
    for (const listener of targets) listener(message, rinfo)
  }

  close (): void {
    if (this.#closed) return
    this.#closed = true
    const pending = this.#socket
    this.#socket = undefined
    pending?.then((socket) => { socket.close() }, () => {})
  }
}
