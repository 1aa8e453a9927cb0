import { rmSync } from 'node:fs'
import { createServer, type Server } from 'node:net'
import type { IgdTypes } from './igd-description.js'

/**
 * A minissdpd-compatible unix socket for SimulatedIgd: SSDP-discovering clients built on
 * miniupnpc (`upnpc -p <socket>`, python's miniupnpc with `minissdpdsocket`) ask it which
 * devices it heard of and find the simulated IGD without any multicast. The protocol is
 * miniupnpc's minissdpc.c: a request type (1: by type, 3: everything), a length, the type; the
 * answer a device count, then per device its LOCATION, ST and USN, each after its length (7 bits
 * a byte, the high bit saying another byte follows: codelength.h).
 */

export interface MinissdpdHost {
  readonly types: IgdTypes
  readonly uuid: string
  location: () => string
}

export async function startMinissdpd (path: string, host: MinissdpdHost): Promise<Server> {
  // A socket file left by a crashed run would make listen fail with EADDRINUSE.
  rmSync(path, { force: true })
  const server = createServer((socket) => {
    socket.on('error', () => {})
    let pending = Buffer.alloc(0)
    socket.on('data', (chunk: Buffer) => {
      pending = Buffer.concat([pending, chunk])
      const request = decodeRequest(pending)
      if (request === undefined) return
      socket.end(encodeAnswer(devicesFor(host, request.type, request.st)))
    })
  })
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(path, () => { server.off('error', reject); resolve() })
  })
  return server
}

function devicesFor (host: MinissdpdHost, type: number, st: string): Array<[string, string, string]> {
  const ours = ['upnp:rootdevice', host.types.device, host.types.service]
  const wanted = type === 3 ? ours : ours.filter((nt) => nt === st || (nt !== 'upnp:rootdevice' && sameType(nt, st)))
  return wanted.map((nt) => [host.location(), nt, `uuid:${host.uuid}::${nt}`])
}

/** The same device or service type, whatever the version (as non-strict miniupnpd matches). */
const sameType = (a: string, b: string): boolean => a.slice(0, a.lastIndexOf(':')) === b.slice(0, b.lastIndexOf(':'))

function decodeRequest (bytes: Buffer): { type: number, st: string } | undefined {
  if (bytes.length < 2) return undefined
  let length = 0
  let at = 1
  for (;;) {
    if (at >= bytes.length) return undefined
    const b = bytes[at++]!
    length = (length << 7) | (b & 0x7f)
    if ((b & 0x80) === 0) break
  }
  if (bytes.length < at + length) return undefined
  return { type: bytes[0]!, st: bytes.subarray(at, at + length).toString('utf8') }
}

function encodeLength (n: number): number[] {
  const out = [n & 0x7f]
  for (let rest = n >> 7; rest > 0; rest >>= 7) out.unshift((rest & 0x7f) | 0x80)
  return out
}

function encodeAnswer (devices: Array<[string, string, string]>): Buffer {
  const parts: Buffer[] = [Buffer.of(devices.length)]
  for (const device of devices) {
    for (const text of device) {
      const bytes = Buffer.from(text, 'utf8')
      parts.push(Buffer.from(encodeLength(bytes.length)), bytes)
    }
  }
  return Buffer.concat(parts)
}
