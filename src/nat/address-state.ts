import type { Logger } from '../log.js'
import { classifyAddress, notPublicReason, notPublicReasonOf, type AddressClass } from '../net/address-class.js'
import type { NatEvents } from './types.js'

type AddressEmit = <E extends 'external-address' | 'not-public'>(event: E, ...args: NatEvents[E]) => void

/**
 * What the NAT knows of the gateway's external address: the address, and why a mapping there is
 * not reachable from the internet (double NAT, CGNAT, no WAN address), each said once as an event.
 */
export class AddressState {
  #address: string | undefined
  #notPublicReason: string | undefined
  readonly #logger: Logger
  readonly #emit: AddressEmit

  constructor (logger: Logger, emit: AddressEmit, known: { address?: string | undefined, notPublicReason?: string | undefined }) {
    this.#logger = logger
    this.#emit = emit
    this.#notPublicReason = known.notPublicReason
    if (known.address !== undefined) this.#set(known.address)
  }

  get address (): string | undefined { return this.#address }
  get notPublicReason (): string | undefined { return this.#notPublicReason }
  get addressClass (): AddressClass | undefined { return this.#address === undefined ? undefined : classifyAddress(this.#address) }
  /** Nothing is known yet either way: the gateway should be asked. */
  get unknown (): boolean { return this.#address === undefined && this.#notPublicReason === undefined }

  /** The gateway told us its address (a mapping reply, an answer, an announcement). */
  learn (address: string): void {
    if (address === this.#address) return
    const previous = this.#address
    const wasNotPublic = this.#notPublicReason
    this.#set(address)
    this.#emit('external-address', { address, previous, addressClass: classifyAddress(address) })
    if (this.#notPublicReason !== undefined && this.#notPublicReason !== wasNotPublic) this.#emit('not-public', { reason: this.#notPublicReason })
  }

  /** An error that shows there is no public address (NETWORK_FAILURE, an empty UPnP answer): said once. */
  noteFailure (error: unknown): void {
    if (this.#address !== undefined) return
    const reason = notPublicReasonOf(error)
    if (reason === undefined || this.#notPublicReason !== undefined) return
    this.#notPublicReason = reason
    this.#logger('%s', reason)
    this.#emit('not-public', { reason })
  }

  /** The event for what discovery already knew, for listeners added after discoverNAT resolved. */
  announceKnown (): void {
    if (this.#address !== undefined) this.#emit('external-address', { address: this.#address, previous: undefined, addressClass: classifyAddress(this.#address) })
    if (this.#notPublicReason !== undefined) this.#emit('not-public', { reason: this.#notPublicReason })
  }

  #set (address: string): void {
    this.#address = address
    const addressClass = classifyAddress(address)
    this.#notPublicReason = notPublicReason(address, addressClass)
    this.#logger('external address %s (%s)', address, addressClass)
  }
}
