// The README's "Testing your own application" example, as written there (imports adjusted to
// the sources), so the README cannot drift from what the code does.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { FakeClock, SimulatedIgd, SimulatedPmpGateway } from '../src/testing/index.js'
import { UpnpClient } from '../src/upnp/index.js'
import { NAT, PcpClient } from '../src/index.js'
import { runCli } from './helpers/cli.js'

test('README: the natmapper/testing example gives the numbers it shows', async () => {
  const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8')
  assert.match(readme, /await clock\.advance\(4500_000\)\s+\/\/ one renewal/)
  assert.match(readme, /console\.log\(router\.requestCount\)\s+\/\/ 2/)

  const clock = new FakeClock()
  const router = await SimulatedPmpGateway.start({ clock })
  const nat = new NAT(new PcpClient({ gateway: router.address, port: router.port, clock }), { clock })
  await nat.addMapping('udp', 4001)
  await clock.advance(4500_000)
  assert.equal(router.requestCount, 2)
  await nat.close()
  await router.close()
})

test('README: the SimulatedIgd example gives the numbers it shows', async () => {
  const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8')
  assert.match(readme, /console\.log\(mapping\.externalPort === 7001\)\s+\/\/ false/)
  assert.match(readme, /console\.log\(igd\.requests\.at\(-1\)\?\.path\)\s+\/\/ \/ctl\/IPConn/)
  assert.match(readme, /console\.log\(igd\.mappings\(\)\.length\)\s+\/\/ 1: the other host's/)

  const igd = await SimulatedIgd.start()
  igd.occupy(7001, 'TCP')
  const client = await UpnpClient.discover({
    gateway: igd.address, ssdpGatewayPort: igd.ssdpUnicastTarget.port, ssdpTarget: igd.ssdpMulticastTarget
  })
  const { mapping } = await client.map({ protocol: 'tcp', internalPort: 7001, lifetimeSeconds: 3600 })
  assert.equal(mapping.externalPort === 7001, false)
  assert.deepEqual(igd.mappings().map((m) => m.externalPort).sort(), [7001, mapping.externalPort].sort())
  assert.equal(igd.requests.at(-1)?.path, '/ctl/IPConn')
  await client.unmap(mapping)
  assert.equal(igd.mappings().length, 1)
  assert.equal(igd.mappings()[0]?.internalClient, '192.0.2.99')
  client.close()
  await igd.close()
})

test('README: every flag of the IPv6 section\'s commands is one `natmapper map --help` documents', async () => {
  const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8')
  const section = readme.slice(readme.indexOf('\n## IPv6\n'), readme.indexOf('\n## Tests\n'))
  const flags = new Set([...section.matchAll(/(?<![\w-])--[a-z][a-z0-9-]*/g)].map((m) => m[0]))
  assert.ok(flags.has('--ipv6') && flags.has('--ipv6-method') && flags.size >= 8, [...flags].join(' '))
  const help = await runCli(['map', '--help'])
  assert.equal(help.code, 0, help.stderr)
  for (const flag of flags) assert.match(help.stdout, new RegExp(`${flag}\\b`), `${flag} is in the README's IPv6 section but not in map --help`)
})
