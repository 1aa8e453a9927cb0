import assert from 'node:assert/strict'
import { readFileSync, readdirSync } from 'node:fs'
import { isIPv6 } from 'node:net'
import fc from 'fast-check'
import { NoDefaultGatewayError } from '../src/errors.js'
import { parseBsdRouteGet6, parseProcNetIpv6Route, parseWindowsRoutePrint6, type DefaultRoute6 } from '../src/net/default-gateway6.js'
import { parseProcNetIfInet6 } from '../src/net/ipv6-addresses.js'
import type { FuzzTarget, Shape } from './target.js'

/**
 * Fuzz targets for the IPv6 route and address parsers (src/net/default-gateway6.ts,
 * ipv6-addresses.ts). What they read comes from the OS, not the network, but a parser that
 * throws or hangs on an odd line (a new kernel column, a localised Windows) would break
 * discovery. They return undefined for "no route"; the target turns that into the reader's
 * NoDefaultGatewayError, so "refused" counts the inputs without a route. Inputs: rows built
 * from random fields, the real fixtures, and both edited line- and character-wise.
 */

const routes = new URL('../../test/fixtures/routes/', import.meta.url)
const fixture = (name: string): string => readFileSync(new URL(name, routes), 'utf8').split(/\r?\n/).filter((l) => !l.startsWith('# ')).join('\n')
const files = readdirSync(routes).sort()
const linuxRoutes = files.filter((n) => n.endsWith('ipv6_route.txt')).map(fixture)
const bsdRoutes = files.filter((n) => n.includes('route-get-inet6')).map(fixture)
const windowsRoutes = files.filter((n) => n.startsWith('windows-route-print-6')).map((n) => fixture(n).replace(/\n/g, '\r\n'))
const ifInet6 = files.filter((n) => n.endsWith('if_inet6.txt')).map(fixture)
assert.ok(linuxRoutes.length >= 2 && bsdRoutes.length >= 2 && windowsRoutes.length >= 1 && ifInet6.length >= 1, 'route fixtures not found')

const hexDigits = (n: number): fc.Arbitrary<string> => fc.stringMatching(new RegExp(`^[0-9a-f]{${n}}$`))
const hex32 = fc.oneof(fc.constantFrom('0'.repeat(32), 'fe800000000000000000000000000001', '20010db8000000000000000000000001', 'fd000000000000000000000000000001'), hexDigits(32))
const device = fc.constantFrom('eth0', 'wlan0', 'lo', 'enp0s31f6', 'wlp2s0', 'tun0', 'veth-x')
const flags8 = fc.oneof(fc.constantFrom('00450003', '00000003', '00200200', '80200001', '00000001', '00000203'), hexDigits(8))

const linuxRow = fc.tuple(hex32, fc.constantFrom('00', '40', '80', '20'), hex32, fc.constantFrom('00', '40'), hex32, hexDigits(8), flags8, device)
  .map(([d, dl, s, sl, hop, metric, flags, dev]) => `${d} ${dl} ${s} ${sl} ${hop} ${metric} 00000001 00000000 ${flags} ${dev.padStart(8)}`)
const linuxRows = fc.array(linuxRow, { minLength: 1, maxLength: 8 }).map((rows) => rows.join('\n') + '\n')

const v6text = fc.constantFrom('fe80::1', 'fe80::1%en0', '2001:db8::1', '::', 'fe80::1%', 'link#4', '192.0.2.1', 'fe80::1c2b:3dff:fe4e:5f60%en12', '::ffff:192.0.2.1')
const bsdOutput = fc.tuple(v6text, fc.constantFrom('en0', 'em0', 'lo0', 'utun3'), fc.boolean())
  .map(([gateway, iface, withIface]) => `   route to: ::\ndestination: ::\n       mask: default\n    gateway: ${gateway}\n${withIface ? `  interface: ${iface}\n` : ''}      flags: <UP,GATEWAY,DONE,STATIC>\n`)

const windowsRow = fc.tuple(fc.integer({ min: 0, max: 99 }), fc.integer({ min: 0, max: 9999 }), fc.constantFrom('::/0', '::1/128', 'fe80::/64', '2001:db8::/32'), v6text, fc.boolean())
  .map(([index, metric, destination, gateway, wrapped]) => ` ${String(index).padStart(2)} ${String(metric).padStart(6)} ${destination.padEnd(24)}${wrapped ? '\r\n                                    ' : ' '}${gateway}`)
const windowsOutput = fc.tuple(fc.array(windowsRow, { minLength: 1, maxLength: 6 }), fc.boolean())
  .map(([rows, persistent]) => `IPv6 Route Table\r\nActive Routes:\r\n If Metric Network Destination      Gateway\r\n${rows.join('\r\n')}\r\n${persistent ? 'Persistent Routes:\r\n  0 1 ::/0 2001:db8::1\r\n' : ''}`)

const ifInet6Row = fc.tuple(hex32, hexDigits(2), fc.oneof(fc.constantFrom('40', '80', '00', 'ff'), hexDigits(2)), hexDigits(2), fc.oneof(fc.constantFrom('80', '01', '21', '40', '88'), hexDigits(2)), device)
  .map(([a, index, length, scope, flags, dev]) => `${a} ${index} ${length} ${scope} ${flags} ${dev.padStart(8)}`)
const ifInet6Rows = fc.array(ifInet6Row, { minLength: 1, maxLength: 8 }).map((rows) => rows.join('\n') + '\n')

type TextEdit =
  | { op: 'insert', at: number, text: string }
  | { op: 'delete', at: number, length: number }
  | { op: 'set', at: number, char: string }
  | { op: 'truncate', at: number }
  | { op: 'duplicate-line', at: number, times: number }
  | { op: 'drop-line', at: number }

const editChar = fc.oneof(fc.constantFrom(' ', '\t', '\n', '\r', ':', '%', '/', '0', 'f', 'g', '\u00a0', '\u0000'), fc.string({ maxLength: 1 }))
const textEdit: fc.Arbitrary<TextEdit> = fc.oneof(
  fc.record({ op: fc.constant('insert' as const), at: fc.nat(), text: fc.oneof(fc.string({ maxLength: 12 }), editChar) }),
  fc.record({ op: fc.constant('delete' as const), at: fc.nat(), length: fc.integer({ min: 1, max: 40 }) }),
  fc.record({ op: fc.constant('set' as const), at: fc.nat(), char: editChar }),
  fc.record({ op: fc.constant('truncate' as const), at: fc.nat() }),
  fc.record({ op: fc.constant('duplicate-line' as const), at: fc.nat(), times: fc.integer({ min: 1, max: 50 }) }),
  fc.record({ op: fc.constant('drop-line' as const), at: fc.nat() })
)

function applyTextEdit (text: string, edit: TextEdit): string {
  const at = edit.at % (text.length + 1)
  switch (edit.op) {
    case 'insert': return text.slice(0, at) + edit.text + text.slice(at)
    case 'delete': return text.slice(0, at) + text.slice(at + edit.length)
    case 'set': return text.slice(0, at) + edit.char + text.slice(at + 1)
    case 'truncate': return text.slice(0, at)
    case 'duplicate-line': {
      const lines = text.split('\n')
      const i = edit.at % lines.length
      lines.splice(i, 0, ...new Array<string>(edit.times).fill(lines[i]!))
      return lines.join('\n')
    }
    case 'drop-line': {
      const lines = text.split('\n')
      lines.splice(edit.at % lines.length, 1)
      return lines.join('\n')
    }
  }
}

function mutated (seeds: fc.Arbitrary<string>): fc.Arbitrary<string> {
  return fc.tuple(seeds, fc.array(textEdit, { minLength: 1, maxLength: 5 })).map(([seed, edits]) => edits.reduce(applyTextEdit, seed))
}

function textShapes (row: string): Array<Shape<string>> {
  const repeat = (unit: string, size: number): string => unit.repeat(Math.max(1, Math.floor(size / unit.length)))
  return [
    { name: 'one valid row repeated', build: (size) => repeat(`${row}\n`, size) },
    { name: 'blank lines', build: (size) => repeat('\n', size) },
    { name: 'spaces', build: (size) => repeat(' ', size) },
    { name: 'one long line', build: (size) => `${row.slice(0, 40)}${repeat('0', size - 40)}` },
    { name: 'colons', build: (size) => repeat(':', size) }
  ]
}

function checkRoute (value: unknown): void {
  const route = value as DefaultRoute6
  assert.ok(isIPv6(route.gateway) && !route.gateway.includes('%'), `gateway ${route.gateway}`)
  assert.ok(route.scoped === route.gateway || route.scoped.startsWith(`${route.gateway}%`), `scoped ${route.scoped}`)
  assert.ok(!/^fe[89ab]/.test(route.gateway) || route.scoped.length > route.gateway.length + 1, 'link-local without a zone')
}

function routeTarget (options: { name: string, parser: string, parse: (text: string) => DefaultRoute6 | undefined, structured: fc.Arbitrary<string>, seeds: string[], row: string }): FuzzTarget<string> {
  const seeds = fc.oneof(fc.constantFrom(...options.seeds), options.structured)
  return {
    name: options.name,
    parser: options.parser,
    allowed: [NoDefaultGatewayError],
    input: fc.oneof(
      { weight: 3, arbitrary: options.structured },
      { weight: 4, arbitrary: mutated(seeds) },
      { weight: 1, arbitrary: fc.string({ maxLength: 300 }) }
    ),
    limit: undefined,
    shapes: textShapes(options.row),
    parse: (text) => {
      const route = options.parse(text)
      if (route === undefined) throw new NoDefaultGatewayError('no IPv6 default route in the input')
      return route
    },
    check: checkRoute,
    size: (text) => text.length,
    show: (text) => `${text.length} characters: ${JSON.stringify(text)}`
  }
}

export const routeTargets: ReadonlyArray<FuzzTarget<string>> = [
  routeTarget({
    name: 'linux-ipv6-route',
    parser: 'parseProcNetIpv6Route',
    parse: parseProcNetIpv6Route,
    structured: linuxRows,
    seeds: linuxRoutes,
    row: '00000000000000000000000000000000 00 00000000000000000000000000000000 00 fe800000000000000000000000000001 00000400 00000001 00000000 00450003 eth0'
  }),
  routeTarget({ name: 'bsd-route-get-inet6', parser: 'parseBsdRouteGet6', parse: parseBsdRouteGet6, structured: bsdOutput, seeds: bsdRoutes, row: '    gateway: fe80::1%en0' }),
  routeTarget({ name: 'windows-route-print-6', parser: 'parseWindowsRoutePrint6', parse: parseWindowsRoutePrint6, structured: windowsOutput, seeds: windowsRoutes, row: ' 12    281 ::/0                     fe80::1' }),
  {
    name: 'linux-if-inet6',
    parser: 'parseProcNetIfInet6',
    allowed: [NoDefaultGatewayError],
    input: fc.oneof({ weight: 3, arbitrary: ifInet6Rows }, { weight: 4, arbitrary: mutated(fc.oneof(fc.constantFrom(...ifInet6), ifInet6Rows)) }, { weight: 1, arbitrary: fc.string({ maxLength: 300 }) }),
    limit: undefined,
    shapes: textShapes('20010db8000100000000000000000002 02 40 00 80 eth0'),
    parse: (text) => {
      const flags = parseProcNetIfInet6(text)
      // An empty table is the "refused" outcome: no address line could be read.
      if (flags.size === 0) throw new NoDefaultGatewayError('no address line in the input')
      return flags
    },
    check: (value) => {
      for (const [address, f] of value as ReturnType<typeof parseProcNetIfInet6>) {
        assert.ok(isIPv6(address), address)
        assert.ok(Number.isInteger(f.prefixLength) && f.prefixLength >= 0 && f.prefixLength <= 128, `prefix ${f.prefixLength}`)
        assert.ok(f.interface.length > 0)
      }
    },
    size: (text) => text.length,
    show: (text) => `${text.length} characters: ${JSON.stringify(text)}`
  }
]
