import { GatewayRefusedError, RemoteProtocolError, UsageError } from '../errors.js'
import type { CallOptions, Gateway, MapRequest, MapResult, PortMapping } from '../gateway.js'
import { createLogger } from '../log.js'
import type { RequestOptions } from '../net/gateway-socket.js'
import { decodeNatPmpResponse, encodeNatPmpRequest, type NatPmpRequest, type NatPmpResponse } from '../natpmp/codec.js'
import { NatPmpOpcode, NatPmpResultCode, natPmpResultName } from '../natpmp/codes.js'
import type { PortControlClientOptions } from './pcp-client.js'
import { PortControlClient } from './client.js'
import { PortControlServer } from './server.js'
import { lowPortHint } from '../port-rules.js'

export type NatPmpClientOptions = PortControlClientOptions

export interface NatPmpSession { readonly requestedLifetimeSeconds: number }

export function isNatPmpSession (session: unknown): session is NatPmpSession {
  return typeof (session as Partial<NatPmpSession> | null | undefined)?.requestedLifetimeSeconds === 'number'
}

/**
 * A NAT-PMP client (RFC 6886). Requests are queued, one at a time, because §3.1 says clients
 * "SHOULD NOT issue multiple concurrent requests" and replies carry no request identifier.
 */
export class NatPmpClient extends PortControlClient implements Gateway {
  readonly method = 'natpmp' as const
  #queue: Promise<unknown> = Promise.resolve()
  #externalAddress: string | undefined
  #pendingExternalAddress: Promise<string> | undefined

  constructor (options: NatPmpClientOptions) {
    super(options.gateway, options.server ?? new PortControlServer({ ...options, logger: options.logger ?? createLogger('natpmp') }))
    // A reboot may come with a new address; an announcement says which.
    this.server.onReset((reset) => { this.#externalAddress = reset.externalAddress })
  }

  get #socket (): PortControlServer['socket'] { return this.server.socket }

  async externalAddress (options: CallOptions = {}): Promise<string> {
    const response = await this.#send({ opcode: 'external-address' }, options)
    if (response.opcode !== 'external-address') throw refused(response)
    this.#externalAddress = response.externalAddress
    return response.externalAddress
  }

  /** The cached external address, or one request for it shared by every concurrent caller. */
  async #knownExternalAddress (options: CallOptions): Promise<string> {
    if (this.#externalAddress !== undefined) return this.#externalAddress
    this.#pendingExternalAddress ??= this.externalAddress(options).finally(() => { this.#pendingExternalAddress = undefined })
    return await this.#pendingExternalAddress
  }

  async map (request: MapRequest, options: CallOptions = {}): Promise<MapResult> {
    // A delete names the port: what an unanswered request may have made can be deleted.
    const asked = {
      method: 'natpmp' as const,
      protocol: request.protocol,
      internalPort: request.internalPort,
      externalPort: request.suggestedExternalPort ?? request.internalPort,
      externalAddress: this.#externalAddress,
      lifetimeSeconds: request.lifetimeSeconds,
      session: { requestedLifetimeSeconds: request.lifetimeSeconds }
    }
    return await this.mapOrUncertain(asked, async (onSent) => await this.#mapPort(request, { ...options, onSent }))
  }

  async #mapPort (request: MapRequest, options: RequestOptions): Promise<PortMapping> {
    // The MAP reply has no external address (§3.3), so learn it once and keep it; an epoch
    // reset clears it, since a reboot may come with a new address.
    const externalAddress = await this.#knownExternalAddress({ signal: options.signal, timeoutMs: options.timeoutMs })
    // Suggest the internal port rather than 0: some routers (RouterOS, tailscale#13785) fail
    // to allocate when asked for "any port".
    const suggestedExternalPort = request.suggestedExternalPort ?? request.internalPort
    const response = await this.#send({
      opcode: 'map',
      protocol: request.protocol,
      internalPort: request.internalPort,
      suggestedExternalPort,
      lifetimeSeconds: request.lifetimeSeconds
    }, options)
    // NOT_AUTHORIZED for a low port: the router's rules, said plainly (port-rules.ts; miniupnpd natpmp.c).
    if (response.opcode !== 'map') throw refused(response, request.lifetimeSeconds !== 0 && response.resultCode === NatPmpResultCode.NOT_AUTHORIZED ? lowPortHint(request.internalPort) : undefined)
    // §3.3: lifetime 0 deletes, and port 0 is no port; a "success" granting either is no
    // mapping (and taken as one, its renewal at half of 0 s would follow at once, and again).
    if (request.lifetimeSeconds !== 0 && (response.lifetimeSeconds === 0 || response.externalPort === 0)) {
      throw new RemoteProtocolError(`NAT-PMP map ${request.protocol} ${request.internalPort}: the gateway answered success with ${response.lifetimeSeconds === 0 ? 'lifetime 0' : 'external port 0'}, which grants nothing`)
    }
    const grantedAtMs = this.#socket.clock.now()
    const session: NatPmpSession = { requestedLifetimeSeconds: request.lifetimeSeconds }
    return {
      method: 'natpmp',
      protocol: response.protocol,
      internalPort: response.internalPort,
      externalPort: response.externalPort,
      externalAddress,
      lifetimeSeconds: response.lifetimeSeconds,
      grantedAtMs,
      expiresAtMs: grantedAtMs + response.lifetimeSeconds * 1000,
      session
    }
  }

  async renew (mapping: PortMapping, options: CallOptions = {}): Promise<PortMapping> {
    // §3.3: a renewal suggests the port previously assigned, which is also how a mapping comes
    // back on the same port after the gateway rebooted.
    if (mapping.method !== 'natpmp' || !isNatPmpSession(mapping.session)) throw new UsageError('not a mapping made by a NAT-PMP client')
    return await this.#mapPort({
      protocol: mapping.protocol,
      internalPort: mapping.internalPort,
      suggestedExternalPort: mapping.externalPort,
      lifetimeSeconds: mapping.session.requestedLifetimeSeconds
    }, options)
  }

  async unmap (mapping: PortMapping, options: CallOptions = {}): Promise<void> {
    // §3.4: lifetime 0 and suggested external port 0 delete the mapping. §3.1 lets deletes give
    // up earlier than the nine attempts of a request.
    const response = await this.#send({
      opcode: 'map', protocol: mapping.protocol, internalPort: mapping.internalPort, suggestedExternalPort: 0, lifetimeSeconds: 0
    }, { ...options, maxAttempts: 3 })
    if (response.opcode === 'error') throw refused(response)
  }

  async #send (request: NatPmpRequest, options: RequestOptions): Promise<NatPmpResponse> {
    const run = async (): Promise<NatPmpResponse> => {
      const label = request.opcode === 'map'
        ? `NAT-PMP map ${request.protocol} ${request.internalPort} lifetime ${request.lifetimeSeconds}`
        : 'NAT-PMP external address'
      const wanted = request.opcode === 'map'
        ? (request.protocol === 'udp' ? NatPmpOpcode.MAP_UDP : NatPmpOpcode.MAP_TCP)
        : NatPmpOpcode.EXTERNAL_ADDRESS
      const response = await this.#socket.request(label, encodeNatPmpRequest(request), (message) => {
        let decoded: NatPmpResponse
        try {
          decoded = decodeNatPmpResponse(message)
        } catch (err) {
          this.#socket.logger('%s: ignoring undecodable reply: %s', label, (err as Error).message)
          return undefined
        }
        return answers(decoded, request, wanted) ? decoded : undefined
      }, { ...options, observe: this.observe('natpmp') })
      this.#checkEpoch(response.epochSeconds)
      if (response.resultCode !== 0) this.countRefusal('natpmp', response.resultCode, natPmpResultName(response.resultCode))
      this.server.logger('%s: %s (%d)%s, epoch %d s', label, natPmpResultName(response.resultCode), response.resultCode,
        response.opcode === 'map' ? `, external port ${response.externalPort}, lifetime ${response.lifetimeSeconds} s` : response.opcode === 'external-address' ? `, external address ${response.externalAddress}` : '', response.epochSeconds)
      return response
    }
    const next = this.#queue.then(run, run)
    this.#queue = next.catch(() => {})
    return await next
  }

  #checkEpoch (epochSeconds: number): void {
    this.server.observeEpoch('natpmp', epochSeconds)
  }
}

function answers (response: NatPmpResponse, request: NatPmpRequest, wantedOpcode: number): boolean {
  // A version-0 UNSUPPORTED_VERSION can only answer a PCP request on the shared socket (a PCP
  // ANNOUNCE's opcode 0 looks like ours); a PCP-only server answers NAT-PMP in PCP's format.
  if (response.opcode === 'error') return response.requestOpcode === wantedOpcode && response.resultCode !== NatPmpResultCode.UNSUPPORTED_VERSION
  if (request.opcode === 'external-address') return response.opcode === 'external-address'
  return response.opcode === 'map' && response.protocol === request.protocol && response.internalPort === request.internalPort
}

function refused (response: NatPmpResponse, detail?: string): GatewayRefusedError {
  const code = response.resultCode
  return new GatewayRefusedError('natpmp', code, natPmpResultName(code), detail)
}
