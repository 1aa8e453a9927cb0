import { UsageError } from '../errors.js'
import type { TransportProtocol } from '../gateway.js'

export interface PortSpec { protocol: TransportProtocol, port: number }

/** "4001", "4001/tcp" or "4001/udp"; TCP when no protocol is given. */
export function parsePortSpec (text: string): PortSpec {
  const match = /^(\d{1,5})(?:\/(tcp|udp))?$/i.exec(text)
  const port = Number(match?.[1])
  if (match === null || port < 1 || port > 65535) {
    throw new UsageError(`invalid port ${JSON.stringify(text)}: expected PORT, PORT/tcp or PORT/udp with PORT in 1-65535`)
  }
  return { port, protocol: (match[2]?.toLowerCase() ?? 'tcp') as TransportProtocol }
}

export function parseIntegerOption (name: string, text: string | undefined, min: number, max: number): number | undefined {
  if (text === undefined) return undefined
  const value = Number(text)
  if (!/^\d+$/.test(text) || value < min || value > max) throw new UsageError(`--${name} must be an integer from ${min} to ${max}, not ${JSON.stringify(text)}`)
  return value
}
