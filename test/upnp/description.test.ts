import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { RemoteProtocolError, UsageError } from '../../src/errors.js'
import { findWanServices, parseDescription, MAX_DESCRIPTION_CHARS, type UpnpDevice } from '../../src/upnp/description.js'

const fixtures = new URL('../../../test/fixtures/routers/', import.meta.url)
const fixture = (name: string): string => readFileSync(new URL(name, fixtures), 'utf8')

interface Expected {
  location: string
  root: { deviceType: string, friendlyName: string, manufacturer: string, modelName: string, UDN: string }
  candidates: Array<{ kind: string, serviceType: string, serviceVersion: number, legacy: boolean, igdVersion: 1 | 2, controlURL: string, deviceUDN: string, depth: number }>
}

/** Each router description, where its SSDP LOCATION pointed, and what must come out of it. */
const table: Record<string, Expected> = {
  'miniupnpd-igd2-rootDesc.xml': {
    location: 'http://192.168.1.1:5000/rootDesc.xml',
    root: { deviceType: 'urn:schemas-upnp-org:device:InternetGatewayDevice:2', friendlyName: 'OpenWrt router', manufacturer: 'OpenWrt', modelName: 'OpenWrt router', UDN: 'uuid:6f1b0a2c-1111-4e2a-9a3b-0242ac110002' },
    candidates: [
      { kind: 'WANIPConnection', serviceType: 'urn:schemas-upnp-org:service:WANIPConnection:2', serviceVersion: 2, legacy: false, igdVersion: 2, controlURL: 'http://192.168.1.1:5000/ctl/IPConn', deviceUDN: 'uuid:6f1b0a2c-1111-4e2a-9a3b-0242ac110004', depth: 3 }
    ]
  },
  'miniupnpd-igd1-rootDesc.xml': {
    location: 'http://192.168.1.1:2189/rootDesc.xml',
    root: { deviceType: 'urn:schemas-upnp-org:device:InternetGatewayDevice:1', friendlyName: 'FreeBSD router', manufacturer: 'FreeBSD', modelName: 'FreeBSD router', UDN: 'uuid:2c9e0d6a-2222-3597-b545-0000c0a80101' },
    candidates: [
      { kind: 'WANIPConnection', serviceType: 'urn:schemas-upnp-org:service:WANIPConnection:1', serviceVersion: 1, legacy: false, igdVersion: 1, controlURL: 'http://192.168.1.1:2189/ctl/IPConn', deviceUDN: 'uuid:2c9e0d6a-2222-3597-b545-0000c0a80103', depth: 3 }
    ]
  },
  'mikrotik-first-wan-disconnected.xml': {
    location: 'http://192.168.88.1:2828/rootDesc.xml',
    root: { deviceType: 'urn:schemas-upnp-org:device:InternetGatewayDevice:1', friendlyName: 'MikroTik Router', manufacturer: 'MikroTik', modelName: 'Router OS', UDN: 'uuid:UUID-MIKROTIK-INTERNET-GATEWAY-DEVICE-' },
    // Both, in document order: which is connected takes GetStatusInfo, the client's job.
    candidates: [
      { kind: 'WANIPConnection', serviceType: 'urn:schemas-upnp-org:service:WANIPConnection:1', serviceVersion: 1, legacy: false, igdVersion: 1, controlURL: 'http://192.168.88.1:2828/upnp/control/cccccccccc/wanipconn-1', deviceUDN: 'uuid:UUID-MIKROTIK-WAN-CONNECTION-DEVICE--1', depth: 3 },
      { kind: 'WANIPConnection', serviceType: 'urn:schemas-upnp-org:service:WANIPConnection:1', serviceVersion: 1, legacy: false, igdVersion: 1, controlURL: 'http://192.168.88.1:2828/upnp/control/gggggggggg/wanipconn-7', deviceUDN: 'uuid:UUID-MIKROTIK-WAN-CONNECTION-DEVICE--7', depth: 3 }
    ]
  },
  'livebox-wanppp2.xml': {
    location: 'http://192.168.1.1:49152/gatedesc.xml',
    root: { deviceType: 'urn:schemas-upnp-org:device:InternetGatewayDevice:2', friendlyName: 'Livebox', manufacturer: 'Sagemcom', modelName: 'Livebox', UDN: 'uuid:0b5d6a74-3333-4b1f-8d1e-a0b1c2d3e4f5' },
    candidates: [
      { kind: 'WANPPPConnection', serviceType: 'urn:schemas-upnp-org:service:WANPPPConnection:2', serviceVersion: 2, legacy: false, igdVersion: 2, controlURL: 'http://192.168.1.1:49152/upnp/control/WANPPPConn1', deviceUDN: 'uuid:0b5d6a74-3333-4b1f-8d1e-a0b1c2d3e4f7', depth: 3 }
    ]
  },
  'huawei-dslforum-only.xml': {
    location: 'http://192.168.1.1:37215/rootDesc.xml',
    root: { deviceType: 'urn:dslforum-org:device:InternetGatewayDevice:1', friendlyName: 'HG531 V1', manufacturer: 'Huawei Technologies Co., Ltd.', modelName: 'HG531 V1', UDN: 'uuid:00e0fc37-4444-2828-2500-0c31dcd93368' },
    candidates: [
      { kind: 'WANIPConnection', serviceType: 'urn:dslforum-org:service:WANIPConnection:1', serviceVersion: 1, legacy: true, igdVersion: 1, controlURL: 'http://192.168.1.1:37215/upnp/control/WANIPConnection1', deviceUDN: 'uuid:00e0fc37-4444-2828-2500-0c31dcd9336a', depth: 3 },
      { kind: 'WANPPPConnection', serviceType: 'urn:dslforum-org:service:WANPPPConnection:1', serviceVersion: 1, legacy: true, igdVersion: 1, controlURL: 'http://192.168.1.1:37215/upnp/control/WANPPPConnection1', deviceUDN: 'uuid:00e0fc37-4444-2828-2500-0c31dcd9336a', depth: 3 }
    ]
  },
  'both-wanppp-and-wanip.xml': {
    location: 'http://192.168.1.1:80/igd.xml',
    root: { deviceType: 'urn:schemas-upnp-org:device:InternetGatewayDevice:1', friendlyName: 'DSL Gateway', manufacturer: 'Example', modelName: 'DSL-1000', UDN: 'uuid:5f0c1a2b-5555-4d5e-8f90-001122334455' },
    candidates: [
      { kind: 'WANIPConnection', serviceType: 'urn:schemas-upnp-org:service:WANIPConnection:1', serviceVersion: 1, legacy: false, igdVersion: 1, controlURL: 'http://192.168.1.1:49000/UD/?4', deviceUDN: 'uuid:5f0c1a2b-5555-4d5e-8f90-001122334458', depth: 3 },
      { kind: 'WANPPPConnection', serviceType: 'urn:schemas-upnp-org:service:WANPPPConnection:1', serviceVersion: 1, legacy: false, igdVersion: 1, controlURL: 'http://192.168.1.1/UD/?3', deviceUDN: 'uuid:5f0c1a2b-5555-4d5e-8f90-001122334457', depth: 3 }
    ]
  },
  'urlbase-relative-urls.xml': {
    location: 'http://192.168.0.1:5431/dyndev/uuid:7a7a7a7a.xml',
    root: { deviceType: 'urn:schemas-upnp-org:device:InternetGatewayDevice:1', friendlyName: 'Old Gateway', manufacturer: 'Example & Sons', modelName: 'GW<1>', UDN: 'uuid:7a7a7a7a-6666-4000-8000-00000000abcd' },
    candidates: [
      { kind: 'WANIPConnection', serviceType: 'urn:schemas-upnp-org:service:WANIPConnection:1', serviceVersion: 1, legacy: false, igdVersion: 1, controlURL: 'http://192.168.0.1:2869/upnp/control/WANIPConn1', deviceUDN: 'uuid:7a7a7a7a-6666-4000-8000-00000000abcf', depth: 3 }
    ]
  },
  'tplink-markup-in-friendlyname.xml': {
    location: 'http://192.168.0.1:1900/rootDesc.xml',
    // "getfirm <info>" loses its unescaped "<info>"; everything else reads as usual.
    root: { deviceType: 'urn:schemas-upnp-org:device:InternetGatewayDevice:1', friendlyName: 'getfirm', manufacturer: 'TP-Link', modelName: 'getfirm', UDN: 'uuid:dd1ae764-9999-4213-9a5d-f17291697eb2' },
    candidates: [
      { kind: 'WANIPConnection', serviceType: 'urn:schemas-upnp-org:service:WANIPConnection:1', serviceVersion: 1, legacy: false, igdVersion: 1, controlURL: 'http://192.168.0.1:1900/ctl/IPConn', deviceUDN: 'uuid:dd1ae764-9999-4213-9a5d-f17291697eb4', depth: 3 }
    ]
  },
  'sagemcom-wfadevice-no-wan.xml': {
    location: 'http://192.168.0.1:49153/1a2b3c4d/gatedesc0b.xml',
    root: { deviceType: 'urn:schemas-wifialliance-org:device:WFADevice:1', friendlyName: 'WFADevice', manufacturer: 'Sagemcom', modelName: 'FAST3890V3', UDN: 'uuid:75802409-7777-40e7-8e6c-fa095ecce13e' },
    candidates: []
  }
}

for (const [name, expected] of Object.entries(table)) {
  test(`description fixture ${name}`, () => {
    const root = parseDescription(fixture(name), expected.location)
    const { deviceType, friendlyName, manufacturer, modelName, UDN } = root
    assert.deepEqual({ deviceType, friendlyName, manufacturer, modelName, UDN }, expected.root)
    const candidates = findWanServices(root).map((c) => ({
      kind: c.kind,
      serviceType: c.serviceType,
      serviceVersion: c.serviceVersion,
      legacy: c.legacy,
      igdVersion: c.igdVersion,
      controlURL: c.controlURL,
      deviceUDN: c.deviceUDN,
      depth: c.devicePath.length
    }))
    assert.deepEqual(candidates, expected.candidates)
    for (const c of findWanServices(root)) {
      assert.equal(c.devicePath[0], root.deviceType)
      assert.equal(c.controlURL, c.service.controlURL)
    }
  })
}

test('the device tree keeps every service and embedded device, with absolute URLs', () => {
  const root = parseDescription(fixture('miniupnpd-igd2-rootDesc.xml'), 'http://192.168.1.1:5000/rootDesc.xml')
  assert.equal(root.baseUrl, 'http://192.168.1.1:5000/rootDesc.xml')
  assert.deepEqual(root.services.map((s) => s.serviceId), ['urn:upnp-org:serviceId:L3Forwarding1', 'urn:upnp-org:serviceId:DeviceProtection1'])
  const wan = root.devices[0]!
  assert.equal(wan.deviceType, 'urn:schemas-upnp-org:device:WANDevice:2')
  const connection = wan.devices[0]!
  assert.deepEqual(connection.services[0], {
    serviceType: 'urn:schemas-upnp-org:service:WANIPConnection:2',
    serviceId: 'urn:upnp-org:serviceId:WANIPConn1',
    controlURL: 'http://192.168.1.1:5000/ctl/IPConn',
    eventSubURL: 'http://192.168.1.1:5000/evt/IPConn',
    SCPDURL: 'http://192.168.1.1:5000/WANIPCn.xml'
  })
})

test('URLs: URLBase (with a path) wins over the LOCATION; relative, absolute-path and absolute URLs', () => {
  const root = parseDescription(fixture('urlbase-relative-urls.xml'), 'http://192.168.0.1:5431/dyndev/uuid:7a7a7a7a.xml')
  assert.equal(root.baseUrl, 'http://192.168.0.1:2869/upnp/')
  const service = root.devices[0]!.devices[0]!.services[0]!
  assert.equal(service.controlURL, 'http://192.168.0.1:2869/upnp/control/WANIPConn1') // relative, no leading slash
  assert.equal(service.SCPDURL, 'http://192.168.0.1:2869/WANIPConn.xml') // absolute path
  assert.equal(service.eventSubURL, 'http://192.168.0.1:5431/event/WANIPConn1') // absolute URL, kept
})

function describe (inner: string, head = ''): string {
  return `<?xml version="1.0"?><root xmlns="urn:schemas-upnp-org:device-1-0">${head}<device>` +
    '<deviceType>urn:schemas-upnp-org:device:InternetGatewayDevice:1</deviceType><UDN>uuid:r</UDN>' +
    `<serviceList>${inner}</serviceList></device></root>`
}

function service (type: string, control: string | undefined): string {
  return `<service><serviceType>${type}</serviceType><serviceId>id</serviceId>` +
    (control === undefined ? '' : `<controlURL>${control}</controlURL>`) + '</service>'
}

test('URLs: without URLBase, relative URLs resolve against the description URL, its path included', () => {
  const root = parseDescription(describe(service('urn:schemas-upnp-org:service:WANIPConnection:1', 'ctl/IPConn')),
    'http://192.168.0.1:49153/1a2b3c4d/gatedesc0b.xml')
  assert.equal(root.services[0]!.controlURL, 'http://192.168.0.1:49153/1a2b3c4d/ctl/IPConn')
})

test('URLs: an empty or unusable URLBase falls back to the description URL', () => {
  for (const urlBase of ['<URLBase></URLBase>', '<URLBase>not a url</URLBase>', '<URLBase>ftp://192.0.2.1/</URLBase>', '<URLBase>/relative/</URLBase>']) {
    const root = parseDescription(describe(service('urn:schemas-upnp-org:service:WANIPConnection:1', '/ctl'), urlBase), 'http://192.0.2.1:1900/d.xml')
    assert.equal(root.baseUrl, 'http://192.0.2.1:1900/d.xml', urlBase)
    assert.equal(root.services[0]!.controlURL, 'http://192.0.2.1:1900/ctl', urlBase)
  }
})

test('URLs: a missing, empty or unresolvable control URL is undefined and the service is no candidate', () => {
  const xml = describe(
    service('urn:schemas-upnp-org:service:WANIPConnection:2', undefined) +
    service('urn:schemas-upnp-org:service:WANIPConnection:2', '  ') +
    service('urn:schemas-upnp-org:service:WANIPConnection:2', 'http://[bad') +
    service('urn:schemas-upnp-org:service:WANIPConnection:2', 'javascript:alert(1)') +
    service('urn:schemas-upnp-org:service:WANIPConnection:1', '/ok'))
  const root = parseDescription(xml, 'http://192.0.2.1/d.xml')
  assert.deepEqual(root.services.map((s) => s.controlURL), [undefined, undefined, undefined, undefined, 'http://192.0.2.1/ok'])
  assert.deepEqual(findWanServices(root).map((c) => c.controlURL), ['http://192.0.2.1/ok'])
})

test('ranking: WANIPConnection by version, then WANPPPConnection, then the dslforum types', () => {
  const xml = describe(
    service('urn:dslforum-org:service:WANPPPConnection:1', '/a') +
    service('urn:schemas-upnp-org:service:WANPPPConnection:1', '/b') +
    service('urn:schemas-upnp-org:service:WANIPConnection:1', '/c') +
    service('urn:dslforum-org:service:WANIPConnection:1', '/d') +
    service('urn:schemas-upnp-org:service:WANIPConnection:2', '/e') +
    service('urn:schemas-upnp-org:service:WANPPPConnection:2', '/f') +
    service('urn:schemas-upnp-org:service:Layer3Forwarding:1', '/g') +
    service('urn:schemas-upnp-org:service:WANIPConnection:1', '/h'))
  assert.deepEqual(findWanServices(parseDescription(xml, 'http://192.0.2.1/')).map((c) => c.controlURL.slice(-2)),
    ['/e', '/c', '/h', '/f', '/b', '/d', '/a'])
})

test('IGD version: from the root type; a non-IGD root borrows the nearest IGD; otherwise from the service', () => {
  const igd2Inside = '<?xml version="1.0"?><root><device><deviceType>urn:example:device:Box:1</deviceType>' +
    '<deviceList><device><deviceType>urn:schemas-upnp-org:device:InternetGatewayDevice:2</deviceType>' +
    `<serviceList>${service('urn:schemas-upnp-org:service:WANIPConnection:1', '/x')}</serviceList></device></deviceList></device></root>`
  assert.equal(findWanServices(parseDescription(igd2Inside, 'http://192.0.2.1/'))[0]!.igdVersion, 2)
  const noIgd = (type: string): string => `<root><device><deviceType>urn:example:device:Box:1</deviceType><serviceList>${service(type, '/x')}</serviceList></device></root>`
  assert.equal(findWanServices(parseDescription(noIgd('urn:schemas-upnp-org:service:WANIPConnection:2'), 'http://192.0.2.1/'))[0]!.igdVersion, 2)
  assert.equal(findWanServices(parseDescription(noIgd('urn:schemas-upnp-org:service:WANIPConnection:1'), 'http://192.0.2.1/'))[0]!.igdVersion, 1)
  assert.equal(findWanServices(parseDescription(noIgd('urn:schemas-upnp-org:service:WANIPConnection:x'), 'http://192.0.2.1/'))[0]!.serviceVersion, 1)
})

test('a description with no supported service gives [], never a crash', () => {
  const empties = [
    '<root><device/></root>',
    '<root><device><serviceList/><deviceList/></device></root>',
    '<root><device><deviceList><device><deviceList><device/></deviceList></device></deviceList></device></root>',
    describe(service('urn:schemas-upnp-org:service:WANIPv6FirewallControl:1', '/x') + service('', '/y'))
  ]
  for (const xml of empties) assert.deepEqual(findWanServices(parseDescription(xml, 'http://192.0.2.1/')), [], xml)
  const device: UpnpDevice = { deviceType: '', friendlyName: '', manufacturer: '', modelName: '', UDN: '', services: [], devices: [] }
  assert.deepEqual(findWanServices(device), [])
})

test('namespace prefixes and a DOCTYPE without entity references are ignored', () => {
  const xml = '<!DOCTYPE root [<!ELEMENT root ANY>]><d:root xmlns:d="urn:schemas-upnp-org:device-1-0"><d:device>' +
    '<d:deviceType>urn:schemas-upnp-org:device:InternetGatewayDevice:1</d:deviceType>' +
    '<d:serviceList><d:service><d:serviceType>urn:schemas-upnp-org:service:WANIPConnection:1</d:serviceType>' +
    '<d:controlURL>/c</d:controlURL></d:service></d:serviceList></d:device></d:root>'
  assert.deepEqual(findWanServices(parseDescription(xml, 'http://192.0.2.1/')).map((c) => c.controlURL), ['http://192.0.2.1/c'])
})

const refused: Array<[string, string, string]> = [
  ['empty text', '', 'must contain a root element'],
  ['not XML', 'hello', 'not well-formed XML'],
  ['HTML', '<!DOCTYPE html><html><body><br></body></html>', 'the root element is <html>'],
  ['another root element', '<scpd><actionList/></scpd>', 'the root element is <scpd>'],
  ['no device', '<root><specVersion/></root>', 'has no <device>'],
  ['unclosed', '<root><device>', 'not well-formed XML'],
  ['a close tag matching no open element', '<root><device></service></device></root>', 'unmatched closing tag'],
  ['an undefined entity', '<root><device><friendlyName>&nbsp;</friendlyName></device></root>', 'undefined entity'],
  ['a declared entity (never expanded)', '<!DOCTYPE root [<!ENTITY a "x">]><root><device><friendlyName>&a;</friendlyName></device></root>', 'undefined entity'],
  ['an external entity', '<!DOCTYPE root [<!ENTITY xxe SYSTEM "file:///etc/passwd">]><root><device><UDN>&xxe;</UDN></device></root>', 'undefined entity'],
  ['too deep', `${'<a>'.repeat(100)}${'</a>'.repeat(100)}`, 'deeper than 64'],
  ['too large', `<root><device/>${' '.repeat(MAX_DESCRIPTION_CHARS)}</root>`, 'more than the 262144 allowed']
]

for (const [label, xml, message] of refused) {
  test(`description refuses ${label}`, () => {
    assert.throws(() => parseDescription(xml, 'http://192.0.2.1/'), (err: unknown) => {
      assert.ok(err instanceof RemoteProtocolError, String(err))
      assert.ok(err.message.includes(message), `${err.message} should include ${message}`)
      return true
    })
  })
}

test('description: router text quoted in a well-formedness error is clipped', () => {
  // Found by fuzz/targets.ts: the shrunk input is both-wanppp-and-wanip.xml with an unmatched close
  // tag of about 1,000 characters after <specVersion>. saxes quotes names in its messages, so the
  // whole name came back in the error, and a 256 KiB description could put 256 KiB of router text
  // into one log line. The same holds for an unclosed tag and a duplicate attribute.
  const long = `${'a'.repeat(960)}w`
  const inputs = [
    fixture('both-wanppp-and-wanip.xml').replace('<specVersion>', `<specVersion></${long}>`),
    `<root><device><${long}>`,
    `<root><device ${long}="1" ${long}="2"/></root>`
  ]
  for (const xml of inputs) {
    assert.throws(() => parseDescription(xml, 'http://192.0.2.1/'), (err: unknown) => {
      assert.ok(err instanceof RemoteProtocolError, String(err))
      assert.match(err.message, /not well-formed XML: .*(unmatched closing tag|unclosed tag|duplicate attribute): a+\.\.\.$/)
      assert.ok(err.message.length < 300, `${err.message.length} characters`)
      return true
    })
  }
})

test('description: a bad base URL is the caller\'s mistake', () => {
  for (const base of ['', '/rootDesc.xml', 'ftp://192.0.2.1/', 'http://']) {
    assert.throws(() => parseDescription(fixture('miniupnpd-igd1-rootDesc.xml'), base), UsageError, base)
  }
})
