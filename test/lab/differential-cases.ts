/**
 * The differential suite's table (differential.test.ts): request sequences sent byte for byte
 * to miniupnpd 2.3.1 in the lab and to natmapper/testing's simulators, whose answers and tables
 * afterwards must agree. A case that differs on purpose says so in `deliberate` (the reason, and
 * where docs/testing.md lists it); the suite then checks that it still differs, so the list stays
 * true. Source reading behind the expectations: miniupnpd/upnpsoap.c, natpmp.c, pcpserver.c at
 * tag miniupnpd_2_3_1.
 */

/** Where a SOAP step is posted: the WAN connection, the common interface config, Layer3Forwarding. */
export type ServiceKey = 'ip' | 'cfg' | 'l3f'

export type Step =
  /** A SOAP action; `from: 'other'` sends it from the lan's second address. */
  | { soap: string, service?: ServiceKey, args?: Array<[string, string]>, from?: 'other' }
  /** A datagram to port 5351 (hex); `waitMs` for an answer that is slow to come (default 300). */
  | { udp: string, from?: 'other', waitMs?: number }
  /** A GET of one of the description's documents. */
  | { get: 'root' | 'scpd:ip' | 'scpd:cfg' | 'scpd:l3f' }

export interface Case {
  name: string
  steps: Step[]
  /** The answers may carry a port the router picked at random: compare its range, not its value. */
  randomPort?: boolean
  /** Why the simulator answers otherwise on purpose, and which option makes it answer as miniupnpd. */
  deliberate?: string
}

export interface Addresses {
  /** The lan host, and its second address (another host of the LAN). */
  client: string
  other: string
}

// --- bytes -----------------------------------------------------------------------------------

const hex16 = (n: number): string => n.toString(16).padStart(4, '0')
const hex32 = (n: number): string => (n >>> 0).toString(16).padStart(8, '0')
const ipv4Mapped = (a: string): string => '00000000000000000000ffff' + a.split('.').map((o) => Number(o).toString(16).padStart(2, '0')).join('')

/** NAT-PMP (RFC 6886 §3.3): version 0, opcode 1 (UDP) or 2 (TCP). */
function natpmpMap (protocol: 'udp' | 'tcp', internalPort: number, externalPort: number, lifetime: number): string {
  return '00' + (protocol === 'udp' ? '01' : '02') + '0000' + hex16(internalPort) + hex16(externalPort) + hex32(lifetime)
}

interface PcpMapFields {
  version?: number
  opcode?: number
  lifetime: number
  client: string
  nonce?: string
  protocol?: number
  internalPort: number
  externalPort?: number
  externalAddress?: string
  options?: string
}

/** miniupnpd checks its rules for each of 65535 external ports, logging each, before refusing a low internal port. */
const SLOW = 5000

const NONCE = '0102030405060708090a0b0c'
const OTHER_NONCE = 'a1a2a3a4a5a6a7a8a9aaabac'

/** The PCP common header (RFC 6887 §7.1). */
function pcpHeader (version: number, opcode: number, lifetime: number, client: string): string {
  return hex16(version << 8 | opcode) + '0000' + hex32(lifetime) + ipv4Mapped(client)
}

/** A PCP MAP request (RFC 6887 §11.1), or with version 1 the MAP of draft-ietf-pcp-base-13 (no nonce) that miniupnpd still reads. */
function pcpMap (f: PcpMapFields): string {
  const version = f.version ?? 2
  const tail = (f.protocol ?? 6).toString(16).padStart(2, '0') + '000000' + hex16(f.internalPort) + hex16(f.externalPort ?? 0) + ipv4Mapped(f.externalAddress ?? '0.0.0.0')
  return pcpHeader(version, f.opcode ?? 1, f.lifetime, f.client) + (version === 1 ? '' : (f.nonce ?? NONCE)) + tail + (f.options ?? '')
}

/** A PCP option (RFC 6887 §7.3): code, reserved, length, data. */
const pcpOption = (code: number, data = ''): string => code.toString(16).padStart(2, '0') + '00' + hex16(data.length / 2) + data

// --- SOAP ------------------------------------------------------------------------------------

/** AddPortMapping's arguments in WANIPConnection's order. */
function addArgs (o: { remoteHost?: string, externalPort: string | number, protocol?: string, internalPort: string | number, client: string, description?: string, lease?: string | number }): Array<[string, string]> {
  return [['NewRemoteHost', o.remoteHost ?? ''], ['NewExternalPort', String(o.externalPort)], ['NewProtocol', o.protocol ?? 'TCP'],
    ['NewInternalPort', String(o.internalPort)], ['NewInternalClient', o.client], ['NewEnabled', '1'],
    ['NewPortMappingDescription', o.description ?? 'differential'], ['NewLeaseDuration', String(o.lease ?? 3600)]]
}

const specific = (port: number | string, protocol = 'TCP'): Step => ({ soap: 'GetSpecificPortMappingEntry', args: [['NewRemoteHost', ''], ['NewExternalPort', String(port)], ['NewProtocol', protocol]] })
const generic = (index: number | string): Step => ({ soap: 'GetGenericPortMappingEntry', args: [['NewPortMappingIndex', String(index)]] })
const remove = (port: number | string, protocol = 'TCP', from?: 'other'): Step => ({ soap: 'DeletePortMapping', args: [['NewRemoteHost', ''], ['NewExternalPort', String(port)], ['NewProtocol', protocol]], ...(from === undefined ? {} : { from }) })
const range = (start: number | string, end: number | string, protocol = 'TCP'): Array<[string, string]> =>
  [['NewStartPort', String(start)], ['NewEndPort', String(end)], ['NewProtocol', protocol], ['NewManage', '0']]

export function differentialCases (a: Addresses): Case[] {
  const add = (o: Omit<Parameters<typeof addArgs>[0], 'client'> & { client?: string }, from?: 'other'): Step =>
    ({ soap: 'AddPortMapping', args: addArgs({ client: from === 'other' ? a.other : a.client, ...o }), ...(from === undefined ? {} : { from }) })
  const addAny = (o: Omit<Parameters<typeof addArgs>[0], 'client'> & { client?: string }, from?: 'other'): Step =>
    ({ soap: 'AddAnyPortMapping', args: addArgs({ client: from === 'other' ? a.other : a.client, ...o }), ...(from === undefined ? {} : { from }) })
  const map = (f: Omit<PcpMapFields, 'client'> & { client?: string }): Step => ({ udp: pcpMap({ client: a.client, ...f }) })
  return [
    // --- the description and its documents
    { name: 'description: services, control and SCPD URLs', steps: [{ get: 'root' }] },
    { name: 'SCPD of WANIPConnection: its actions', steps: [{ get: 'scpd:ip' }] },
    { name: 'SCPD of WANCommonInterfaceConfig: its actions', steps: [{ get: 'scpd:cfg' }] },
    { name: 'SCPD of Layer3Forwarding: its actions', steps: [{ get: 'scpd:l3f' }] },

    // --- WANIPConnection: the read-only actions and the refusals
    { name: 'GetExternalIPAddress', steps: [{ soap: 'GetExternalIPAddress' }] },
    { name: 'GetStatusInfo', steps: [{ soap: 'GetStatusInfo' }] },
    { name: 'GetConnectionTypeInfo', steps: [{ soap: 'GetConnectionTypeInfo' }] },
    { name: 'GetNATRSIPStatus', steps: [{ soap: 'GetNATRSIPStatus' }] },
    { name: 'SetConnectionType is read-only (731)', steps: [{ soap: 'SetConnectionType', args: [['NewConnectionType', 'IP_Routed']] }] },
    { name: 'RequestConnection and ForceTermination are refused (606)', steps: [{ soap: 'RequestConnection' }, { soap: 'ForceTermination' }] },
    { name: 'QueryStateVariable: ConnectionStatus, PortMappingNumberOfEntries, an unknown one', steps: [
      { soap: 'QueryStateVariable', args: [['varName', 'ConnectionStatus']] },
      add({ externalPort: 7001, internalPort: 7001 }),
      { soap: 'QueryStateVariable', args: [['varName', 'PortMappingNumberOfEntries']] },
      { soap: 'QueryStateVariable', args: [['varName', 'ExternalIPAddress']] }] },
    { name: 'an unknown action (401)', steps: [{ soap: 'GetEverything' }] },

    // --- WANIPConnection: AddPortMapping and what reads it back
    { name: 'AddPortMapping, read back by GetSpecific and GetGeneric', steps: [
      add({ externalPort: 7001, internalPort: 7001 }), specific(7001), generic(0), generic(1)] },
    { name: 'protocol in lower case: add, read and delete with "tcp"', steps: [
      add({ externalPort: 7002, internalPort: 7002, protocol: 'tcp' }), specific(7002, 'tcp'), specific(7002), remove(7002, 'tcp'), specific(7002)] },
    { name: 'protocol "udp" and "Udp" are one', steps: [
      add({ externalPort: 7003, internalPort: 7003, protocol: 'udp' }), specific(7003, 'UDP'), add({ externalPort: 7003, internalPort: 7004, protocol: 'Udp' }), generic(0)] },
    { name: 'an unknown protocol name', steps: [add({ externalPort: 7005, internalPort: 7005, protocol: 'SCTP' }), generic(0)] },
    { name: 'empty NewInternalClient means the requester', steps: [add({ externalPort: 7006, internalPort: 7006, client: '' }), specific(7006)] },
    { name: 'NewRemoteHost "*" and a specific remote host', steps: [
      add({ externalPort: 7007, internalPort: 7007, remoteHost: '*' }), generic(0),
      add({ externalPort: 7008, internalPort: 7008, remoteHost: '11.0.0.2' }), generic(0), generic(1), specific(7008)] },
    { name: 'a second add of one port with another remote host, and with the same one', steps: [
      add({ externalPort: 7009, internalPort: 7009 }), add({ externalPort: 7009, internalPort: 7009, remoteHost: '11.0.0.2' }),
      add({ externalPort: 7010, internalPort: 7010, remoteHost: '11.0.0.2' }), add({ externalPort: 7010, internalPort: 7010, remoteHost: '11.0.0.2' })] },
    { name: 'external port 0 and "*" are wildcards (716)', steps: [add({ externalPort: 0, internalPort: 7010 }), add({ externalPort: '*', internalPort: 7010 })] },
    { name: 'internal port 0', steps: [add({ externalPort: 7011, internalPort: 0 })] },
    { name: 'missing NewInternalPort (402)', steps: [{ soap: 'AddPortMapping', args: addArgs({ externalPort: 7012, internalPort: 7012, client: a.client }).filter(([k]) => k !== 'NewInternalPort') }] },
    { name: 'lease 0 on IGD v2 becomes 604800', steps: [add({ externalPort: 7013, internalPort: 7013, lease: 0 }), specific(7013)] },
    { name: 'lease 1 and lease 700000', steps: [add({ externalPort: 7014, internalPort: 7014, lease: 1 }), add({ externalPort: 7015, internalPort: 7015, lease: 700000 }), specific(7015)] },
    { name: 'an empty lease', steps: [add({ externalPort: 7016, internalPort: 7016, lease: '' }), specific(7016)] },
    {
      name: 'a long description with entities',
      deliberate: 'miniupnpd up to 2.3.10 reads a description back into char desc[64]: 63 bytes of the escaped text, then bytes of its stack; ' +
        'the simulator keeps it whole unless quirks.descriptionBytesKept says how much to keep (docs/testing.md)',
      steps: [add({ externalPort: 7017, internalPort: 7017, description: `${'d'.repeat(60)}&<tail${'e'.repeat(40)}` }), specific(7017)] },
    { name: 'an add over our own entry changes its internal port', steps: [
      add({ externalPort: 7018, internalPort: 7018 }), add({ externalPort: 7018, internalPort: 7019, description: 'moved' }), generic(0), generic(1)] },
    { name: 'low ports: external 80, internal 80 (606)', steps: [add({ externalPort: 80, internalPort: 7020 }), add({ externalPort: 7020, internalPort: 80 })] },

    // --- secure mode and other hosts' entries
    { name: 'secure mode: mapping to another host (AddPortMapping 718, AddAnyPortMapping 606)', steps: [
      add({ externalPort: 7021, internalPort: 7021, client: a.other }), addAny({ externalPort: 7021, internalPort: 7021, client: a.other })] },
    { name: "another host's entry: read, not replaced, not deleted", steps: [
      add({ externalPort: 7022, internalPort: 7022, description: 'theirs' }, 'other'),
      specific(7022), add({ externalPort: 7022, internalPort: 7022 }), remove(7022), generic(0)] },
    { name: "DeletePortMappingRange takes another host's entries too", steps: [
      add({ externalPort: 7023, internalPort: 7023 }, 'other'), add({ externalPort: 7024, internalPort: 7024 }),
      { soap: 'DeletePortMappingRange', args: range(7000, 7100) }, generic(0)] },
    { name: "AddAnyPortMapping next to another host's port", steps: [
      add({ externalPort: 7025, internalPort: 7025 }, 'other'), addAny({ externalPort: 7025, internalPort: 7025 }), addAny({ externalPort: 7025, internalPort: 7026 })] },

    // --- AddAnyPortMapping, deletes, listings
    { name: 'AddAnyPortMapping of a free port', steps: [addAny({ externalPort: 7027, internalPort: 7027 }), specific(7027)] },
    { name: 'AddAnyPortMapping with a wildcard external port', randomPort: true, steps: [addAny({ externalPort: 0, internalPort: 7028 }), addAny({ externalPort: '*', internalPort: 7029 })] },
    { name: 'AddAnyPortMapping of external 80 and of internal 80', steps: [addAny({ externalPort: 80, internalPort: 7030 }), addAny({ externalPort: 7031, internalPort: 80 })] },
    { name: 'AddAnyPortMapping over our own entry', steps: [addAny({ externalPort: 7032, internalPort: 7032 }), addAny({ externalPort: 7032, internalPort: 7033 })] },
    { name: 'DeletePortMapping: none there (714), port 0 (402), no protocol (402)', steps: [
      remove(7034), remove(0), { soap: 'DeletePortMapping', args: [['NewRemoteHost', ''], ['NewExternalPort', '7034']] }] },
    { name: 'DeletePortMappingRange: start after end (733), nothing (730), not numbers (402), two of three', steps: [
      { soap: 'DeletePortMappingRange', args: range(7100, 7000) }, { soap: 'DeletePortMappingRange', args: range(7000, 7100) },
      { soap: 'DeletePortMappingRange', args: range('a', 7100) },
      add({ externalPort: 7035, internalPort: 7035 }), add({ externalPort: 7036, internalPort: 7036 }), add({ externalPort: 7037, internalPort: 7037, protocol: 'UDP' }),
      { soap: 'DeletePortMappingRange', args: range(7035, 7037) }, generic(0), generic(1)] },
    { name: 'GetGenericPortMappingEntry: no index (402), not a number (402), past the end (713)', steps: [
      { soap: 'GetGenericPortMappingEntry' }, generic('abc'), generic(99), generic(-1)] },
    { name: 'GetSpecificPortMappingEntry: port 0 (402), none there (714)', steps: [specific(0), specific(7038)] },
    { name: 'GetListOfPortMappings: a range, a count, the other protocol, a bad range', steps: [
      add({ externalPort: 7040, internalPort: 7040 }), add({ externalPort: 7041, internalPort: 7041 }), add({ externalPort: 7042, internalPort: 7042, protocol: 'UDP' }),
      { soap: 'GetListOfPortMappings', args: [...range(7000, 7100), ['NewNumberOfPorts', '0']] },
      { soap: 'GetListOfPortMappings', args: [...range(7000, 7100), ['NewNumberOfPorts', '1']] },
      { soap: 'GetListOfPortMappings', args: [...range(7000, 7100, 'UDP'), ['NewNumberOfPorts', '10']] },
      { soap: 'GetListOfPortMappings', args: [...range(7100, 7000), ['NewNumberOfPorts', '10']] },
      { soap: 'GetListOfPortMappings', args: range(7000, 7100) }] },
    { name: 'GetListOfPortMappings of an empty range', steps: [{ soap: 'GetListOfPortMappings', args: [...range(7000, 7100), ['NewNumberOfPorts', '0']] }] },

    // --- the other services
    { name: 'WANCommonInterfaceConfig: GetCommonLinkProperties', steps: [{ soap: 'GetCommonLinkProperties', service: 'cfg' }] },
    { name: 'WANCommonInterfaceConfig: the byte and packet counters', steps: [
      { soap: 'GetTotalBytesSent', service: 'cfg' }, { soap: 'GetTotalBytesReceived', service: 'cfg' },
      { soap: 'GetTotalPacketsSent', service: 'cfg' }, { soap: 'GetTotalPacketsReceived', service: 'cfg' }] },
    { name: 'WANCommonInterfaceConfig: an action it does not have (401)', steps: [{ soap: 'GetEnabledForInternet', service: 'cfg' }] },
    { name: 'Layer3Forwarding: GetDefaultConnectionService and SetDefaultConnectionService', steps: [
      { soap: 'GetDefaultConnectionService', service: 'l3f' },
      { soap: 'SetDefaultConnectionService', service: 'l3f', args: [['NewDefaultConnectionService', 'uuid:x:WANConnectionDevice:1,urn:upnp-org:serviceId:WANIPConn1']] },
      { soap: 'SetDefaultConnectionService', service: 'l3f' }] },

    // --- NAT-PMP (RFC 6886)
    { name: 'NAT-PMP: external address, with trailing bytes, too short', steps: [{ udp: '0000' }, { udp: '000000000000' }, { udp: '00' }] },
    { name: 'NAT-PMP: an unsupported opcode (5), a response (ignored)', steps: [{ udp: '0003' }, { udp: '0080' }, { udp: '007f00000000000000000000' }] },
    { name: 'NAT-PMP: a map cut short (ignored)', steps: [{ udp: natpmpMap('tcp', 7101, 7101, 3600).slice(0, 16) }] },
    { name: 'NAT-PMP: map TCP and UDP, then delete one', steps: [
      { udp: natpmpMap('tcp', 7102, 7102, 3600) }, { udp: natpmpMap('udp', 7102, 0, 3600) }, { udp: natpmpMap('tcp', 7102, 0, 0) }] },
    { name: 'NAT-PMP: lifetime 1 and lifetime 0xffffffff (granted, and gone at once: the expiry overflows 32 bits)', steps: [{ udp: natpmpMap('tcp', 7103, 7103, 1) }, { udp: natpmpMap('tcp', 7104, 7104, 0xffffffff) }] },
    { name: 'NAT-PMP: internal port 0 with a lifetime (refused)', steps: [{ udp: natpmpMap('tcp', 0, 7105, 3600) }] },
    { name: 'NAT-PMP: internal port 0, lifetime 0 deletes every NAT-PMP mapping of the host', steps: [
      { udp: natpmpMap('tcp', 7106, 7106, 3600) }, { udp: natpmpMap('udp', 7107, 7107, 3600) }, map({ lifetime: 3600, internalPort: 7108 }),
      { udp: natpmpMap('tcp', 0, 0, 0) }] },
    { name: 'NAT-PMP: a delete of what is not there', steps: [{ udp: natpmpMap('udp', 7109, 0, 0) }] },
    { name: 'NAT-PMP: internal port 80 (refused), external 80 suggested', steps: [{ udp: natpmpMap('tcp', 80, 80, 3600), waitMs: SLOW }, { udp: natpmpMap('tcp', 7110, 80, 3600) }] },
    { name: 'NAT-PMP: another host holds the port', steps: [{ udp: natpmpMap('tcp', 7111, 7111, 3600), from: 'other' }, { udp: natpmpMap('tcp', 7111, 7111, 3600) }] },
    { name: 'NAT-PMP: a renewal that suggests another external port', steps: [{ udp: natpmpMap('tcp', 7112, 7112, 3600) }, { udp: natpmpMap('tcp', 7112, 7113, 3600) }] },
    { name: 'NAT-PMP: a renewal with another internal port for the same external port', steps: [{ udp: natpmpMap('tcp', 7114, 7114, 3600) }, { udp: natpmpMap('tcp', 7115, 7114, 3600) }] },
    { name: 'NAT-PMP: a delete does not take a PCP mapping', steps: [map({ lifetime: 3600, internalPort: 7116 }), { udp: natpmpMap('tcp', 7116, 0, 0) }] },

    // --- PCP (RFC 6887)
    { name: 'PCP: ANNOUNCE, with a lifetime, from a wrong client address', steps: [
      { udp: pcpHeader(2, 0, 0, a.client) }, { udp: pcpHeader(2, 0, 1, a.client) }, { udp: pcpHeader(2, 0, 0, '192.168.77.99') }] },
    { name: 'PCP: MAP, renew, delete', steps: [map({ lifetime: 3600, internalPort: 7201 }), map({ lifetime: 7200, internalPort: 7201 }), map({ lifetime: 0, internalPort: 7201 })] },
    { name: 'PCP: lifetime 1 and 0xffffffff are clamped', steps: [map({ lifetime: 1, internalPort: 7202 }), map({ lifetime: 0xffffffff, internalPort: 7203 })] },
    { name: 'PCP: a delete of what is not there', steps: [map({ lifetime: 0, internalPort: 7204 })] },
    { name: 'PCP: a renewal and a delete with another nonce', steps: [
      map({ lifetime: 3600, internalPort: 7205 }), map({ lifetime: 3600, internalPort: 7205, nonce: OTHER_NONCE }), map({ lifetime: 0, internalPort: 7205 })] },
    { name: 'PCP: a delete with another nonce', steps: [map({ lifetime: 3600, internalPort: 7206 }), map({ lifetime: 0, internalPort: 7206, nonce: OTHER_NONCE })] },
    { name: 'PCP: internal port 0 with a lifetime, and with all protocols', steps: [map({ lifetime: 3600, internalPort: 0 }), map({ lifetime: 3600, internalPort: 7207, protocol: 0 })] },
    { name: 'PCP: internal port 0, lifetime 0', steps: [map({ lifetime: 3600, internalPort: 7208 }), map({ lifetime: 3600, internalPort: 7209 }), map({ lifetime: 0, internalPort: 0 })] },
    { name: 'PCP: internal port 80 (refused), external 80 suggested', steps: [{ ...map({ lifetime: 3600, internalPort: 80 }), waitMs: SLOW }, map({ lifetime: 3600, internalPort: 7210, externalPort: 80 })] },
    {
      name: 'PCP: UDP, and a protocol that is neither (SCTP)',
      deliberate: 'miniupnpd 2.3.1 answers SUCCESS for SCTP and lists a UDP port-0 rule that forwards nothing; ' +
        'the simulator answers UNSUPP_PROTOCOL, as RFC 6887 §11.3 says a server that cannot map a protocol does (docs/testing.md)',
      steps: [map({ lifetime: 3600, internalPort: 7211, protocol: 17 }), map({ lifetime: 3600, internalPort: 7212, protocol: 132 })] },
    { name: 'PCP: a suggested external address that is not ours, a reserved one', steps: [
      map({ lifetime: 3600, internalPort: 7213, externalAddress: '11.0.0.99' }), map({ lifetime: 3600, internalPort: 7214, externalAddress: '10.0.0.1' })] },
    { name: 'PCP: PREFER_FAILURE with an address that is not ours, and with a port taken', steps: [
      map({ lifetime: 3600, internalPort: 7215, externalPort: 7215, externalAddress: '11.0.0.99', options: pcpOption(2) }),
      { udp: pcpMap({ client: a.other, lifetime: 3600, internalPort: 7216, externalPort: 7216 }), from: 'other' },
      map({ lifetime: 3600, internalPort: 7216, externalPort: 7216, options: pcpOption(2) })] },
    { name: 'PCP: options: FILTER, an optional unknown one, a mandatory unknown one, THIRD_PARTY', steps: [
      map({ lifetime: 3600, internalPort: 7217, options: pcpOption(3, '00' + '00' + '0000' + ipv4Mapped('0.0.0.0')) }),
      map({ lifetime: 3600, internalPort: 7218, options: pcpOption(200, '00000000') }),
      map({ lifetime: 3600, internalPort: 7219, options: pcpOption(99) }),
      map({ lifetime: 3600, internalPort: 7220, options: pcpOption(1, ipv4Mapped(a.other)) })] },
    { name: 'PCP: a client address that is not the sender (ADDRESS_MISMATCH)', steps: [map({ lifetime: 3600, internalPort: 7221, client: '192.168.77.99' })] },
    { name: 'PCP: another host holds the port', steps: [{ udp: pcpMap({ client: a.other, lifetime: 3600, internalPort: 7222, externalPort: 7222 }), from: 'other' }, map({ lifetime: 3600, internalPort: 7222, externalPort: 7222 })] },
    { name: 'PCP: version 1 MAP', steps: [map({ version: 1, lifetime: 3600, internalPort: 7223 }), map({ version: 1, lifetime: 0, internalPort: 7223 })] },
    { name: 'PCP: version 3 (UNSUPP_VERSION)', steps: [map({ version: 3, lifetime: 3600, internalPort: 7224 })] },
    { name: 'PCP: short packets: 2 bytes, 12 bytes, a MAP without its last bytes, a length not a multiple of 4', steps: [
      { udp: '0201' }, { udp: pcpHeader(2, 1, 3600, a.client).slice(0, 24) }, { udp: pcpMap({ client: a.client, lifetime: 3600, internalPort: 7225 }).slice(0, 100) },
      { udp: pcpMap({ client: a.client, lifetime: 3600, internalPort: 7226 }) + '00' }] },
    { name: 'PCP: PEER, an unknown opcode, a response (ignored)', steps: [
      { udp: pcpHeader(2, 2, 3600, a.client) + NONCE + '06000000' + hex16(7227) + hex16(7227) + ipv4Mapped('0.0.0.0') + hex16(443) + '0000' + ipv4Mapped('11.0.0.2') },
      { udp: pcpHeader(2, 5, 3600, a.client) }, { udp: pcpHeader(2, 0x81, 0, a.client) + NONCE + '060000001c2b1c2b' + ipv4Mapped('0.0.0.0') }] }
  ]
}
