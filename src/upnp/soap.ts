import { GatewayRefusedError, RemoteProtocolError, UsageError } from '../errors.js'
import { upnpErrorName } from './codes.js'
import { clip, findDescendant, is, parseXml, type XmlElement } from './xml.js'
import { escapeXml } from './xml-escape.js'

export { escapeXml }

/**
 * UPnP control messages (UDA 1.1 §3.2): SOAP 1.1 envelopes over HTTP POST. Pure functions over
 * strings; the HTTP client sends `body` with `headers` plus Content-Length (no chunked request
 * bodies: some IGDs do not read them, as goupnp notes) and hands the reply body back here
 * whatever the HTTP status, because a fault comes with status 500.
 *
 *   POST <controlURL> HTTP/1.1
 *   Content-Type: text/xml; charset="utf-8"
 *   SOAPAction: "urn:schemas-upnp-org:service:WANIPConnection:1#GetExternalIPAddress"
 *
 *   <?xml version="1.0"?>
 *   <s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/" s:encodingStyle="...">
 *     <s:Body><u:ACTION xmlns:u="SERVICE-TYPE"><ARG>value</ARG>...</u:ACTION></s:Body>
 *   </s:Envelope>
 *
 * The XML itself is read by xml.ts (saxes, entities and DTDs inert).
 */

/** SOAP 1.1 envelope namespace and encoding style, as UDA 1.1 §3.2.1 requires them. */
export const SOAP_ENVELOPE_NAMESPACE = 'http://schemas.xmlsoap.org/soap/envelope/'
export const SOAP_ENCODING_STYLE = 'http://schemas.xmlsoap.org/soap/encoding/'
/** Namespace of `<UPnPError>` in a fault's detail. */
export const UPNP_CONTROL_NAMESPACE = 'urn:schemas-upnp-org:control-1-0'

/** A control reply is a few hundred bytes; 64 Ki characters leaves room and bounds the work. */
export const MAX_SOAP_CHARS = 64 * 1024

/** One control request, ready for the HTTP layer: POST `body` with `headers` to the control URL. */
export interface SoapRequest {
  readonly serviceType: string
  readonly action: string
  /** The XML document to POST. */
  readonly body: string
  /**
   * Exactly these names and values. The SOAPAction value is quoted: older miniupnpd refused it
   * unquoted (goupnp PR #5), and a router is known to serve its login page for a header spelled
   * `Soapaction` (jupnp#120), so an HTTP layer must not re-case header names.
   */
  readonly headers: {
    readonly 'Content-Type': 'text/xml; charset="utf-8"'
    readonly SOAPAction: string
  }
}

/** `<UPnPError>` from a SOAP fault's detail (UDA 1.1 §3.2.2). */
export interface SoapFault {
  readonly errorCode: number
  readonly errorDescription: string
}

/** A control request as a device receives it; for simulated gateways. */
export interface ParsedSoapRequest {
  readonly serviceType: string
  readonly action: string
  /** In document order, names without prefix, values as sent (not trimmed). */
  readonly args: Array<[string, string]>
}

/**
 * The body and headers for one action. Arguments go out in the given order, which should be the
 * order of the service description: some routers read them by position. Values are XML-escaped;
 * a value XML 1.0 cannot carry (control characters, lone surrogates) is a UsageError.
 */
export function encodeSoapRequest (serviceType: string, action: string, args: ReadonlyArray<readonly [string, string]>): SoapRequest {
  checkServiceType(serviceType)
  checkName(action, 'action')
  return {
    serviceType,
    action,
    body: envelope(`<u:${action} xmlns:u="${serviceType}">${encodeArgs(args)}</u:${action}>`),
    headers: { 'Content-Type': 'text/xml; charset="utf-8"', SOAPAction: `"${serviceType}#${action}"` }
  }
}

/** The body of a successful reply, `<u:ACTIONResponse>`; for simulated gateways (send with status 200). */
export function encodeSoapResponse (serviceType: string, action: string, args: ReadonlyArray<readonly [string, string]>): string {
  checkServiceType(serviceType)
  checkName(action, 'action')
  return envelope(`<u:${action}Response xmlns:u="${serviceType}">${encodeArgs(args)}</u:${action}Response>`)
}

/** The body of a UPnP fault (UDA 1.1 §3.2.2); for simulated gateways (send with status 500). */
export function encodeSoapFault (errorCode: number, errorDescription: string = upnpErrorName(errorCode)): string {
  if (!Number.isSafeInteger(errorCode)) throw new UsageError(`UPnP error code must be an integer, got ${errorCode}`)
  return envelope('<s:Fault><faultcode>s:Client</faultcode><faultstring>UPnPError</faultstring><detail>' +
    `<UPnPError xmlns="${UPNP_CONTROL_NAMESPACE}"><errorCode>${errorCode}</errorCode>` +
    `<errorDescription>${escapeXml(errorDescription)}</errorDescription></UPnPError></detail></s:Fault>`)
}

function envelope (content: string): string {
  // The compact form miniupnpc has sent to every IGD for years; no whitespace between elements.
  return `<?xml version="1.0"?>\r\n<s:Envelope xmlns:s="${SOAP_ENVELOPE_NAMESPACE}" s:encodingStyle="${SOAP_ENCODING_STYLE}">` +
    `<s:Body>${content}</s:Body></s:Envelope>\r\n`
}

function encodeArgs (args: ReadonlyArray<readonly [string, string]>): string {
  return args.map(([name, value]) => {
    checkName(name, 'argument name')
    return `<${name}>${escapeXml(value)}</${name}>`
  }).join('')
}

/**
 * The arguments of `<ACTIONResponse>` as a record (names without prefix, values as sent, an
 * empty element giving ''). The response element may have any prefix and any namespace; only its
 * local name must be ACTIONResponse. A UPnP fault in the body throws GatewayRefusedError with
 * the fault's code, so callers can pass every reply here whatever its HTTP status. Anything else
 * (not XML, no envelope, another element) throws RemoteProtocolError.
 */
export function parseSoapResponse (xml: string, serviceType: string, action: string): Record<string, string> {
  const body = soapBody(parseXml(xml, 'SOAP response', MAX_SOAP_CHARS))
  const element = body.children[0]
  if (element === undefined) throw new RemoteProtocolError(`SOAP response to ${action} has an empty Body`)
  if (is(element, 'Fault')) {
    const fault = faultOf(element)
    throw new GatewayRefusedError('upnp', fault.errorCode, upnpErrorName(fault.errorCode),
      `${action} on ${serviceType}${fault.errorDescription === '' ? '' : `: ${clip(fault.errorDescription)}`}`)
  }
  if (!is(element, `${action}Response`)) {
    throw new RemoteProtocolError(`SOAP response to ${action} on ${serviceType} holds <${clip(element.name)}>, not <${action}Response>`)
  }
  // An argument's value is its direct text: markup a router echoes back unescaped (a mapping
  // description, say) is dropped the way parseXml recovers it, rather than failing the reply.
  const args: Record<string, string> = Object.create(null) as Record<string, string>
  for (const child of element.children) if (!(child.local in args)) args[child.local] = child.text
  return args
}

/**
 * The UPnP error of a fault reply, or undefined when the body holds no Fault. `errorCode` is read
 * wherever it sits inside the Fault (normally Fault/detail/UPnPError). A Fault without a numeric
 * errorCode, or a reply that is not a SOAP envelope, throws RemoteProtocolError.
 */
export function parseSoapFault (xml: string): SoapFault | undefined {
  const body = soapBody(parseXml(xml, 'SOAP response', MAX_SOAP_CHARS))
  const fault = body.children.find((child) => is(child, 'Fault'))
  return fault === undefined ? undefined : faultOf(fault)
}

/** A control request's service type (the action element's namespace), action and arguments; for simulated gateways. */
export function parseSoapRequest (xml: string): ParsedSoapRequest {
  const body = soapBody(parseXml(xml, 'SOAP request', MAX_SOAP_CHARS))
  const element = body.children[0]
  if (element === undefined) throw new RemoteProtocolError('SOAP request has an empty Body')
  if (element.namespace === undefined || element.namespace === '') {
    throw new RemoteProtocolError(`SOAP request action <${clip(element.name)}> has no namespace (the service type)`)
  }
  const args: Array<[string, string]> = []
  for (const child of element.children) {
    if (child.children.length > 0) throw new RemoteProtocolError(`SOAP request: argument <${clip(child.name)}> has child elements`)
    args.push([child.local, child.text])
  }
  return { serviceType: element.namespace, action: element.local, args }
}

/**
 * Splits a SOAPAction header value, `"urn:...:WANIPConnection:1#AddPortMapping"`. `quoted` tells
 * whether the value had the quotes UDA requires, so a simulated gateway can refuse it without.
 */
export function parseSoapActionHeader (value: string): { serviceType: string, action: string, quoted: boolean } {
  let text = value.trim()
  const quoted = text.length >= 2 && text.startsWith('"') && text.endsWith('"')
  if (quoted) text = text.slice(1, -1)
  const hash = text.lastIndexOf('#')
  if (hash <= 0 || hash === text.length - 1) throw new RemoteProtocolError(`SOAPAction is not "<service type>#<action>": ${JSON.stringify(value.slice(0, 120))}`)
  return { serviceType: text.slice(0, hash), action: text.slice(hash + 1), quoted }
}

function soapBody (root: XmlElement): XmlElement {
  if (!is(root, 'Envelope')) throw new RemoteProtocolError(`not a SOAP envelope: root element is <${clip(root.name)}>`)
  const body = root.children.find((child) => is(child, 'Body'))
  if (body === undefined) throw new RemoteProtocolError('SOAP envelope has no Body')
  return body
}

function faultOf (fault: XmlElement): SoapFault {
  const code = findDescendant(fault, 'errorCode')
  if (code === undefined) {
    const faultString = findDescendant(fault, 'faultstring')?.text.trim() ?? ''
    throw new RemoteProtocolError(`SOAP fault without a UPnP errorCode${faultString === '' ? '' : `: ${faultString.slice(0, 200)}`}`)
  }
  const text = code.text.trim()
  const errorCode = isInteger(text) ? Number(text) : NaN
  if (!Number.isSafeInteger(errorCode)) throw new RemoteProtocolError(`SOAP fault errorCode is not an integer: ${JSON.stringify(text.slice(0, 40))}`)
  // errorDescription is a sibling of errorCode inside UPnPError.
  const description = code.parent?.children.find((child) => is(child, 'errorDescription'))
  return { errorCode, errorDescription: description?.text.trim() ?? '' }
}

function isInteger (text: string): boolean {
  const digits = text.startsWith('-') || text.startsWith('+') ? text.slice(1) : text
  if (digits === '' || digits.length > 15) return false
  for (let i = 0; i < digits.length; i++) {
    const c = digits.charCodeAt(i)
    if (c < 0x30 || c > 0x39) return false
  }
  return true
}

function checkServiceType (serviceType: string): void {
  if (serviceType === '') throw new UsageError('service type must not be empty')
  for (let i = 0; i < serviceType.length; i++) {
    const c = serviceType.charCodeAt(i)
    if (c <= 0x20 || c === 0x7f || c === 0x22 || c === 0x26 || c === 0x27 || c === 0x3c || c === 0x3e || c === 0x23) {
      throw new UsageError(`service type has a character that cannot go into a SOAPAction header or an XML attribute: ${JSON.stringify(serviceType)}`)
    }
  }
}

/** ASCII XML names without a colon: what UPnP action and argument names are. */
function checkName (name: string, what: string): void {
  let ok = name !== '' && name.length <= 256
  for (let i = 0; ok && i < name.length; i++) {
    const c = name.charCodeAt(i)
    const letter = (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a) || c === 0x5f
    ok = letter || (i > 0 && ((c >= 0x30 && c <= 0x39) || c === 0x2d || c === 0x2e))
  }
  if (!ok) throw new UsageError(`${what} is not an XML name: ${JSON.stringify(name)}`)
}
