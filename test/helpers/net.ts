import { createSocket } from 'node:dgram'
import type { NetworkInterfaceInfo } from 'node:os'

/** A loopback UDP port nothing listens on now: a request there is refused at once (ICMP port unreachable). */
export async function freeUdpPort (): Promise<number> {
  const socket = createSocket('udp4')
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve))
  const { port } = socket.address()
  await new Promise<void>((resolve) => socket.close(() => { resolve() }))
  return port
}

/** An os.networkInterfaces() entry for an IPv4 address, for injected host networks. */
export function ipv4 (address: string, prefixLength: number, internal = false): NetworkInterfaceInfo {
  const mask = prefixLength === 0 ? 0 : (0xffffffff << (32 - prefixLength)) >>> 0
  const netmask = [mask >>> 24, (mask >>> 16) & 0xff, (mask >>> 8) & 0xff, mask & 0xff].join('.')
  return { address, netmask, family: 'IPv4', mac: '02:00:00:00:00:01', internal, cidr: `${address}/${prefixLength}` }
}
