// The SSRF guard for IPv6 LOCATIONs: a description must come from the gateway's link (the
// gateway itself or an address of its on-link prefixes); a link-local URL is its own clear error.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import type { NetworkInterfaceInfo } from 'node:os'
import { UnsafeUrlError, type UnsafeUrlReason } from '../../src/errors.js'
import { checkUpnpUrl, inIpv6Prefix, isLinkLocal6, isLocalResponder, localPrefixes6For, type UrlPolicy } from '../../src/upnp/guard.js'

const link = [{ address: '2001:db8:1::23', prefixLength: 64 }, { address: 'fd00:1::23', prefixLength: 64 }]
const policy: UrlPolicy = { gateway: 'fe80::1%eth0', responder: 'fe80::1%eth0', prefixes6: link }

function refused (url: string, p: UrlPolicy, reason: UnsafeUrlReason, says: RegExp): void {
  assert.throws(() => checkUpnpUrl(url, p), (err: unknown) => {
    assert.ok(err instanceof UnsafeUrlError, String(err))
    assert.equal(err.reason, reason, `${url}: ${err.message}`)
    assert.match(err.message, says)
    return true
  })
}

test('IPv6 LOCATION: the gateway, or any address of its on-link prefixes (global or ULA), in any spelling', () => {
  assert.equal(checkUpnpUrl('http://[2001:db8:1::1]:5000/rootDesc.xml', policy).port, '5000')
  assert.ok(checkUpnpUrl('http://[2001:DB8:1:0:0:0:0:1]:5000/rootDesc.xml', policy))
  assert.ok(checkUpnpUrl('http://[fd00:1::1]:5000/rootDesc.xml', policy))
  const global = { gateway: '2001:db8:1::1' }
  assert.ok(checkUpnpUrl('http://[2001:db8:1:0::1]:5000/rootDesc.xml', global), 'the gateway itself, without prefixes')
})

test('IPv6 LOCATION off the gateway\'s link: foreign-host, naming the gateway and its prefixes', () => {
  refused('http://[2001:db8:2::1]:5000/rootDesc.xml', policy, 'foreign-host', /not the gateway fe80::1%eth0 nor on its link \(2001:db8:1::23\/64, fd00:1::23\/64\)/)
  refused('http://[2001:db8:1::2]:5000/rootDesc.xml', { gateway: '2001:db8:1::1' }, 'foreign-host', /not the gateway 2001:db8:1::1$/)
  refused('http://[::ffff:192.168.1.1]:5000/', policy, 'foreign-host', /not the gateway/)
  refused('http://127.0.0.1:5000/', policy, 'foreign-host', /not the gateway/)
})

test('a link-local LOCATION, with or without a zone, is refused as link-local: a URL cannot carry the interface', () => {
  for (const url of ['http://[fe80::1]:5000/rootDesc.xml', 'http://[FE80::1]:5000/', 'http://[febf::1]:5000/', 'http://[fe80::1%25eth0]:5000/rootDesc.xml', 'http://[fe80::1%eth0]:5000/']) {
    refused(url, policy, 'link-local', /needs its interface \(a zone such as %eth0\), which a URL cannot carry/)
  }
  // Even when it is the gateway's own link-local address.
  refused('http://[fe80::1]:5000/', { gateway: 'fe80::1' }, 'link-local', /link-local/)
  assert.equal(isLinkLocal6('fec0::1'), false)
  assert.equal(isLinkLocal6('192.168.1.1'), false)
})

test('isLocalResponder over IPv6: the gateway, a link-local source on the gateway\'s zone, an address of its prefixes; not another zone, not off-link, not without prefixes', () => {
  assert.equal(isLocalResponder('fe80::1%eth0', policy), true)
  assert.equal(isLocalResponder('fe80::99%eth0', policy), true)
  assert.equal(isLocalResponder('fe80::99%eth1', policy), false)
  assert.equal(isLocalResponder('2001:db8:1::99', policy), true)
  assert.equal(isLocalResponder('2001:db8:2::99', policy), false)
  assert.equal(isLocalResponder('fe80::99%eth0', { gateway: 'fe80::1%eth0' }), false, 'a named gateway alone')
})

test('inIpv6Prefix and localPrefixes6For: the interface of the gateway\'s zone, or the one sharing its prefix; link-local addresses left out', () => {
  assert.equal(inIpv6Prefix('2001:db8:1::ffff', { address: '2001:db8:1::1', prefixLength: 64 }), true)
  assert.equal(inIpv6Prefix('2001:db8:1:1::1', { address: '2001:db8:1::1', prefixLength: 64 }), false)
  assert.equal(inIpv6Prefix('2001:db8:1:1::1', { address: '2001:db8:1::1', prefixLength: 63 }), true)
  assert.equal(inIpv6Prefix('2001:db8::1', { address: '2001:db8::', prefixLength: 0 }), true)
  const info = (address: string, cidrLength: number, family: 'IPv4' | 'IPv6' = 'IPv6'): NetworkInterfaceInfo =>
    ({ address, netmask: '', family, mac: '00:00:00:00:00:00', internal: false, cidr: `${address}/${cidrLength}`, ...(family === 'IPv6' ? { scopeid: 0 } : {}) }) as NetworkInterfaceInfo
  const interfaces = {
    eth0: [info('192.168.1.23', 24, 'IPv4'), info('fe80::23', 64), info('2001:db8:1::23', 64)],
    wlan0: [info('fe80::42', 64), info('2001:db8:9::42', 64)]
  }
  assert.deepEqual(localPrefixes6For('fe80::1%eth0', interfaces), [{ address: '2001:db8:1::23', prefixLength: 64 }])
  assert.deepEqual(localPrefixes6For('2001:db8:9::1', interfaces), [{ address: '2001:db8:9::42', prefixLength: 64 }])
  assert.deepEqual(localPrefixes6For('fe80::1%eth9', interfaces), [])
  assert.deepEqual(localPrefixes6For('192.168.1.1', interfaces), [])
})
