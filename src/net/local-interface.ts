import type { NetworkInterfaceInfo } from 'node:os'
import { InterfaceError } from '../errors.js'
import { isIpv4Literal } from './address.js'
import { prefixLengthOf } from './ipv4.js'

/**
 * Which of this host's networks to use, from what the caller named: an interface (`eth1`), a
 * local address (`192.168.1.20`), or both. Pure: the caller passes os.networkInterfaces().
 */

export type InterfaceList = NodeJS.Dict<NetworkInterfaceInfo[]>

/** One interface and the IPv4 address natmapper binds its sockets to. */
export interface LocalInterface {
  readonly name: string
  readonly address: string
  readonly prefixLength: number | undefined
  readonly internal: boolean
}

export interface InterfaceChoice {
  interface?: string | undefined
  localAddress?: string | undefined
}

/**
 * The interface chosen, or undefined when the caller chose none (the default route decides).
 * Throws InterfaceError, before anything is sent, for a name that is not here, an interface
 * without IPv4, an address no interface has, or a name and an address of different interfaces.
 */
export function chooseLocalInterface (choice: InterfaceChoice, interfaces: InterfaceList): LocalInterface | undefined {
  const { interface: name, localAddress } = choice
  if (name === undefined && localAddress === undefined) return undefined
  if (localAddress !== undefined && !isIpv4Literal(localAddress)) {
    throw new InterfaceError('not-ipv4', `the local address must be an IPv4 address, not ${JSON.stringify(localAddress)}`)
  }
  const byAddress = localAddress === undefined ? undefined : findAddress(localAddress, interfaces)
  if (localAddress !== undefined && byAddress === undefined) {
    throw new InterfaceError('address-not-local', `no interface of this host has the address ${localAddress} (${describeList(interfaces)})`)
  }
  if (name === undefined) return byAddress
  const infos = interfaces[name]
  if (infos === undefined) {
    throw new InterfaceError('unknown-interface', `no network interface named ${JSON.stringify(name)} (${describeList(interfaces)})`)
  }
  if (byAddress !== undefined) {
    if (byAddress.name !== name) throw new InterfaceError('mismatch', `${localAddress!} is an address of ${byAddress.name}, not of ${name}`)
    return byAddress
  }
  const first = infos.find((info) => info.family === 'IPv4')
  if (first === undefined) throw new InterfaceError('no-ipv4', `the interface ${name} has no IPv4 address (it is down, not configured, or IPv6 only)`)
  return toLocal(name, first)
}

/** Every interface with an IPv4 address that is not internal (loopback), each with its first IPv4 address. */
export function externalIpv4Interfaces (interfaces: InterfaceList): LocalInterface[] {
  const out: LocalInterface[] = []
  for (const [name, infos] of Object.entries(interfaces)) {
    const first = infos?.find((info) => info.family === 'IPv4' && !info.internal)
    if (first !== undefined) out.push(toLocal(name, first))
  }
  return out
}

function findAddress (address: string, interfaces: InterfaceList): LocalInterface | undefined {
  for (const [name, infos] of Object.entries(interfaces)) {
    const info = infos?.find((i) => i.family === 'IPv4' && i.address === address)
    if (info !== undefined) return toLocal(name, info)
  }
  return undefined
}

function toLocal (name: string, info: NetworkInterfaceInfo): LocalInterface {
  return { name, address: info.address, prefixLength: prefixLengthOf(info), internal: info.internal }
}

/** "here: eth0 192.168.1.20, wlan0 (no IPv4)", for the error messages. */
function describeList (interfaces: InterfaceList): string {
  const parts = Object.entries(interfaces).map(([name, infos]) => {
    const v4 = infos?.filter((i) => i.family === 'IPv4').map((i) => i.address) ?? []
    return `${name} ${v4.length === 0 ? '(no IPv4)' : v4.join(' ')}`
  })
  return parts.length === 0 ? 'this host lists no interfaces' : `here: ${parts.join(', ')}`
}
