import { createRequire } from 'node:module'
import type { SaxesParser as SaxesParserType } from 'saxes'
import { NatmapperError, RemoteProtocolError } from '../errors.js'

/**
 * The small XML reader the UPnP codecs share (device descriptions, SOAP envelopes): saxes
 * underneath, which keeps a DOCTYPE as inert text and refuses every entity but the five
 * predefined ones, so entity expansion ("billion laughs") and external entities cannot happen.
 * A tree of elements with their direct text is all UPnP needs; names are compared without
 * prefix and without regard to case. Internal to src/upnp.
 */

/**
 * saxes is loaded on first use, not at import: it would be most of natmapper's import time
 * (BENCHMARKS.md, benchmark 6), and a program whose router speaks PCP or NAT-PMP never parses XML.
 */
let saxesModule: { SaxesParser: typeof SaxesParserType } | undefined
function saxes (): { SaxesParser: typeof SaxesParserType } {
  saxesModule ??= createRequire(import.meta.url)('saxes') as { SaxesParser: typeof SaxesParserType }
  return saxesModule
}

/** Loads saxes now, while the caller waits for the network anyway (UPnP discovery's SSDP wait). */
export function preloadXmlParser (): void {
  // A failure shows, with its reason, when a description is parsed.
  try { saxes() } catch {}
}

/** One element: names with and without prefix, the namespace its prefix is bound to, direct text. */
export interface XmlElement {
  readonly name: string
  readonly local: string
  /** Undefined when the prefix is bound nowhere: routers forget declarations, and names are enough. */
  readonly namespace: string | undefined
  readonly parent: XmlElement | undefined
  readonly children: XmlElement[]
  /** Concatenated text and CDATA directly inside this element, entities decoded, untrimmed. */
  text: string
}

const MAX_DEPTH = 64
const MAX_ELEMENTS = 20_000

/**
 * Parses a whole document into elements. Refuses, with RemoteProtocolError: more than `maxChars`
 * characters (checked before any parsing), anything not well-formed (but see the one recovery
 * below), entity references other
 * than the predefined five and character references, nesting deeper than 64, more than 20,000
 * elements. A DOCTYPE is tolerated and ignored (never expanded). A leading BOM or whitespace
 * and trailing NULs (some embedded servers count a C string's terminator) are stripped first.
 */
export function parseXml (xml: string, what: string, maxChars: number): XmlElement {
  if (typeof xml !== 'string') throw new RemoteProtocolError(`${what} is not text`)
  if (xml.length > maxChars) throw new RemoteProtocolError(`${what} is ${xml.length} characters, more than the ${maxChars} allowed`)
  let start = 0
  while (start < xml.length && isXmlSpaceOrBom(xml.charCodeAt(start))) start++
  let end = xml.length
  while (end > start && (xml.charCodeAt(end - 1) === 0 || isXmlSpaceOrBom(xml.charCodeAt(end - 1)))) end--
  const text = start === 0 && end === xml.length ? xml : xml.slice(start, end)

  const parser = new (saxes().SaxesParser)({})
  let root: XmlElement | undefined
  let current: XmlElement | undefined
  let depth = 0
  let count = 0
  // Namespace bindings in scope, one frame per open element.
  const scopes: Array<Map<string, string>> = [new Map()]
  parser.on('opentag', (tag) => {
    if (++depth > MAX_DEPTH) throw new RemoteProtocolError(`${what} nests elements deeper than ${MAX_DEPTH}`)
    if (++count > MAX_ELEMENTS) throw new RemoteProtocolError(`${what} has more than ${MAX_ELEMENTS} elements`)
    const outer = scopes[scopes.length - 1]!
    let scope = outer
    for (const [attribute, value] of Object.entries(tag.attributes)) {
      if (attribute !== 'xmlns' && !attribute.startsWith('xmlns:')) continue
      if (scope === outer) scope = new Map(outer)
      scope.set(attribute === 'xmlns' ? '' : attribute.slice(6), value)
    }
    scopes.push(scope)
    const colon = tag.name.indexOf(':')
    const prefix = colon === -1 ? '' : tag.name.slice(0, colon)
    const element: XmlElement = {
      name: tag.name,
      local: colon === -1 ? tag.name : tag.name.slice(colon + 1),
      namespace: scope.get(prefix),
      parent: current,
      children: [],
      text: ''
    }
    if (current === undefined) root = element
    else current.children.push(element)
    current = element
  })
  parser.on('closetag', () => {
    depth--
    scopes.pop()
    current = current?.parent
  })
  // One recovery, for markup that firmware pastes into text unescaped: a close tag that matches
  // an ancestor closes the elements left open in between (saxes reports each as "unexpected close
  // tag" and carries on). TP-Link's miniupnpd put "getfirm <info>" into friendlyName
  // (home-assistant#71138); an Archer C8 sent a fault whose </errorDescription> came out garbled
  // (TinyUPnP#1). Every other well-formedness error stays fatal.
  parser.on('error', (err) => {
    if (err.message.endsWith('unexpected close tag.')) return
    // Clipped: saxes quotes names from the document (an unmatched close tag, a duplicate
    // attribute), and a hostile device can make one as long as the whole document.
    throw new RemoteProtocolError(`${what} is not well-formed XML: ${clip(err.message)}`, { cause: err })
  })
  parser.on('text', (chunk) => { if (current !== undefined) current.text += chunk })
  parser.on('cdata', (chunk) => { if (current !== undefined) current.text += chunk })
  try {
    parser.write(text).close()
  } catch (err) {
    if (err instanceof NatmapperError) throw err
    throw new RemoteProtocolError(`${what} is not well-formed XML: ${clip(err instanceof Error ? err.message : String(err))}`, { cause: err })
  }
  if (root === undefined) throw new RemoteProtocolError(`${what} has no root element`)
  return root
}

function isXmlSpaceOrBom (c: number): boolean {
  return c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d || c === 0xfeff
}

/** Compares an element's local name, ignoring case: router firmware is not careful about it. */
export function is (element: XmlElement, local: string): boolean {
  return element.local === local || element.local.toLowerCase() === local.toLowerCase()
}

/** The first element named `local` below `element`, depth first in document order. */
export function findDescendant (element: XmlElement, local: string): XmlElement | undefined {
  const stack = [...element.children].reverse()
  while (stack.length > 0) {
    const next = stack.pop()!
    if (is(next, local)) return next
    for (let i = next.children.length - 1; i >= 0; i--) stack.push(next.children[i]!)
  }
  return undefined
}

/** Router text in an error message, cut to a length a log line can take. */
export function clip (text: string, max = 200): string {
  return text.length <= max ? text : `${text.slice(0, max)}...`
}
