import { UsageError } from '../errors.js'
import type { TransportProtocol } from '../gateway.js'
import { MAX_BULK_PORTS } from '../nat/bulk.js'

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

/** A port (parsePortSpec) or a range "FIRST-LAST[/tcp|/udp]", as its ports in order. */
export function parsePortRange (text: string): PortSpec[] {
  const match = /^(\d+)-(\d+)(?:\/([a-z]+))?$/i.exec(text)
  if (match === null) return [parsePortSpec(text)]
  const first = Number(match[1])
  const last = Number(match[2])
  const protocol = match[3]?.toLowerCase() ?? 'tcp'
  if (protocol !== 'tcp' && protocol !== 'udp') throw new UsageError(`invalid port range ${JSON.stringify(text)}: the protocol is tcp or udp, not ${JSON.stringify(match[3])}`)
  for (const port of [first, last]) {
    if (!(port >= 1 && port <= 65535)) throw new UsageError(`invalid port range ${JSON.stringify(text)}: ${String(port)} is not a port (ports are 1-65535)`)
  }
  if (first > last) throw new UsageError(`invalid port range ${JSON.stringify(text)}: it goes backwards (${first} is above ${last}); write FIRST-LAST, e.g. ${last}-${first}/${protocol}`)
  if (last - first + 1 > MAX_BULK_PORTS) throw new UsageError(`invalid port range ${JSON.stringify(text)}: ${last - first + 1} ports, more than the ${MAX_BULK_PORTS} natmapper maps at once`)
  return Array.from({ length: last - first + 1 }, (_v, i) => ({ protocol, port: first + i }))
}

/** Every argument's ports, in order, a port given twice once; at most MAX_BULK_PORTS in all. */
export function parsePortArguments (texts: string[]): PortSpec[] {
  const seen = new Set<string>()
  const specs: PortSpec[] = []
  for (const text of texts) {
    for (const spec of parsePortRange(text)) {
      const key = `${spec.protocol}/${spec.port}`
      if (seen.has(key)) continue
      seen.add(key)
      specs.push(spec)
    }
  }
  if (specs.length > MAX_BULK_PORTS) throw new UsageError(`${specs.length} ports: natmapper maps at most ${MAX_BULK_PORTS} at once`)
  return specs
}

/** "4001/tcp", or "5000-5031/udp" for ports that follow each other: the ports of a list, short. */
export function describePorts (specs: readonly PortSpec[]): string {
  const parts: string[] = []
  let i = 0
  while (i < specs.length) {
    const start = specs[i]!
    let j = i
    while (j + 1 < specs.length && specs[j + 1]!.protocol === start.protocol && specs[j + 1]!.port === specs[j]!.port + 1) j++
    parts.push(j === i ? `${start.port}/${start.protocol}` : `${start.port}-${specs[j]!.port}/${start.protocol}`)
    i = j + 1
  }
  return parts.join(', ')
}

export function parseIntegerOption (name: string, text: string | undefined, min: number, max: number): number | undefined {
  if (text === undefined) return undefined
  const value = Number(text)
  if (!/^\d+$/.test(text) || value < min || value > max) throw new UsageError(`--${name} must be an integer from ${min} to ${max}, not ${JSON.stringify(text)}`)
  return value
}
