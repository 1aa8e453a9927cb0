import type { Clock } from './clock.js'
import { GatewayRefusedError, UsageError } from './errors.js'
import type { Gateway, MappingMethod } from './gateway.js'
import type { Logger } from './log.js'
import { findDefaultGateway } from './net/default-gateway.js'
import type { CreateSocket } from './net/udp.js'
import { NatPmpClient } from './natpmp/client.js'
import { PcpClient } from './pcp/client.js'

export interface OpenGatewayOptions {
  /** The gateway's address; found from the default route when absent. */
  gateway?: string
  /** Use this protocol only; otherwise PCP, falling back to NAT-PMP (RFC 6887 §9). */
  method?: MappingMethod
  /** Port of the gateway's NAT-PMP/PCP server; 5351 except against a simulated gateway. */
  port?: number
  signal?: AbortSignal
  timeoutMs?: number
  clock?: Clock
  createSocket?: CreateSocket
  logger?: Logger
  onEpochReset?: () => void
}

/**
 * Opens a client for the gateway's NAT-PMP/PCP server. Without a method it sends one PCP
 * ANNOUNCE: a PCP server answers it, and a NAT-PMP-only server answers UNSUPPORTED_VERSION,
 * after which we speak NAT-PMP. Either way it costs the router one request.
 */
export async function openGateway (options: OpenGatewayOptions = {}): Promise<Gateway> {
  const gateway = options.gateway ?? (await findDefaultGateway()).gateway
  const common = {
    gateway,
    ...(options.port === undefined ? {} : { port: options.port }),
    ...(options.clock === undefined ? {} : { clock: options.clock }),
    ...(options.createSocket === undefined ? {} : { createSocket: options.createSocket }),
    ...(options.logger === undefined ? {} : { logger: options.logger }),
    ...(options.onEpochReset === undefined ? {} : { onEpochReset: options.onEpochReset })
  }
  switch (options.method) {
    case 'natpmp': return new NatPmpClient(common)
    case 'pcp': return new PcpClient(common)
    case 'upnp': throw new UsageError('UPnP IGD is not supported yet')
    case undefined: break
  }
  const pcp = new PcpClient(common)
  try {
    const callOptions = {
      timeoutMs: options.timeoutMs ?? 3_000,
      ...(options.signal === undefined ? {} : { signal: options.signal })
    }
    if (await pcp.announce(callOptions)) return pcp
  } catch (err) {
    pcp.close()
    if (!(err instanceof GatewayRefusedError)) throw err
  }
  pcp.close()
  return new NatPmpClient(common)
}
