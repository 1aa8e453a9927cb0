import { test } from 'node:test'
import assert from 'node:assert/strict'
import type { NetworkInterfaceInfo } from 'node:os'
import fc from 'fast-check'
import { UnsafeUrlError, type UnsafeUrlReason } from '../../src/errors.js'
import {
  checkUpnpUrl, inSubnet, isLocalResponder, isPublicIpv4, localSubnetFor, parseIpv4, repointUrl,
  type UrlPolicy
} from '../../src/upnp/guard.js'

const lan = { address: '192.168.1.23', prefixLength: 24 }
const policy: UrlPolicy = { gateway: '192.168.1.1', responder: '192.168.1.1', subnet: lan }

function refused (url: string, p: UrlPolicy, reason: UnsafeUrlReason): void {
  assert.throws(() => checkUpnpUrl(url, p), (err: unknown) => {
    assert.ok(err instanceof UnsafeUrlError, String(err))
    assert.equal(err.reason, reason, `${url}: ${err.message}`)
    assert.equal(err.code, 'NATMAPPER_UPNP_URL_REFUSED')
    assert.equal(err.url, url)
    return true
  })
}

test('URLs at the gateway pass, on any port (TP-Link serves on 1900, others on 5351: quirk 4)', () => {
  for (const url of [
    'http://192.168.1.1:5000/rootDesc.xml',
    'http://192.168.1.1/ctl/IPConn',
    'http://192.168.1.1:1900/igd.xml',
    'http://192.168.1.1:5351/rootDesc.xml',
    'http://192.168.1.1:49152/upnp/control/WANIPConn1?x=1'
  ]) assert.equal(checkUpnpUrl(url, policy).href, url)
})

test('a responder that is not the gateway is allowed only when it is on the gateway\'s subnet (CARP: tailscale#5502)', () => {
  const carp = { ...policy, responder: '192.168.1.2' }
  assert.equal(checkUpnpUrl('http://192.168.1.2:2189/rootDesc.xml', carp).hostname, '192.168.1.2')
  assert.equal(checkUpnpUrl('http://192.168.1.1:2189/rootDesc.xml', carp).hostname, '192.168.1.1', 'the gateway stays allowed')
  refused('http://192.168.1.3:2189/rootDesc.xml', carp, 'foreign-host')
  const outside = { ...policy, responder: '10.0.0.7' }
  refused('http://10.0.0.7:2189/rootDesc.xml', outside, 'foreign-host')
  refused('http://192.168.1.2:2189/rootDesc.xml', { gateway: '192.168.1.1', responder: '192.168.1.2' }, 'foreign-host')
})

test('everything else is refused, with the reason', () => {
  refused('not a url', policy, 'not-a-url')
  refused('/rootDesc.xml', policy, 'not-a-url')
  refused('https://192.168.1.1/rootDesc.xml', policy, 'not-http')
  refused('ftp://192.168.1.1/rootDesc.xml', policy, 'not-http')
  refused('file:///etc/passwd', policy, 'not-http')
  refused('http://admin:admin@192.168.1.1/', policy, 'credentials')
  refused('http://router.lan:5000/rootDesc.xml', policy, 'not-ip-literal')
  refused('http://localhost:5000/rootDesc.xml', policy, 'not-ip-literal')
  refused('http://192.168.1.1:0/rootDesc.xml', policy, 'bad-port')
  refused('http://169.254.169.254/latest/meta-data/', policy, 'foreign-host')
  refused('http://127.0.0.1:8080/admin', policy, 'foreign-host')
  refused('http://192.168.1.10/', policy, 'foreign-host')
  refused('http://[::1]:5000/', policy, 'foreign-host')
  const message = (() => { try { checkUpnpUrl('http://10.9.9.9/x', policy) } catch (err) { return (err as Error).message } })()
  assert.match(message ?? '', /refusing UPnP URL "http:\/\/10\.9\.9\.9\/x": host 10\.9\.9\.9 is not the gateway 192\.168\.1\.1/)
})

test('numeric host spellings are normalised by the URL parser before the comparison, never looked up', () => {
  // 0xc0a80101 and 3232235777 are 192.168.1.1: the same host, no DNS.
  assert.equal(checkUpnpUrl('http://0xc0a80101:5000/', policy).hostname, '192.168.1.1')
  assert.equal(checkUpnpUrl('http://3232235777:5000/', policy).hostname, '192.168.1.1')
  refused('http://2130706433:5000/', policy, 'foreign-host') // 127.0.0.1
})

test('IPv6 gateways compare by address (a link-local one is refused: guard-ipv6.test.ts)', () => {
  const v6 = { gateway: '2001:db8:1::1' }
  assert.equal(checkUpnpUrl('http://[2001:db8:1::1]:5000/rootDesc.xml', v6).port, '5000')
  refused('http://[2001:db8:1::2]:5000/rootDesc.xml', v6, 'foreign-host')
  refused('http://[fe80::1]:5000/rootDesc.xml', { gateway: 'fe80::1' }, 'link-local')
})

test('property: whatever the URL, the guard never allows a host other than the gateway or an on-subnet responder', () => {
  const octet = fc.integer({ min: 0, max: 255 })
  const ip = fc.tuple(octet, octet, octet, octet).map((o) => o.join('.'))
  fc.assert(fc.property(ip, ip, fc.oneof(ip, fc.webUrl().map((u) => new URL(u).hostname)), fc.integer({ min: 1, max: 65535 }), fc.webPath(),
    (gateway, responder, host, port, path) => {
      const p: UrlPolicy = { gateway, responder, subnet: { address: gateway, prefixLength: 24 } }
      const url = `http://${host}:${port}${path}`
      let allowed: URL | undefined
      try {
        allowed = checkUpnpUrl(url, p)
      } catch (err) {
        assert.ok(err instanceof UnsafeUrlError)
        return
      }
      const h = allowed.hostname
      assert.ok(h === gateway || (h === responder && inSubnet(responder, p.subnet!)), `${url} allowed under ${JSON.stringify(p)}`)
    }), { numRuns: 500 })
})

test('isLocalResponder: the gateway, or a host of its subnet; any source port is the caller\'s business', () => {
  assert.equal(isLocalResponder('192.168.1.1', policy), true)
  assert.equal(isLocalResponder('192.168.1.200', policy), true)
  assert.equal(isLocalResponder('192.168.2.1', policy), false)
  assert.equal(isLocalResponder('192.168.1.200', { gateway: '192.168.1.1' }), false, 'no subnet known: the gateway only')
})

test('repointUrl keeps port, path and query', () => {
  assert.equal(repointUrl('http://169.254.1.1:49152/gatedesc.xml?a=1', '192.168.1.1'), 'http://192.168.1.1:49152/gatedesc.xml?a=1')
  assert.equal(repointUrl('http://router.lan/desc.xml', '192.168.1.1'), 'http://192.168.1.1/desc.xml')
  assert.equal(repointUrl('http://10.0.0.1:80/x', 'fe80::1'), 'http://[fe80::1]/x')
})

test('subnets', () => {
  assert.equal(parseIpv4('255.255.255.255'), 0xffffffff)
  assert.equal(parseIpv4('1.2.3'), undefined)
  assert.equal(inSubnet('10.1.2.3', { address: '10.0.0.0', prefixLength: 8 }), true)
  assert.equal(inSubnet('11.1.2.3', { address: '10.0.0.0', prefixLength: 8 }), false)
  assert.equal(inSubnet('10.0.0.5', { address: '10.0.0.4', prefixLength: 31 }), true)
  assert.equal(inSubnet('10.0.0.6', { address: '10.0.0.4', prefixLength: 31 }), false)
  assert.equal(inSubnet('1.2.3.4', { address: '9.9.9.9', prefixLength: 0 }), true)
  assert.equal(inSubnet('1.2.3.4', { address: '1.2.3.4', prefixLength: 33 }), false)
})

test('localSubnetFor: the interface whose network holds the gateway, longest prefix first', () => {
  const info = (address: string, netmask: string, cidr: string | null): NetworkInterfaceInfo =>
    ({ address, netmask, family: 'IPv4', mac: '00:00:00:00:00:00', internal: false, cidr } as NetworkInterfaceInfo)
  const interfaces = {
    lo: [info('127.0.0.1', '255.0.0.0', '127.0.0.1/8')],
    eth0: [info('192.168.1.23', '255.255.255.0', '192.168.1.23/24'), { ...info('fe80::1', 'ffff:ffff:ffff:ffff::', 'fe80::1/64'), family: 'IPv6', scopeid: 2 } as NetworkInterfaceInfo],
    docker0: [info('192.168.0.1', '255.255.0.0', null)]
  }
  assert.deepEqual(localSubnetFor('192.168.1.1', interfaces), { address: '192.168.1.23', prefixLength: 24 })
  assert.deepEqual(localSubnetFor('192.168.7.1', interfaces), { address: '192.168.0.1', prefixLength: 16 }, 'from the netmask when cidr is null')
  assert.deepEqual(localSubnetFor('127.0.0.1', interfaces), { address: '127.0.0.1', prefixLength: 8 })
  assert.equal(localSubnetFor('10.0.0.1', interfaces), undefined)
  assert.equal(localSubnetFor('fe80::2', interfaces), undefined)
})

test('isPublicIpv4: miniupnpc\'s reserved ranges (CGNAT and the documentation ranges included) are not public', () => {
  for (const a of ['0.1.2.3', '10.0.0.1', '100.64.0.1', '100.127.255.255', '127.0.0.1', '169.254.1.1', '172.16.0.1', '172.31.255.255',
    '192.0.0.1', '192.0.2.1', '192.88.99.1', '192.168.1.1', '198.18.0.1', '198.19.255.255', '198.51.100.1', '203.0.113.1', '224.0.0.1', '255.255.255.255', '', 'x', '::1']) {
    assert.equal(isPublicIpv4(a), false, a)
  }
  for (const a of ['1.1.1.1', '11.0.0.1', '100.63.255.255', '100.128.0.0', '172.15.255.255', '172.32.0.0', '192.169.0.1', '198.20.0.1', '223.255.255.255']) {
    assert.equal(isPublicIpv4(a), true, a)
  }
})
