import { test, describe } from 'node:test'
import assert from 'node:assert/strict'
import { isIP, isIPv4, isIPv6 } from 'node:net'
import fc from 'fast-check'
import { UsageError } from '../../src/errors.js'
import { bytes16ToIp, bytesToIpv4, ipFamily, ipToBytes16, ipv4ToBytes, isIpv4Literal, isIpv4Mapped, isIpv6Literal, unspecifiedFor } from '../../src/net/address.js'

const mapped = (a: number, b: number, c: number, d: number): number[] => [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, a, b, c, d]

describe('ipToBytes16 and bytes16ToIp', () => {
  const cases: Array<[text: string, bytes: number[], canonical: string]> = [
    ['1.2.3.4', mapped(1, 2, 3, 4), '1.2.3.4'],
    ['0.0.0.0', mapped(0, 0, 0, 0), '0.0.0.0'],
    ['255.255.255.255', mapped(255, 255, 255, 255), '255.255.255.255'],
    ['::', new Array<number>(16).fill(0), '::'],
    ['::1', [...new Array<number>(15).fill(0), 1], '::1'],
    ['::ffff:1.2.3.4', mapped(1, 2, 3, 4), '1.2.3.4'],
    ['::FFFF:102:304', mapped(1, 2, 3, 4), '1.2.3.4'],
    ['fe80::1%eth0', [0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1], 'fe80::1'],
    ['2001:db8::1', [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1], '2001:db8::1'],
    // RFC 5952 §4.1: no leading zeros; §4.3: lower case.
    ['2001:0DB8:0000:0000:0000:0000:0000:0001', [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1], '2001:db8::1'],
    // RFC 5952 §4.2.2: a single zero group is not compressed.
    ['2001:db8:0:1:1:1:1:1', [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1], '2001:db8:0:1:1:1:1:1'],
    // RFC 5952 §4.2.3: the longest run is compressed; of equal runs, the first.
    ['2001:0:0:1:0:0:0:1', [0x20, 0x01, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1], '2001:0:0:1::1'],
    ['2001:db8:0:0:1:0:0:1', [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 1], '2001:db8::1:0:0:1'],
    ['1::', [0, 1, ...new Array<number>(14).fill(0)], '1::'],
    ['1:2:3:4:5:6:7::', [0, 1, 0, 2, 0, 3, 0, 4, 0, 5, 0, 6, 0, 7, 0, 0], '1:2:3:4:5:6:7:0'],
    // IPv4-compatible (deprecated) is not IPv4-mapped, so it stays IPv6 text.
    ['::1.2.3.4', [...new Array<number>(12).fill(0), 1, 2, 3, 4], '::102:304']
  ]
  for (const [text, bytes, canonical] of cases) {
    test(`${text} -> ${canonical}`, () => {
      const encoded = ipToBytes16(text)
      assert.deepStrictEqual(Array.from(encoded), bytes)
      assert.equal(bytes16ToIp(encoded), canonical)
      assert.deepStrictEqual(Array.from(ipToBytes16(canonical)), bytes)
    })
  }

  test('reads at an offset', () => {
    const buffer = new Uint8Array(20)
    buffer.set(ipToBytes16('2001:db8::7'), 4)
    assert.equal(bytes16ToIp(buffer, 4), '2001:db8::7')
    assert.equal(isIpv4Mapped(buffer, 4), false)
    buffer.set(ipToBytes16('10.1.2.3'), 4)
    assert.equal(bytes16ToIp(buffer, 4), '10.1.2.3')
    assert.equal(isIpv4Mapped(buffer, 4), true)
    assert.equal(bytesToIpv4(buffer, 16), '10.1.2.3')
  })

  test('rejects text that is not an address with UsageError', () => {
    for (const text of ['', 'localhost', '1.2.3', '1.2.3.256', '01.2.3.4', '1::2::3', '::g', '12345::', 'fe80::1%', ' 1.2.3.4']) {
      assert.throws(() => ipToBytes16(text), UsageError, text)
    }
    assert.throws(() => ipv4ToBytes('::1'), UsageError)
  })

  test('unspecifiedFor', () => {
    assert.equal(unspecifiedFor('192.168.1.2'), '0.0.0.0')
    assert.equal(unspecifiedFor('2001:db8::2'), '::')
  })

  test('property: any 16 bytes survive bytes -> text -> bytes, as valid text', () => {
    fc.assert(fc.property(fc.uint8Array({ minLength: 16, maxLength: 16 }), (bytes) => {
      const text = bytes16ToIp(bytes)
      assert.ok(isIpv4Mapped(bytes) ? isIPv4(text) : isIPv6(text), text)
      assert.deepStrictEqual(ipToBytes16(text), bytes)
    }), { numRuns: 5_000 })
  })

  test('property: any IPv6 text parses like the WHATWG URL parser does, and prints in RFC 5952 form', () => {
    fc.assert(fc.property(fc.ipV6(), (text) => {
      const bytes = ipToBytes16(text)
      // The URL parser is an independent IPv6 parser; its serialization compresses the first
      // longest zero run like RFC 5952, but prints IPv4-mapped addresses in hex.
      const whatwg = new URL(`http://[${text}]/`).hostname.slice(1, -1)
      if (isIpv4Mapped(bytes)) {
        assert.equal(bytes16ToIp(bytes), bytesToIpv4(bytes, 12))
        assert.deepStrictEqual(ipToBytes16(whatwg), bytes)
      } else {
        assert.equal(bytes16ToIp(bytes), whatwg)
      }
    }), { numRuns: 5_000 })
  })
})

test('UDP sockets never look a name up: an IP literal is used as is, a name fails with ENOTFOUND at once', async () => {
  const { createUdpSocket, openConnectedSocket } = await import('../../src/net/udp.js')
  const socket = createUdpSocket({ type: 'udp4' })
  try {
    const err = await openConnectedSocket(() => socket, 'localhost', 9).then(() => new Error('connected') as NodeJS.ErrnoException, (e: NodeJS.ErrnoException) => e)
    assert.equal(err.code, 'ENOTFOUND')
    assert.match(err.message, /not an IP address: localhost/)
  } finally {
    socket.close()
  }
  const literal = createUdpSocket({ type: 'udp4' })
  await new Promise<void>((resolve) => { literal.connect(9, '127.0.0.1', resolve) })
  assert.equal(literal.remoteAddress().address, '127.0.0.1')
  literal.close()
})

describe('isIpv4Literal, isIpv6Literal and ipFamily agree with node:net without its regular expressions', () => {
  const edge = ['0.0.0.0', '255.255.255.255', '256.0.0.1', '1.2.3', '1.2.3.4.5', '01.2.3.4', '1.2.3.04', '1.2.3.0', '00.1.2.3',
    '1..2.3', '.1.2.3', '1.2.3.', '1.2.3.4 ', ' 1.2.3.4', '1.2.3.-4', '1.2.3.4%eth0', '1000.1.1.1', '999.1.1.1', '', '.', '...',
    '::', '::1', '::ffff:1.2.3.4', 'fe80::1%eth0', '2001:db8::1', '1:2:3:4:5:6:7:8:9', 'localhost', 'router.lan', '1.2.3.4:80',
    '١.٢.٣.٤', '1.2.3.4\n', '+1.2.3.4', '0x7f.0.0.1', '1e2.1.1.1']
  test('edge cases', () => {
    for (const text of edge) {
      assert.equal(isIpv4Literal(text), isIPv4(text), text)
      assert.equal(isIpv6Literal(text), isIPv6(text), text)
      assert.equal(ipFamily(text), isIP(text), text)
    }
  })
  test('random dotted strings and octets', () => {
    const octet = fc.oneof(fc.integer({ min: 0, max: 300 }).map(String), fc.stringMatching(/^[0-9]{0,4}$/), fc.constantFrom('', '-1', '00', '010', 'a'))
    fc.assert(fc.property(fc.array(octet, { minLength: 1, maxLength: 6 }), (parts) => {
      const text = parts.join('.')
      return isIpv4Literal(text) === isIPv4(text) && ipFamily(text) === isIP(text)
    }), { numRuns: 20_000 })
    fc.assert(fc.property(fc.string({ maxLength: 20 }), (text) => ipFamily(text) === isIP(text)), { numRuns: 20_000 })
  })
})
