import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import fc from 'fast-check'
import { MalformedPacketError, UsageError } from '../../src/errors.js'
import { MAX_SSDP_MESSAGE_BYTES, parseSsdpMessage, type SsdpMessage } from '../../src/upnp/ssdp-codec.js'
import { encodeMSearch, encodeNotify, encodeSsdpResponse, type NotifyFields } from '../../src/upnp/ssdp-encode.js'

const fixtures = new URL('../../../test/fixtures/routers/', import.meta.url)

/**
 * A datagram fixture: leading "# " lines say where it came from and are dropped; the rest is the
 * datagram, with LF turned into CRLF unless a "# line-endings: lf" line says otherwise.
 */
function datagram (name: string): Uint8Array {
  const lines = readFileSync(new URL(name, fixtures), 'utf8').split('\n')
  let i = 0
  let crlf = true
  while (lines[i]?.startsWith('# ') === true) {
    if (lines[i] === '# line-endings: lf') crlf = false
    i++
  }
  return new TextEncoder().encode(lines.slice(i).join(crlf ? '\r\n' : '\n'))
}

const text = (s: string): Uint8Array => new TextEncoder().encode(s)
const ascii = (bytes: Uint8Array): string => new TextDecoder().decode(bytes)

function withoutHeaders (message: SsdpMessage): Record<string, unknown> {
  const { headers: _headers, ...rest } = message
  return rest
}

test('M-SEARCH: the exact UDA 1.1 bytes, MX 1 and the multicast HOST by default', () => {
  assert.equal(ascii(encodeMSearch({ searchTarget: 'urn:schemas-upnp-org:device:InternetGatewayDevice:1' })),
    'M-SEARCH * HTTP/1.1\r\n' +
    'HOST: 239.255.255.250:1900\r\n' +
    'MAN: "ssdp:discover"\r\n' +
    'MX: 1\r\n' +
    'ST: urn:schemas-upnp-org:device:InternetGatewayDevice:1\r\n' +
    '\r\n')
})

test('M-SEARCH: MX and USER-AGENT when asked', () => {
  assert.equal(ascii(encodeMSearch({ searchTarget: 'ssdp:all', mx: 2, userAgent: 'Linux/6.1 UPnP/1.1 natmapper/0.1' })),
    'M-SEARCH * HTTP/1.1\r\nHOST: 239.255.255.250:1900\r\nMAN: "ssdp:discover"\r\nMX: 2\r\nST: ssdp:all\r\n' +
    'USER-AGENT: Linux/6.1 UPnP/1.1 natmapper/0.1\r\n\r\n')
})

test('M-SEARCH: bad inputs are UsageErrors', () => {
  for (const mx of [0, -1, 1.5, 121, Number.NaN]) {
    assert.throws(() => encodeMSearch({ searchTarget: 'ssdp:all', mx }), UsageError, `mx ${mx}`)
  }
  assert.throws(() => encodeMSearch({ searchTarget: '' }), UsageError)
  assert.throws(() => encodeMSearch({ searchTarget: 'ssdp:all\r\nX: injected' }), UsageError)
  assert.throws(() => encodeMSearch({ searchTarget: 'ssdp:all', host: '239.255.255.250:1900\n' }), UsageError)
})

test('M-SEARCH: what we send parses back as an M-SEARCH', () => {
  fc.assert(fc.property(
    fc.string({ unit: 'grapheme-ascii', minLength: 1, maxLength: 200 }).filter((s) => s.trim() !== '' && !/[\x00-\x1f\x7f]/.test(s)),
    fc.integer({ min: 1, max: 120 }),
    (st, mx) => {
      const parsed = parseSsdpMessage(encodeMSearch({ searchTarget: st, mx }))
      assert.equal(parsed.kind, 'm-search')
      if (parsed.kind !== 'm-search') return
      assert.equal(parsed.st, st.trim())
      assert.equal(parsed.mx, mx)
      assert.equal(parsed.man, '"ssdp:discover"')
      assert.equal(parsed.host, '239.255.255.250:1900')
    }), { numRuns: 500 })
})

const searchResponses: Array<[string, Record<string, unknown>]> = [
  ['miniupnpd-ssdp-reply.txt', {
    kind: 'search-response',
    location: 'http://192.168.1.1:5000/rootDesc.xml',
    st: 'urn:schemas-upnp-org:device:InternetGatewayDevice:2',
    usn: 'uuid:6f1b0a2c-1111-4e2a-9a3b-0242ac110002::urn:schemas-upnp-org:device:InternetGatewayDevice:2',
    server: 'OpenWrt/23.05 UPnP/1.1 MiniUPnPd/2.3.3',
    cacheMaxAgeSeconds: 120,
    bootId: 1700000000,
    configId: 1337,
    searchPort: undefined
  }],
  ['sagemcom-ssdp-reply.txt', {
    kind: 'search-response',
    location: 'http://192.168.0.1:49153/1a2b3c4d/gatedesc0b.xml',
    st: 'urn:schemas-upnp-org:device:InternetGatewayDevice:1',
    usn: 'uuid:75802409-7777-40e7-8e6c-fa095ecce13e::urn:schemas-upnp-org:device:InternetGatewayDevice:1',
    server: undefined, // sent empty
    cacheMaxAgeSeconds: 1800,
    bootId: undefined,
    configId: undefined,
    searchPort: undefined
  }],
  ['tplink-ssdp-ephemeral-port.txt', {
    kind: 'search-response',
    location: 'http://192.168.0.1:1900/igd.xml',
    st: 'urn:schemas-upnp-org:device:InternetGatewayDevice:1',
    usn: 'uuid:9f0d8e7c-8888-1000-0000-50c7bf000001::urn:schemas-upnp-org:device:InternetGatewayDevice:1',
    server: 'ipos/7.0 UPnP/1.0 TL-ER605/2.0',
    cacheMaxAgeSeconds: 100,
    bootId: undefined,
    configId: undefined,
    searchPort: undefined
  }],
  ['huawei-portable-sdk-ssdp-reply.txt', {
    kind: 'search-response',
    location: 'http://192.168.1.1:49652/49652gatedesc.xml',
    st: 'urn:schemas-upnp-org:device:InternetGatewayDevice:1',
    usn: 'uuid:00e0fc37-4444-2828-2500-0c31dcd93368::urn:schemas-upnp-org:device:InternetGatewayDevice:1',
    server: 'Linux/4.4.240, UPnP/1.0, Portable SDK for UPnP devices/1.12.1',
    cacheMaxAgeSeconds: 1800,
    bootId: undefined,
    configId: undefined,
    searchPort: undefined
  }],
  ['sloppy-lf-only-ssdp-reply.txt', {
    kind: 'search-response',
    location: 'http://10.0.0.138:80/IGD.xml',
    st: 'upnp:rootdevice',
    usn: 'uuid:UPnP-SpeedTouch510-1_00-90-D0-7F-AD-37::upnp:rootdevice',
    server: 'SpeedTouch 510 4.0.2.0.1 UPnP/1.0 (14E31Y7)',
    cacheMaxAgeSeconds: 300,
    bootId: 42,
    configId: undefined,
    searchPort: undefined
  }]
]

for (const [name, expected] of searchResponses) {
  test(`SSDP fixture ${name}`, () => {
    assert.deepEqual(withoutHeaders(parseSsdpMessage(datagram(name))), expected)
  })
}

test('SSDP fixture sagemcom-ssdp-reply.txt keeps the stray headers for logs', () => {
  const message = parseSsdpMessage(datagram('sagemcom-ssdp-reply.txt'))
  assert.equal(message.headers.get('user-agent'), 'redsonic')
  assert.equal(message.headers.get('01-nls'), '0f1e2d3c-1dd1-11b2-9e52-a7461e1f098e')
  assert.equal(message.headers.get('ext'), '')
})

test('SSDP fixture miniupnpd-notify-alive.txt', () => {
  assert.deepEqual(withoutHeaders(parseSsdpMessage(datagram('miniupnpd-notify-alive.txt'))), {
    kind: 'notify',
    nts: 'ssdp:alive',
    nt: 'urn:schemas-upnp-org:service:WANIPConnection:2',
    usn: 'uuid:6f1b0a2c-1111-4e2a-9a3b-0242ac110004::urn:schemas-upnp-org:service:WANIPConnection:2',
    location: 'http://192.168.1.1:5000/rootDesc.xml',
    server: 'OpenWrt/23.05 UPnP/1.1 MiniUPnPd/2.3.3',
    cacheMaxAgeSeconds: 1800,
    bootId: 1700000000,
    nextBootId: undefined,
    configId: 1337,
    searchPort: undefined
  })
})

test('SSDP fixture miniupnpd-notify-byebye.txt: no LOCATION needed', () => {
  assert.deepEqual(withoutHeaders(parseSsdpMessage(datagram('miniupnpd-notify-byebye.txt'))), {
    kind: 'notify',
    nts: 'ssdp:byebye',
    nt: 'upnp:rootdevice',
    usn: 'uuid:6f1b0a2c-1111-4e2a-9a3b-0242ac110002::upnp:rootdevice',
    location: undefined,
    server: undefined,
    cacheMaxAgeSeconds: undefined,
    bootId: 1700000000,
    nextBootId: undefined,
    configId: 1337,
    searchPort: undefined
  })
})

test('SSDP fixture notify-update.txt: NEXTBOOTID and SEARCHPORT', () => {
  const message = parseSsdpMessage(datagram('notify-update.txt'))
  assert.equal(message.kind, 'notify')
  if (message.kind !== 'notify') return
  assert.equal(message.nts, 'ssdp:update')
  assert.equal(message.bootId, 1700000000)
  assert.equal(message.nextBootId, 1700000001)
  assert.equal(message.searchPort, 1901)
  assert.equal(message.location, 'http://192.168.1.1:5000/rootDesc.xml')
})

test('SSDP fixture windows-msearch-from-other-control-point.txt', () => {
  assert.deepEqual(withoutHeaders(parseSsdpMessage(datagram('windows-msearch-from-other-control-point.txt'))), {
    kind: 'm-search', st: 'ssdp:all', mx: 3, man: '"ssdp:discover"', host: '239.255.255.250:1900'
  })
})

test('SSDP: header names are case-insensitive and the first of a repeated header wins', () => {
  const message = parseSsdpMessage(text('HTTP/1.1 200 OK\r\nlOcAtIoN: http://192.0.2.1/a.xml\r\nST: x\r\nLocation: http://192.0.2.2/b.xml\r\n\r\n'))
  assert.equal(message.kind, 'search-response')
  if (message.kind === 'search-response') assert.equal(message.location, 'http://192.0.2.1/a.xml')
})

test('SSDP: leading blank lines, folded header lines, a body and HTTP/1.0 are tolerated', () => {
  const message = parseSsdpMessage(text('\r\nHTTP/1.0 200\r\nSERVER: Linux/5.4\r\n  UPnP/1.0 x/1\r\nLOCATION: http://192.0.2.1/a.xml\r\nST: x\r\n\r\nbody bytes\r\n'))
  assert.equal(message.kind, 'search-response')
  if (message.kind === 'search-response') assert.equal(message.server, 'Linux/5.4 UPnP/1.0 x/1')
})

test('SSDP: a search response without ST or USN is still usable', () => {
  const message = parseSsdpMessage(text('HTTP/1.1 200 OK\r\nLOCATION: http://192.0.2.1/\r\n\r\n'))
  assert.equal(message.kind, 'search-response')
  if (message.kind !== 'search-response') return
  assert.equal(message.st, undefined)
  assert.equal(message.usn, undefined)
})

test('SSDP: unreadable optional headers become undefined instead of failing the message', () => {
  const message = parseSsdpMessage(text('HTTP/1.1 200 OK\r\nLOCATION: http://192.0.2.1/\r\nST: x\r\nCACHE-CONTROL: forever\r\n' +
    'BOOTID.UPNP.ORG: -1\r\nCONFIGID.UPNP.ORG: 2147483648\r\nSEARCHPORT.UPNP.ORG: 70000\r\n\r\n'))
  assert.equal(message.kind, 'search-response')
  if (message.kind !== 'search-response') return
  assert.equal(message.cacheMaxAgeSeconds, undefined)
  assert.equal(message.bootId, undefined)
  assert.equal(message.configId, undefined)
  assert.equal(message.searchPort, undefined)
})

const malformed: Array<[string, Uint8Array, string, number | undefined]> = [
  ['empty datagram', new Uint8Array(0), 'empty datagram', 0],
  ['only blank lines', text('\r\n\r\n'), 'no start line', 4],
  ['too large', new Uint8Array(MAX_SSDP_MESSAGE_BYTES + 1).fill(0x41), 'larger than the 8192 allowed', MAX_SSDP_MESSAGE_BYTES],
  ['404 status', text('HTTP/1.1 404 Not Found\r\n\r\n'), 'status "404" is not 200', 0],
  ['HTTP/2', text('HTTP/2 200 OK\r\n\r\n'), 'unsupported protocol version', 0],
  ['a GET request', text('GET / HTTP/1.1\r\nHost: x\r\n\r\n'), 'not an SSDP start line', 0],
  ['an unknown method', text('SUBSCRIBE * HTTP/1.1\r\n\r\n'), 'unknown SSDP method', 0],
  ['no LOCATION', text('HTTP/1.1 200 OK\r\nST: x\r\n\r\n'), 'missing LOCATION header', undefined],
  ['empty LOCATION', text('HTTP/1.1 200 OK\r\nLOCATION:\r\nST: x\r\n\r\n'), 'missing LOCATION header', undefined],
  ['relative LOCATION', text('HTTP/1.1 200 OK\r\nLOCATION: /rootDesc.xml\r\nST: x\r\n\r\n'), 'not an absolute http URL', undefined],
  ['ftp LOCATION', text('HTTP/1.1 200 OK\r\nLOCATION: ftp://192.0.2.1/x\r\nST: x\r\n\r\n'), 'not an absolute http URL', undefined],
  ['header without colon', text('HTTP/1.1 200 OK\r\nST upnp-rootdevice\r\n\r\n'), 'header line without a colon', 17],
  ['empty header name', text('HTTP/1.1 200 OK\r\n: x\r\n\r\n'), 'bad header name', 17],
  ['space inside a header name', text('HTTP/1.1 200 OK\r\nCACHE CONTROL: x\r\n\r\n'), 'bad header name', 17],
  ['NUL byte', text('HTTP/1.1 200 OK\r\nST: a\u0000b\r\n\r\n'), 'control byte 0x00', 22],
  ['lone CR', text('HTTP/1.1 200 OK\rST: x\r\n\r\n'), 'control byte 0x0d', 15],
  ['fold before any header', text('HTTP/1.1 200 OK\r\n  folded\r\n\r\n'), 'continuation line without a header', 17],
  ['unknown NTS', text('NOTIFY * HTTP/1.1\r\nNT: x\r\nNTS: ssdp:propchange\r\n\r\n'), 'unknown NTS', undefined],
  ['alive without LOCATION', text('NOTIFY * HTTP/1.1\r\nNT: x\r\nNTS: ssdp:alive\r\n\r\n'), 'missing LOCATION header', undefined],
  ['NOTIFY without NT', text('NOTIFY * HTTP/1.1\r\nNTS: ssdp:byebye\r\n\r\n'), 'missing NT header', undefined],
  ['M-SEARCH without ST', text('M-SEARCH * HTTP/1.1\r\nMAN: "ssdp:discover"\r\n\r\n'), 'missing ST header', undefined]
]

for (const [label, bytes, reason, offset] of malformed) {
  test(`SSDP refuses ${label}`, () => {
    assert.throws(() => parseSsdpMessage(bytes), (err: unknown) => {
      assert.ok(err instanceof MalformedPacketError, String(err))
      assert.ok(err.reason.includes(reason), `reason ${JSON.stringify(err.reason)} should include ${JSON.stringify(reason)}`)
      assert.equal(err.offset, offset ?? bytes.length)
      return true
    })
  })
}

test('SSDP: router text quoted in a refusal is clipped', () => {
  // Found by fuzz/targets.ts: the shrunk input is tplink-ssdp-ephemeral-port.txt with 0xfe and 949
  // bytes of 0xff inserted before the status code, and the whole "status" came back in the
  // message (up to the 8 KiB datagram limit) where every other refusal quotes at most 80 characters.
  const fixture = datagram('tplink-ssdp-ephemeral-port.txt')
  assert.equal(ascii(fixture.subarray(0, 12)), 'HTTP/1.1 200')
  const bytes = new Uint8Array(fixture.length + 950)
  bytes.set(fixture.subarray(0, 9))
  bytes[9] = 0xfe
  bytes.fill(0xff, 10, 959)
  bytes.set(fixture.subarray(9), 959)
  assert.throws(() => parseSsdpMessage(bytes), (err: unknown) => {
    assert.ok(err instanceof MalformedPacketError, String(err))
    assert.match(err.reason, /^status ".+" is not 200$/)
    assert.ok(err.message.length < 200, `${err.message.length} characters`)
    return true
  })
})

test('search response: encode then parse gives the same fields back', () => {
  const fields = {
    location: 'http://192.168.1.1:5000/rootDesc.xml',
    st: 'urn:schemas-upnp-org:device:InternetGatewayDevice:2',
    usn: 'uuid:6f1b0a2c-1111-4e2a-9a3b-0242ac110002::urn:schemas-upnp-org:device:InternetGatewayDevice:2',
    server: 'Linux/6.1 UPnP/1.1 natmapper-sim/0.1',
    cacheMaxAgeSeconds: 120,
    bootId: 7,
    configId: 1337,
    searchPort: 1901
  }
  const bytes = encodeSsdpResponse(fields)
  assert.equal(ascii(bytes),
    'HTTP/1.1 200 OK\r\nCACHE-CONTROL: max-age=120\r\nEXT:\r\nLOCATION: http://192.168.1.1:5000/rootDesc.xml\r\n' +
    'SERVER: Linux/6.1 UPnP/1.1 natmapper-sim/0.1\r\nST: urn:schemas-upnp-org:device:InternetGatewayDevice:2\r\n' +
    `USN: ${fields.usn}\r\nBOOTID.UPNP.ORG: 7\r\nCONFIGID.UPNP.ORG: 1337\r\nSEARCHPORT.UPNP.ORG: 1901\r\n\r\n`)
  assert.deepEqual(withoutHeaders(parseSsdpMessage(bytes)), { kind: 'search-response', ...fields })
})

test('search response: defaults to max-age 1800 and refuses a bad LOCATION', () => {
  const parsed = parseSsdpMessage(encodeSsdpResponse({ location: 'http://192.0.2.1/d.xml', st: 'upnp:rootdevice', usn: 'uuid:x', server: 's' }))
  assert.equal(parsed.kind === 'search-response' && parsed.cacheMaxAgeSeconds, 1800)
  assert.throws(() => encodeSsdpResponse({ location: '/d.xml', st: 'x', usn: 'u', server: 's' }), UsageError)
  assert.throws(() => encodeSsdpResponse({ location: 'http://192.0.2.1/', st: 'x', usn: 'u', server: 's', bootId: -1 }), UsageError)
  assert.throws(() => encodeSsdpResponse({ location: 'http://192.0.2.1/', st: 'x', usn: 'u', server: 's', searchPort: 0 }), UsageError)
})

test('NOTIFY: encode then parse, for each sub-type', () => {
  const cases: Array<[NotifyFields, Record<string, unknown>]> = [
    [{ nts: 'ssdp:alive', nt: 'upnp:rootdevice', usn: 'uuid:a::upnp:rootdevice', location: 'http://192.0.2.1:5000/rootDesc.xml', server: 'x/1 UPnP/1.1 y/2', bootId: 5, configId: 9 },
      { nts: 'ssdp:alive', nt: 'upnp:rootdevice', usn: 'uuid:a::upnp:rootdevice', location: 'http://192.0.2.1:5000/rootDesc.xml', server: 'x/1 UPnP/1.1 y/2', cacheMaxAgeSeconds: 1800, bootId: 5, nextBootId: undefined, configId: 9, searchPort: undefined }],
    [{ nts: 'ssdp:byebye', nt: 'upnp:rootdevice', usn: 'uuid:a::upnp:rootdevice', bootId: 5 },
      { nts: 'ssdp:byebye', nt: 'upnp:rootdevice', usn: 'uuid:a::upnp:rootdevice', location: undefined, server: undefined, cacheMaxAgeSeconds: undefined, bootId: 5, nextBootId: undefined, configId: undefined, searchPort: undefined }],
    [{ nts: 'ssdp:update', nt: 'upnp:rootdevice', usn: 'uuid:a::upnp:rootdevice', location: 'http://192.0.2.1:5000/rootDesc.xml', bootId: 5, nextBootId: 6, searchPort: 1901 },
      { nts: 'ssdp:update', nt: 'upnp:rootdevice', usn: 'uuid:a::upnp:rootdevice', location: 'http://192.0.2.1:5000/rootDesc.xml', server: undefined, cacheMaxAgeSeconds: undefined, bootId: 5, nextBootId: 6, configId: undefined, searchPort: 1901 }]
  ]
  for (const [fields, expected] of cases) {
    const bytes = encodeNotify(fields)
    assert.ok(ascii(bytes).startsWith('NOTIFY * HTTP/1.1\r\nHOST: 239.255.255.250:1900\r\n'))
    assert.ok(ascii(bytes).endsWith('\r\n\r\n'))
    assert.deepEqual(withoutHeaders(parseSsdpMessage(bytes)), { kind: 'notify', ...expected })
  }
})

test('NOTIFY byebye carries no LOCATION, CACHE-CONTROL or SERVER', () => {
  const wire = ascii(encodeNotify({ nts: 'ssdp:byebye', nt: 'upnp:rootdevice', usn: 'uuid:a::upnp:rootdevice' }))
  assert.equal(wire, 'NOTIFY * HTTP/1.1\r\nHOST: 239.255.255.250:1900\r\nNT: upnp:rootdevice\r\nNTS: ssdp:byebye\r\nUSN: uuid:a::upnp:rootdevice\r\n\r\n')
})

test('search response: a round trip for any printable field values', () => {
  const printable = fc.string({ unit: 'grapheme-ascii', minLength: 1, maxLength: 100 }).filter((s) => s.trim() === s && s !== '' && !/[\x00-\x1f\x7f]/.test(s))
  fc.assert(fc.property(printable, printable, printable, fc.integer({ min: 0, max: 0x7fffffff }), (st, usn, server, bootId) => {
    const fields = { location: 'http://192.0.2.1:49152/desc.xml', st, usn, server, cacheMaxAgeSeconds: 1800, bootId, configId: 1, searchPort: undefined }
    assert.deepEqual(withoutHeaders(parseSsdpMessage(encodeSsdpResponse(fields))), { kind: 'search-response', ...fields })
  }), { numRuns: 500 })
})
