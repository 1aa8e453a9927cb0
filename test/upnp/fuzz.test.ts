import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync, readdirSync } from 'node:fs'
import { performance } from 'node:perf_hooks'
import fc from 'fast-check'
import { GatewayRefusedError, MalformedPacketError, RemoteProtocolError } from '../../src/errors.js'
import { parseSsdpMessage } from '../../src/upnp/ssdp-codec.js'
import { findWanServices, parseDescription } from '../../src/upnp/description.js'
import { parseSoapFault, parseSoapRequest, parseSoapResponse } from '../../src/upnp/soap.js'
import {
  decodeAddAnyPortMapping, decodeGetExternalIPAddress, decodeGetSpecificPortMappingEntry, decodeGetStatusInfo
} from '../../src/upnp/actions.js'

/**
 * The decode contract (STYLE.md §3), proved with fast-check: whatever comes off the wire, a UPnP
 * codec returns a value or throws its own typed error (MalformedPacketError for SSDP,
 * RemoteProtocolError for XML, GatewayRefusedError for a well-formed UPnP fault), never a
 * TypeError or RangeError; and hostile inputs cost milliseconds.
 */

const RUNS = 2000
const fixtureDir = new URL('../../../test/fixtures/routers/', import.meta.url)
const names = readdirSync(fixtureDir).sort()
const read = (name: string): string => readFileSync(new URL(name, fixtureDir), 'utf8')
const ssdpFixtures = names.filter((n) => n.endsWith('.txt') && !n.startsWith('html'))
  .map((n) => read(n).split('\n').filter((l) => !l.startsWith('# ')).join('\r\n'))
const descriptionFixtures = names.filter((n) => n.endsWith('.xml') && readFileSync(new URL(n, fixtureDir), 'utf8').includes('<root'))
  .map(read)
const soapFixtures = names.filter((n) => n.endsWith('.xml') && read(n).includes('Envelope')).map(read)
assert.ok(ssdpFixtures.length >= 8 && descriptionFixtures.length >= 8 && soapFixtures.length >= 15)

function only (allowed: Array<new (...args: never[]) => Error>, fn: () => unknown): void {
  try {
    fn()
  } catch (err) {
    if (allowed.some((type) => err instanceof type)) return
    throw err
  }
}

/** Characters that matter to the parsers, plus anything at all. */
const interesting = fc.oneof(
  fc.constantFrom('<', '>', '/', '&', ';', ':', '"', "'", '=', '!', '[', ']', '-', '?', '#', ' ', '\n', '\r', '\t', '\u0000',
    '<!--', '-->', '<![CDATA[', ']]>', '<!DOCTYPE x [<!ENTITY e "ee">]>', '&e;', '&amp;', '&#x41;', '&#0;', 'xmlns:u="x"',
    '<s:Body>', '</s:Body>', '<device>', '</device>', '<service>', '<controlURL>', 'HTTP/1.1 200 OK', 'NOTIFY * HTTP/1.1',
    'LOCATION:', 'http://', '[', '%', '\u00e9', '\ud800', '\ufeff', '\uffff'),
  fc.string({ unit: 'binary', maxLength: 8 })
)

type Edit = { kind: 'delete' | 'insert' | 'replace' | 'truncate' | 'duplicate', at: number, length: number, text: string }
const edits = fc.array(fc.record({
  kind: fc.constantFrom('delete', 'insert', 'replace', 'truncate', 'duplicate'),
  at: fc.nat(),
  length: fc.integer({ min: 1, max: 40 }),
  text: fc.array(interesting, { maxLength: 4 }).map((parts) => parts.join(''))
}) as fc.Arbitrary<Edit>, { minLength: 1, maxLength: 6 })

function mutate (source: string, list: Edit[]): string {
  let s = source
  for (const edit of list) {
    const at = s.length === 0 ? 0 : edit.at % s.length
    switch (edit.kind) {
      case 'delete': s = s.slice(0, at) + s.slice(at + edit.length); break
      case 'insert': s = s.slice(0, at) + edit.text + s.slice(at); break
      case 'replace': s = s.slice(0, at) + edit.text + s.slice(at + edit.length); break
      case 'truncate': s = s.slice(0, at); break
      case 'duplicate': s = s.slice(0, at + edit.length) + s.slice(at, at + edit.length) + s.slice(at + edit.length); break
    }
  }
  return s
}

const utf8 = (s: string): Uint8Array => new TextEncoder().encode(s)

test(`SSDP: ${RUNS} random byte strings only ever give MalformedPacketError`, () => {
  fc.assert(fc.property(fc.uint8Array({ maxLength: 1500 }), (bytes) => {
    only([MalformedPacketError], () => parseSsdpMessage(bytes))
  }), { numRuns: RUNS })
})

test(`SSDP: ${RUNS} mutated router datagrams only ever give MalformedPacketError`, () => {
  fc.assert(fc.property(fc.constantFrom(...ssdpFixtures), edits, (source, list) => {
    only([MalformedPacketError], () => parseSsdpMessage(utf8(mutate(source, list))))
  }), { numRuns: RUNS })
})

test(`SSDP: ${RUNS} datagrams built from SSDP pieces only ever give a message or MalformedPacketError`, () => {
  const start = fc.constantFrom('HTTP/1.1 200 OK', 'HTTP/1.0 200', 'NOTIFY * HTTP/1.1', 'M-SEARCH * HTTP/1.1', 'HTTP/1.1 500 x', 'NOTIFY / HTTP/1.1', '')
  const name = fc.constantFrom('LOCATION', 'location', 'ST', 'NT', 'NTS', 'USN', 'SERVER', 'CACHE-CONTROL', 'BOOTID.UPNP.ORG',
    'CONFIGID.UPNP.ORG', 'NEXTBOOTID.UPNP.ORG', 'SEARCHPORT.UPNP.ORG', 'MX', 'MAN', 'HOST', 'EXT', ' ', '', 'X:Y')
  const value = fc.oneof(fc.constantFrom('http://192.0.2.1:5000/rootDesc.xml', 'ssdp:alive', 'ssdp:byebye', 'ssdp:update',
    'max-age=1800', 'max-age = "12"', '1337', '-1', '99999999999', 'http://[::1', 'upnp:rootdevice', '"ssdp:discover"', ''),
  fc.string({ unit: 'grapheme', maxLength: 30 }))
  const eol = fc.constantFrom('\r\n', '\n', '\r', '')
  fc.assert(fc.property(start, fc.array(fc.tuple(name, fc.constantFrom(':', ': ', ' : ', ''), value, eol), { maxLength: 12 }), eol, (first, headers, end) => {
    const text = `${first}\r\n${headers.map(([n, sep, v, e]) => `${n}${sep}${v}${e}`).join('')}${end}`
    only([MalformedPacketError], () => {
      const message = parseSsdpMessage(utf8(text))
      // What it returns is usable: an absolute LOCATION whenever one is required.
      if (message.kind === 'search-response') assert.ok(new URL(message.location).protocol.startsWith('http'))
    })
  }), { numRuns: RUNS })
})

test(`description: ${RUNS} random strings only ever give RemoteProtocolError`, () => {
  fc.assert(fc.property(fc.oneof(fc.string({ unit: 'binary', maxLength: 500 }), fc.array(interesting, { maxLength: 60 }).map((a) => a.join(''))), (text) => {
    only([RemoteProtocolError], () => findWanServices(parseDescription(text, 'http://192.0.2.1:5000/rootDesc.xml')))
  }), { numRuns: RUNS })
})

test(`description: ${RUNS} mutated router descriptions give a tree with sane candidates, or RemoteProtocolError`, () => {
  fc.assert(fc.property(fc.constantFrom(...descriptionFixtures), edits, (source, list) => {
    only([RemoteProtocolError], () => {
      const root = parseDescription(mutate(source, list), 'http://192.0.2.1:5000/rootDesc.xml')
      for (const candidate of findWanServices(root)) {
        assert.ok(/^https?:$/.test(new URL(candidate.controlURL).protocol))
        assert.ok(candidate.igdVersion === 1 || candidate.igdVersion === 2)
        assert.ok(Number.isInteger(candidate.serviceVersion) && candidate.serviceVersion >= 1)
      }
    })
  }), { numRuns: RUNS })
})

test(`description: ${RUNS} random element trees only ever give a tree or RemoteProtocolError`, () => {
  const tag = fc.constantFrom('root', 'device', 'deviceList', 'serviceList', 'service', 'serviceType', 'controlURL', 'URLBase',
    'deviceType', 'UDN', 'x:device', 'u:service', 'a')
  const text = fc.constantFrom('urn:schemas-upnp-org:service:WANIPConnection:2', 'urn:schemas-upnp-org:service:WANPPPConnection:1',
    'urn:schemas-upnp-org:device:InternetGatewayDevice:2', 'urn:dslforum-org:service:WANIPConnection:1', '/ctl', 'ctl', 'http://192.0.2.9/c',
    'http://[', '', ' ', '&amp;', '&bad;')
  const node: fc.Arbitrary<string> = fc.letrec<{ node: string }>((tie) => ({
    node: fc.oneof({ depthSize: 'small', withCrossShrink: true },
      text,
      fc.tuple(tag, fc.array(tie('node'), { maxLength: 5 })).map(([t, children]) => `<${t}>${children.join('')}</${t}>`))
  })).node
  fc.assert(fc.property(node, (body) => {
    only([RemoteProtocolError], () => findWanServices(parseDescription(`<root>${body}</root>`, 'http://192.0.2.1/')))
  }), { numRuns: RUNS })
})

test(`SOAP: ${RUNS} random strings only ever give RemoteProtocolError or GatewayRefusedError`, () => {
  fc.assert(fc.property(fc.oneof(fc.string({ unit: 'binary', maxLength: 500 }), fc.array(interesting, { maxLength: 60 }).map((a) => a.join(''))), (text) => {
    only([RemoteProtocolError, GatewayRefusedError], () => parseSoapResponse(text, 'urn:schemas-upnp-org:service:WANIPConnection:1', 'GetExternalIPAddress'))
    only([RemoteProtocolError], () => parseSoapFault(text))
    only([RemoteProtocolError], () => parseSoapRequest(text))
  }), { numRuns: RUNS })
})

test(`SOAP: ${RUNS} mutated router replies only ever give typed results or typed errors`, () => {
  const service = 'urn:schemas-upnp-org:service:WANIPConnection:1'
  fc.assert(fc.property(fc.constantFrom(...soapFixtures), edits, (source, list) => {
    const xml = mutate(source, list)
    only([RemoteProtocolError, GatewayRefusedError], () => parseSoapResponse(xml, service, 'GetExternalIPAddress'))
    only([RemoteProtocolError], () => {
      const fault = parseSoapFault(xml)
      if (fault !== undefined) assert.ok(Number.isSafeInteger(fault.errorCode))
    })
    only([RemoteProtocolError], () => parseSoapRequest(xml))
    only([RemoteProtocolError, GatewayRefusedError], () => {
      const result = decodeGetExternalIPAddress(xml, service)
      if (result.ok) assert.match(result.address, /^\d+\.\d+\.\d+\.\d+$/)
    })
    only([RemoteProtocolError, GatewayRefusedError], () => decodeGetStatusInfo(xml, service))
    only([RemoteProtocolError, GatewayRefusedError], () => {
      const port = decodeAddAnyPortMapping(xml, service)
      assert.ok(Number.isInteger(port) && port >= 1 && port <= 65535)
    })
    only([RemoteProtocolError, GatewayRefusedError], () => decodeGetSpecificPortMappingEntry(xml, service))
  }), { numRuns: RUNS })
})

function timed (fn: () => void): number {
  const start = performance.now()
  fn()
  return performance.now() - start
}

const MiB = 1024 * 1024

test('1 MiB inputs are refused at once, before any parsing', (ctx) => {
  const bytes = new Uint8Array(MiB).fill(0x41)
  const text = '<root>' + 'a'.repeat(MiB) + '</root>'
  const results = [
    timed(() => assert.throws(() => parseSsdpMessage(bytes), MalformedPacketError)),
    timed(() => assert.throws(() => parseDescription(text, 'http://192.0.2.1/'), RemoteProtocolError)),
    timed(() => assert.throws(() => parseSoapResponse(text, 'urn:x', 'A'), RemoteProtocolError)),
    timed(() => assert.throws(() => parseSoapFault(text), RemoteProtocolError)),
    timed(() => assert.throws(() => parseSoapRequest(text), RemoteProtocolError))
  ]
  ctx.diagnostic(`1 MiB refusals (ms): ${results.map((ms) => ms.toFixed(3)).join(', ')}`)
  for (const ms of results) assert.ok(ms < 50, `${ms} ms`)
})

test('the largest accepted inputs of the worst shapes parse in milliseconds', (ctx) => {
  const budget = 256 * 1024 - 100
  const services = '<service><serviceType>urn:schemas-upnp-org:service:WANIPConnection:1</serviceType><controlURL>/c</controlURL></service>'
  const shapes: Record<string, string> = {
    'many services': `<root><device><serviceList>${services.repeat(Math.floor(budget / services.length) - 1)}</serviceList></device></root>`,
    'one long text': `<root><device><friendlyName>${'x'.repeat(budget)}</friendlyName></device></root>`,
    'many attributes': `<root><device ${Array.from({ length: Math.floor(budget / 12) }, (_, i) => `a${i}="v"`).join(' ')}/></root>`,
    'long DOCTYPE subset': `<!DOCTYPE root [${'<!ELEMENT e ANY>'.repeat(Math.floor(budget / 16) - 1)}]><root><device/></root>`,
    'many comments': `<root><device/>${'<!--c-->'.repeat(Math.floor(budget / 8) - 2)}</root>`,
    'many char refs': `<root><device><UDN>${'&#x41;'.repeat(Math.floor(budget / 6) - 10)}</UDN></device></root>`
  }
  for (const [label, xml] of Object.entries(shapes)) {
    assert.ok(xml.length <= 256 * 1024, `${label}: ${xml.length}`)
    const ms = timed(() => only([RemoteProtocolError], () => findWanServices(parseDescription(xml, 'http://192.0.2.1/'))))
    ctx.diagnostic(`${label} (${(xml.length / 1024).toFixed(0)} KiB): ${ms.toFixed(1)} ms`)
    assert.ok(ms < 1000, `${label}: ${ms} ms`)
  }
})

test('"billion laughs" and its cousins are refused without expansion, quickly', (ctx) => {
  const levels = ['<!ENTITY lol "lol">']
  for (let i = 1; i <= 9; i++) levels.push(`<!ENTITY lol${i} "${`&lol${i === 1 ? '' : i - 1};`.repeat(10)}">`)
  const laughs = `<?xml version="1.0"?><!DOCTYPE root [${levels.join('')}]><root><device><friendlyName>&lol9;</friendlyName></device></root>`
  const quadratic = `<!DOCTYPE root [<!ENTITY a "${'a'.repeat(50_000)}">]><root><device><UDN>${'&a;'.repeat(60_000)}</UDN></device></root>`
  const external = '<!DOCTYPE root [<!ENTITY x SYSTEM "http://192.0.2.1/x">]><root><device><UDN>&x;</UDN></device></root>'
  const parameter = '<!DOCTYPE root [<!ENTITY % p SYSTEM "http://192.0.2.1/p.dtd"> %p;]><root><device/></root>'
  for (const [label, xml] of Object.entries({ laughs, quadratic, external })) {
    const before = process.memoryUsage().heapUsed
    const ms = timed(() => assert.throws(() => parseDescription(xml, 'http://192.0.2.1/'), (err: unknown) => {
      assert.ok(err instanceof RemoteProtocolError)
      assert.match(err.message, /undefined entity/)
      return true
    }))
    const grownMiB = (process.memoryUsage().heapUsed - before) / MiB
    ctx.diagnostic(`${label} (${xml.length} chars): refused in ${ms.toFixed(1)} ms, heap +${grownMiB.toFixed(1)} MiB`)
    assert.ok(ms < 200, `${label}: ${ms} ms`)
    assert.ok(grownMiB < 64, `${label}: heap grew ${grownMiB} MiB`)
    assert.throws(() => parseSoapResponse(xml, 'urn:x', 'A'), RemoteProtocolError)
  }
  // A parameter entity is never fetched or expanded: the DOCTYPE is inert text.
  assert.deepEqual(findWanServices(parseDescription(parameter, 'http://192.0.2.1/')), [])
})

test('deep nesting is cut off at depth 64, quickly', (ctx) => {
  const deep = '<root>' + '<device><deviceList>'.repeat(5_000) + '</deviceList></device>'.repeat(5_000) + '</root>'
  const ms = timed(() => assert.throws(() => parseDescription(deep, 'http://192.0.2.1/'), /deeper than 64/))
  ctx.diagnostic(`10,000-deep nesting refused in ${ms.toFixed(1)} ms`)
  assert.ok(ms < 200)
})
