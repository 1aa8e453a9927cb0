import { escapeXml } from '../upnp/soap.js'
import { IGD2_ONLY_ACTIONS, SERVICE_ACTIONS } from './igd-actions.js'

/**
 * The device description SimulatedIgd serves, in miniupnpd's shape (no URLBase, relative URLs):
 * InternetGatewayDevice > WANDevice > WANConnectionDevice > WANIPConnection, all :1 or all :2,
 * optionally with a second WANConnectionDevice (MikroTik lists a disconnected WAN first).
 */

export interface IgdTypes {
  readonly version: 1 | 2
  readonly device: string
  readonly service: string
  /** Whether the WANConnectionDevice also has WANIPv6FirewallControl:1 (IGD v2 only). */
  readonly firewall: boolean
  /** Whether an M-SEARCH for `st` gets an answer: the type at any version, as non-strict miniupnpd matches. */
  matches: (st: string) => boolean
  /** The WAN connection services' control paths, the disconnected one first when there are two. */
  controlPaths: (twoWans: boolean) => string[]
}

const UUID_PREFIX = '2f402f80-da50-11e1-9b23-0019000bf1a'

/** The UDN of the (first) WANConnectionDevice, which Layer3Forwarding names as the default connection. */
export const WAN_CONNECTION_UDN = `uuid:${UUID_PREFIX}2`

/** The SERVER header of SimulatedIgd's SSDP and HTTP answers. */
export const SERVER = 'Linux/6.1 UPnP/1.1 natmapper-SimulatedIgd/0.1'

export function igdTypes (version: 1 | 2, firewall = version === 2): IgdTypes {
  const device = `urn:schemas-upnp-org:device:InternetGatewayDevice:${version}`
  const service = `urn:schemas-upnp-org:service:WANIPConnection:${version}`
  const unversioned = [
    'urn:schemas-upnp-org:device:InternetGatewayDevice', 'urn:schemas-upnp-org:device:WANDevice',
    'urn:schemas-upnp-org:device:WANConnectionDevice', 'urn:schemas-upnp-org:service:WANIPConnection',
    'urn:schemas-upnp-org:service:WANCommonInterfaceConfig',
    ...(firewall ? [FIREWALL_SERVICE.slice(0, FIREWALL_SERVICE.lastIndexOf(':'))] : [])
  ]
  return {
    version,
    device,
    service,
    firewall,
    matches: (st) => st === 'ssdp:all' || st === 'upnp:rootdevice' || st.startsWith(`uuid:${UUID_PREFIX}`) ||
      unversioned.includes(st.slice(0, st.lastIndexOf(':'))),
    controlPaths: (twoWans) => twoWans ? ['/ctl/IPConn0', '/ctl/IPConn'] : ['/ctl/IPConn']
  }
}

export const FIREWALL_SERVICE = 'urn:schemas-upnp-org:service:WANIPv6FirewallControl:1'
/** Where miniupnpd serves WANIPv6FirewallControl (upnpdescgen.c, upnphttp.c). */
export const FIREWALL_CONTROL_PATH = '/ctl/IP6FCtl'

/** `controlBase` prefixes the control URLs ('' keeps them relative). */
export function igdDescription (types: IgdTypes, twoWans: boolean, controlBase = ''): string {
  const v = types.version
  const wan = (path: string, n: number): string =>
    `<device><deviceType>urn:schemas-upnp-org:device:WANConnectionDevice:${v}</deviceType>` +
    `<friendlyName>WANConnectionDevice</friendlyName><manufacturer>natmapper</manufacturer><modelName>SimulatedIgd</modelName>` +
    `<UDN>uuid:${UUID_PREFIX}${n}</UDN><serviceList><service><serviceType>${types.service}</serviceType>` +
    `<serviceId>urn:upnp-org:serviceId:WANIPConn${n - 1}</serviceId><SCPDURL>/WANIPCn.xml</SCPDURL>` +
    `<controlURL>${controlBase}${path}</controlURL><eventSubURL>/evt${path.slice(4)}</eventSubURL></service>${path === '/ctl/IPConn' && types.firewall ? firewall : ''}</serviceList></device>`
  // miniupnpd lists it after WANIPConnection, in the WANConnectionDevice of the connected WAN.
  const firewall = `<service><serviceType>${FIREWALL_SERVICE}</serviceType><serviceId>urn:upnp-org:serviceId:WANIPv6Firewall1</serviceId>` +
    `<SCPDURL>/WANIP6FC.xml</SCPDURL><controlURL>${controlBase}${FIREWALL_CONTROL_PATH}</controlURL><eventSubURL>/evt/IP6FCtl</eventSubURL></service>`
  const wans = types.controlPaths(twoWans).map((path, i) => wan(path, 2 + i)).join('')
  return '<?xml version="1.0"?>\r\n' +
    `<root xmlns="urn:schemas-upnp-org:device-1-0"><specVersion><major>1</major><minor>${v === 2 ? 1 : 0}</minor></specVersion>` +
    `<device><deviceType>${types.device}</deviceType><friendlyName>${escapeXml('natmapper SimulatedIgd')}</friendlyName>` +
    '<manufacturer>natmapper</manufacturer><modelName>SimulatedIgd</modelName>' +
    `<UDN>uuid:${UUID_PREFIX}b</UDN>` +
    '<serviceList><service><serviceType>urn:schemas-upnp-org:service:Layer3Forwarding:1</serviceType>' +
    '<serviceId>urn:upnp-org:serviceId:L3Forwarding1</serviceId><SCPDURL>/L3F.xml</SCPDURL>' +
    '<controlURL>/ctl/L3F</controlURL><eventSubURL>/evt/L3F</eventSubURL></service></serviceList>' +
    `<deviceList><device><deviceType>urn:schemas-upnp-org:device:WANDevice:${v}</deviceType>` +
    `<friendlyName>WANDevice</friendlyName><manufacturer>natmapper</manufacturer><modelName>SimulatedIgd</modelName><UDN>uuid:${UUID_PREFIX}1</UDN>` +
    '<serviceList><service><serviceType>urn:schemas-upnp-org:service:WANCommonInterfaceConfig:1</serviceType>' +
    '<serviceId>urn:upnp-org:serviceId:WANCommonIFC1</serviceId><SCPDURL>/WANCfg.xml</SCPDURL>' +
    '<controlURL>/ctl/CmnIfCfg</controlURL><eventSubURL>/evt/CmnIfCfg</eventSubURL></service></serviceList>' +
    `<deviceList>${wans}</deviceList></device></deviceList></device></root>\r\n`
}

/** The documents the description names, by path: each service's SCPD. */
export const SCPD_PATHS = { '/WANIPCn.xml': 'WANIPConnection', '/WANCfg.xml': 'WANCommonInterfaceConfig', '/L3F.xml': 'Layer3Forwarding', '/WANIP6FC.xml': 'WANIPv6FirewallControl' } as const

/** Each action's arguments, in then out, as the service templates name them. */
const ARGUMENTS: Record<string, [string[], string[]]> = {
  AddPortMapping: [['NewRemoteHost', 'NewExternalPort', 'NewProtocol', 'NewInternalPort', 'NewInternalClient', 'NewEnabled', 'NewPortMappingDescription', 'NewLeaseDuration'], []],
  AddAnyPortMapping: [['NewRemoteHost', 'NewExternalPort', 'NewProtocol', 'NewInternalPort', 'NewInternalClient', 'NewEnabled', 'NewPortMappingDescription', 'NewLeaseDuration'], ['NewReservedPort']],
  DeletePortMapping: [['NewRemoteHost', 'NewExternalPort', 'NewProtocol'], []],
  DeletePortMappingRange: [['NewStartPort', 'NewEndPort', 'NewProtocol', 'NewManage'], []],
  GetSpecificPortMappingEntry: [['NewRemoteHost', 'NewExternalPort', 'NewProtocol'], ['NewInternalPort', 'NewInternalClient', 'NewEnabled', 'NewPortMappingDescription', 'NewLeaseDuration']],
  GetGenericPortMappingEntry: [['NewPortMappingIndex'], ['NewRemoteHost', 'NewExternalPort', 'NewProtocol', 'NewInternalPort', 'NewInternalClient', 'NewEnabled', 'NewPortMappingDescription', 'NewLeaseDuration']],
  GetListOfPortMappings: [['NewStartPort', 'NewEndPort', 'NewProtocol', 'NewManage', 'NewNumberOfPorts'], ['NewPortListing']],
  GetExternalIPAddress: [[], ['NewExternalIPAddress']],
  GetStatusInfo: [[], ['NewConnectionStatus', 'NewLastConnectionError', 'NewUptime']],
  GetConnectionTypeInfo: [[], ['NewConnectionType', 'NewPossibleConnectionTypes']],
  GetNATRSIPStatus: [[], ['NewRSIPAvailable', 'NewNATEnabled']],
  SetConnectionType: [['NewConnectionType'], []],
  RequestConnection: [[], []],
  ForceTermination: [[], []],
  GetCommonLinkProperties: [[], ['NewWANAccessType', 'NewLayer1UpstreamMaxBitRate', 'NewLayer1DownstreamMaxBitRate', 'NewPhysicalLinkStatus']],
  GetTotalBytesSent: [[], ['NewTotalBytesSent']],
  GetTotalBytesReceived: [[], ['NewTotalBytesReceived']],
  GetTotalPacketsSent: [[], ['NewTotalPacketsSent']],
  GetTotalPacketsReceived: [[], ['NewTotalPacketsReceived']],
  GetDefaultConnectionService: [[], ['NewDefaultConnectionService']],
  SetDefaultConnectionService: [['NewDefaultConnectionService'], []],
  GetFirewallStatus: [[], ['FirewallEnabled', 'InboundPinholeAllowed']],
  GetOutboundPinholeTimeout: [['RemoteHost', 'RemotePort', 'InternalClient', 'InternalPort', 'Protocol'], ['OutboundPinholeTimeout']],
  AddPinhole: [['RemoteHost', 'RemotePort', 'InternalClient', 'InternalPort', 'Protocol', 'LeaseTime'], ['UniqueID']],
  UpdatePinhole: [['UniqueID', 'NewLeaseTime'], []],
  DeletePinhole: [['UniqueID'], []],
  CheckPinholeWorking: [['UniqueID'], ['IsWorking']],
  GetPinholePackets: [['UniqueID'], ['PinholePackets']]
}

/** A service's SCPD (UDA 1.0 §2.5): its actions and their arguments; an IGD v1 lists no WANIPConnection:2 action. */
export function igdScpd (service: keyof typeof SERVICE_ACTIONS, version: 1 | 2): string {
  const actions = SERVICE_ACTIONS[service].filter((a) => version === 2 || !IGD2_ONLY_ACTIONS.includes(a)).map((name) => {
    const [ins, outs] = ARGUMENTS[name] ?? [[], []]
    const args = [...ins.map((a) => [a, 'in']), ...outs.map((a) => [a, 'out'])]
      .map(([a, d]) => `<argument><name>${a}</name><direction>${d}</direction></argument>`).join('')
    return `<action><name>${name}</name><argumentList>${args}</argumentList></action>`
  }).join('')
  return '<?xml version="1.0"?>\r\n<scpd xmlns="urn:schemas-upnp-org:service-1-0"><specVersion><major>1</major><minor>0</minor></specVersion>' +
    `<actionList>${actions}</actionList><serviceStateTable></serviceStateTable></scpd>\r\n`
}
