import { RemoteProtocolError, UsageError } from '../errors.js'
import { TypePrefix } from './codes.js'
import { clip, is, parseXml, type XmlElement } from './xml.js'

/**
 * The device description an IGD serves at its SSDP LOCATION (UDA 1.1 §2.3), and the choice of
 * the WAN connection services to control. Pure: the caller fetches the XML (with its own size
 * and host checks) and passes it with the URL it came from.
 *
 *   <root xmlns="urn:schemas-upnp-org:device-1-0">
 *     <specVersion>...</specVersion>
 *     <URLBase>http://192.168.1.1:5000</URLBase>            optional, deprecated in UDA 1.1
 *     <device>
 *       <deviceType>urn:...:device:InternetGatewayDevice:2</deviceType>
 *       <friendlyName/> <manufacturer/> <modelName/> <UDN>uuid:...</UDN>
 *       <serviceList><service>
 *         <serviceType/> <serviceId/> <SCPDURL/> <controlURL/> <eventSubURL/>
 *       </service></serviceList>
 *       <deviceList><device>...WANDevice...<device>...WANConnectionDevice...</device></device></deviceList>
 *     </device>
 *   </root>
 *
 * Element names are matched without namespace and without regard to case; values are trimmed.
 */

/** Descriptions are a few KiB; miniupnpd's is under 4 KiB. */
export const MAX_DESCRIPTION_CHARS = 256 * 1024

export interface UpnpService {
  readonly serviceType: string
  readonly serviceId: string
  /** Absolute URLs, resolved against URLBase or the description's own URL; undefined when missing or unusable. */
  readonly controlURL: string | undefined
  readonly eventSubURL: string | undefined
  readonly SCPDURL: string | undefined
}

export interface UpnpDevice {
  readonly deviceType: string
  readonly friendlyName: string
  readonly manufacturer: string
  readonly modelName: string
  readonly UDN: string
  readonly services: readonly UpnpService[]
  /** Embedded devices (`<deviceList>`), in document order. */
  readonly devices: readonly UpnpDevice[]
}

export interface UpnpRootDevice extends UpnpDevice {
  /** The base that relative URLs were resolved against: `<URLBase>` if usable, else the description's URL. */
  readonly baseUrl: string
}

export type WanServiceKind = 'WANIPConnection' | 'WANPPPConnection'

/** A service through which port mappings can be managed, with what a client needs to call it. */
export interface WanServiceCandidate {
  readonly kind: WanServiceKind
  /** Verbatim from the description: it goes into SOAPAction and the action's namespace. */
  readonly serviceType: string
  /** The version after the type's last colon; 1 when unreadable. AddAnyPortMapping needs WANIPConnection 2. */
  readonly serviceVersion: number
  /** The pre-standard `urn:dslforum-org` type (Huawei HG531, tailscale#10911): tried last. */
  readonly legacy: boolean
  /** From the root InternetGatewayDevice's type; it decides which fault codes to expect (606 is v2 only). */
  readonly igdVersion: 1 | 2
  /** Absolute. Not checked to point at the gateway: that is the HTTP layer's job. */
  readonly controlURL: string
  /** deviceType of each device from the root down to the one that holds the service. */
  readonly devicePath: readonly string[]
  /** UDN of the device that holds the service. */
  readonly deviceUDN: string
  readonly service: UpnpService
}

/**
 * Parses a device description. `baseUrl` is the URL it was fetched from (the SSDP LOCATION), used
 * to resolve relative URLs when there is no `<URLBase>`. Throws RemoteProtocolError for text that
 * is not well-formed XML, larger than MAX_DESCRIPTION_CHARS, or not a `<root>` with a `<device>`;
 * UsageError when `baseUrl` is not an absolute http URL. A service's missing or unresolvable URL
 * becomes undefined rather than an error, so one bad entry does not hide the others.
 */
export function parseDescription (xml: string, baseUrl: string): UpnpRootDevice {
  if (!isHttpUrl(baseUrl)) throw new UsageError(`description base URL must be an absolute http URL, got ${JSON.stringify(baseUrl)}`)
  const root = parseXml(xml, 'device description', MAX_DESCRIPTION_CHARS)
  if (!is(root, 'root')) throw new RemoteProtocolError(`not a UPnP device description: the root element is <${clip(root.name)}>, not <root>`)
  const device = root.children.find((child) => is(child, 'device'))
  if (device === undefined) throw new RemoteProtocolError('device description has no <device>')
  // UDA 1.1 §2.3: URLBase "MUST NOT" be used by 1.1 devices but older ones send it, and goupnp
  // and miniupnpc both honour it. Relative URLs resolve by RFC 3986 against it, else the LOCATION.
  const urlBase = childText(root, 'URLBase')
  const base = urlBase !== '' && isHttpUrl(urlBase) ? urlBase : baseUrl
  return { ...readDevice(device, base), baseUrl: base }
}

function readDevice (element: XmlElement, base: string): UpnpDevice {
  const services: UpnpService[] = []
  const devices: UpnpDevice[] = []
  for (const child of element.children) {
    if (is(child, 'serviceList')) {
      for (const service of child.children) if (is(service, 'service')) services.push(readService(service, base))
    } else if (is(child, 'deviceList')) {
      for (const device of child.children) if (is(device, 'device')) devices.push(readDevice(device, base))
    }
  }
  return {
    deviceType: childText(element, 'deviceType'),
    friendlyName: childText(element, 'friendlyName'),
    manufacturer: childText(element, 'manufacturer'),
    modelName: childText(element, 'modelName'),
    UDN: childText(element, 'UDN'),
    services,
    devices
  }
}

function readService (element: XmlElement, base: string): UpnpService {
  return {
    serviceType: childText(element, 'serviceType'),
    serviceId: childText(element, 'serviceId'),
    controlURL: resolve(childText(element, 'controlURL'), base),
    eventSubURL: resolve(childText(element, 'eventSubURL'), base),
    SCPDURL: resolve(childText(element, 'SCPDURL'), base)
  }
}

/** Trimmed text of the first child element named `local`, or ''. */
function childText (element: XmlElement, local: string): string {
  const child = element.children.find((c) => is(c, local))
  return child === undefined ? '' : child.text.trim()
}

function resolve (reference: string, base: string): string | undefined {
  if (reference === '') return undefined
  let url: URL
  try {
    url = new URL(reference, base)
  } catch {
    return undefined
  }
  return url.protocol === 'http:' || url.protocol === 'https:' ? url.href : undefined
}

function isHttpUrl (text: string): boolean {
  let url: URL
  try {
    url = new URL(text)
  } catch {
    return false
  }
  return (url.protocol === 'http:' || url.protocol === 'https:') && url.hostname !== ''
}

interface Family { kind: WanServiceKind, prefix: string, legacy: boolean, rank: number }

/**
 * Candidate order, after tailscale's selectBestService: standard WANIPConnection, then
 * WANPPPConnection (PPPoE links), then the legacy dslforum types. Versions match by prefix, so
 * the LiveBox's non-standard WANPPPConnection:2 is found too (miniupnpc testdesc).
 */
const FAMILIES: readonly Family[] = [
  { kind: 'WANIPConnection', prefix: TypePrefix.WANIPConnection, legacy: false, rank: 0 },
  { kind: 'WANPPPConnection', prefix: TypePrefix.WANPPPConnection, legacy: false, rank: 1 },
  { kind: 'WANIPConnection', prefix: TypePrefix.DslForumWANIPConnection, legacy: true, rank: 2 },
  { kind: 'WANPPPConnection', prefix: TypePrefix.DslForumWANPPPConnection, legacy: true, rank: 3 }
]

/**
 * Every WAN connection service in the tree, embedded devices included, best first: by family
 * (see FAMILIES), then higher version first (WANIPConnection:2 before :1), then document order.
 * Which of several is connected and has a usable address takes network calls (GetStatusInfo,
 * GetExternalIPAddress; a MikroTik may list a disconnected WAN first, tailscale#8364), so that
 * choice is the client's. Services without a control URL are left out; none found gives [].
 */
export function findWanServices (root: UpnpDevice): WanServiceCandidate[] {
  const found: Array<{ candidate: WanServiceCandidate, rank: number, order: number }> = []
  const rootIgd = igdVersionOf(root.deviceType)
  const walk = (device: UpnpDevice, path: readonly string[], igd: 1 | 2 | undefined): void => {
    const here = [...path, device.deviceType]
    const igdHere = igd ?? igdVersionOf(device.deviceType)
    for (const service of device.services) {
      const family = FAMILIES.find((f) => service.serviceType.startsWith(f.prefix))
      if (family === undefined || service.controlURL === undefined) continue
      const serviceVersion = versionOf(service.serviceType.slice(family.prefix.length))
      found.push({
        rank: family.rank,
        order: found.length,
        candidate: {
          kind: family.kind,
          serviceType: service.serviceType,
          serviceVersion,
          legacy: family.legacy,
          // A root that is not an IGD (or has no type) borrows the nearest IGD above the service;
          // failing that, WANIPConnection:2 exists only in IGD v2.
          igdVersion: igdHere ?? (family.kind === 'WANIPConnection' && !family.legacy && serviceVersion >= 2 ? 2 : 1),
          controlURL: service.controlURL,
          devicePath: here,
          deviceUDN: device.UDN,
          service
        }
      })
    }
    for (const child of device.devices) walk(child, here, igdHere)
  }
  walk(root, [], rootIgd)
  found.sort((a, b) => a.rank - b.rank || b.candidate.serviceVersion - a.candidate.serviceVersion || a.order - b.order)
  return found.map((f) => f.candidate)
}

function igdVersionOf (deviceType: string): 1 | 2 | undefined {
  if (!deviceType.startsWith(TypePrefix.InternetGatewayDevice)) return undefined
  return versionOf(deviceType.slice(TypePrefix.InternetGatewayDevice.length)) >= 2 ? 2 : 1
}

function versionOf (text: string): number {
  if (text === '' || text.length > 6) return 1
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i)
    if (c < 0x30 || c > 0x39) return 1
  }
  const version = Number(text)
  return version >= 1 ? version : 1
}

/** A WANIPv6FirewallControl service (IGD v2), where IPv6 pinholes are asked for. */
export interface FirewallServiceCandidate {
  /** Verbatim from the description: it goes into SOAPAction and the action's namespace. */
  readonly serviceType: string
  /** Absolute; the host is the one the description named, usually the router's IPv4 address. */
  readonly controlURL: string
  readonly deviceUDN: string
}

/**
 * Every WANIPv6FirewallControl service with a control URL, in document order (miniupnpd puts
 * it in the WANConnectionDevice beside WANIPConnection:2). [] when the router has none.
 */
export function findFirewallServices (root: UpnpDevice): FirewallServiceCandidate[] {
  const found: FirewallServiceCandidate[] = []
  const walk = (device: UpnpDevice): void => {
    for (const service of device.services) {
      if (!service.serviceType.startsWith(TypePrefix.WANIPv6FirewallControl) || service.controlURL === undefined) continue
      found.push({ serviceType: service.serviceType, controlURL: service.controlURL, deviceUDN: device.UDN })
    }
    for (const child of device.devices) walk(child)
  }
  walk(root)
  return found
}
