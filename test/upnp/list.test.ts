import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { RemoteProtocolError } from '../../src/errors.js'
import { decodeGetGenericPortMappingEntry, encodeGetGenericPortMappingEntry } from '../../src/upnp/actions.js'
import { UpnpClient } from '../../src/upnp/client.js'
import { encodeSoapFault, encodeSoapResponse } from '../../src/upnp/soap.js'
import { runCli } from '../helpers/cli.js'
import { discoverOptions, startIgd } from './setup.js'
import { mapChecked } from '../../src/gateway.js'

const ST = 'urn:schemas-upnp-org:service:WANIPConnection:2'
const bin = fileURLToPath(new URL('../../src/cli/bin.js', import.meta.url))

test('GetGenericPortMappingEntry: encode the index, decode an entry, 713 and 402 end the table', () => {
  assert.match(encodeGetGenericPortMappingEntry(ST, 3).body, /<NewPortMappingIndex>3<\/NewPortMappingIndex>/)
  const xml = encodeSoapResponse(ST, 'GetGenericPortMappingEntry', [['NewRemoteHost', ''], ['NewExternalPort', '7001'], ['NewProtocol', 'TCP'],
    ['NewInternalPort', '7001'], ['NewInternalClient', '192.168.1.2'], ['NewEnabled', '1'], ['NewPortMappingDescription', 'natmapper'], ['NewLeaseDuration', '3599']])
  assert.deepEqual(decodeGetGenericPortMappingEntry(xml, ST), {
    remoteHost: '', externalPort: 7001, protocol: 'tcp', internalPort: 7001, internalClient: '192.168.1.2',
    enabled: true, description: 'natmapper', leaseDurationSeconds: 3599
  })
  assert.equal(decodeGetGenericPortMappingEntry(encodeSoapFault(713, 'SpecifiedArrayIndexInvalid'), ST), undefined)
  assert.equal(decodeGetGenericPortMappingEntry(encodeSoapFault(402, 'Invalid Args'), ST), undefined)
  const bad = encodeSoapResponse(ST, 'GetGenericPortMappingEntry', [['NewExternalPort', 'x'], ['NewProtocol', 'SCTP'], ['NewInternalPort', '1']])
  assert.throws(() => decodeGetGenericPortMappingEntry(bad, ST), RemoteProtocolError)
})

test('UpnpClient.list reads the whole table, whoever made the entries; a router without listing gives none', async (ctx) => {
  const igd = await startIgd(ctx)
  const client = await UpnpClient.discover(discoverOptions(igd))
  ctx.after(() => { client.close() })
  await mapChecked(client, { protocol: 'tcp', internalPort: 7001, lifetimeSeconds: 3600, description: 'one' })
  await mapChecked(client, { protocol: 'udp', internalPort: 7002, lifetimeSeconds: 0, description: 'two' })
  const listed = await client.list()
  // Newest first, as miniupnpd lists its table.
  assert.deepEqual(listed.entries.map((m) => `${m.protocol} ${m.externalPort} ${m.internalPort} ${m.description}`), ['udp 7002 7002 two', 'tcp 7001 7001 one'])
  assert.equal(igd.count('http', 'GetGenericPortMappingEntry'), 3, 'two entries and the 713 that ends the table')
  igd.quirks.noListing = true
  assert.deepEqual(await client.list(), { entries: [], unreadable: [] })
})

test('natmapper list --protocol upnp shows the gateway\'s table', async (ctx) => {
  const igd = await startIgd(ctx)
  const client = await UpnpClient.discover(discoverOptions(igd))
  ctx.after(() => { client.close() })
  await mapChecked(client, { protocol: 'tcp', internalPort: 7005, lifetimeSeconds: 3600, description: 'made elsewhere' })
  const child = spawn(process.execPath, [bin, 'list', '--json', '--protocol', 'upnp', '--gateway', '127.0.0.1', '--ssdp-target', `127.0.0.1:${igd.ssdpUnicastTarget.port}`], { stdio: ['ignore', 'pipe', 'pipe'] })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (d: Buffer) => { stdout += d.toString() })
  child.stderr.on('data', (d: Buffer) => { stderr += d.toString() })
  const code = await new Promise((resolve) => child.on('exit', resolve))
  assert.equal(code, 0, stderr)
  const result = JSON.parse(stdout) as { source: string, mappings: Array<{ externalPort: number, description: string }> }
  assert.equal(result.source, 'gateway')
  assert.deepEqual(result.mappings.map((m) => [m.externalPort, m.description]), [[7005, 'made elsewhere']])
})

const long = `${'x'.repeat(60)} & more` // 67 bytes escaped: miniupnpd <= 2.3.10 keeps 64, which ends in '&am'

test('UpnpClient.list: an entry the router sends cut mid-entity (miniupnpd <= 2.3.10, desc[64]) is skipped and reported, the others listed', async (ctx) => {
  const igd = await startIgd(ctx)
  igd.quirks.descriptionBytesKept = 64
  igd.occupy(7010, 'TCP', '192.168.1.20', { description: 'short' })
  igd.occupy(7011, 'TCP', '192.168.1.21', { description: long })
  igd.occupy(7012, 'UDP', '192.168.1.22', { description: 'also short' })
  const client = await UpnpClient.discover(discoverOptions(igd))
  ctx.after(() => { client.close() })
  const listed = await client.list()
  assert.deepEqual(listed.entries.map((m) => `${m.protocol} ${m.externalPort} ${m.description}`), ['udp 7012 also short', 'tcp 7010 short'])
  const unreadable = listed.unreadable
  assert.deepEqual(unreadable.map((u) => u.index), [1])
  assert.match(unreadable[0]!.reason, /not well-formed XML/)
  assert.equal(igd.count('http', 'GetGenericPortMappingEntry'), 4, 'three entries and the 713 that ends the table')
})

test('UpnpClient.list: a router that answers every index with garbage stops the listing after 8 and throws (nothing could be read)', async (ctx) => {
  const igd = await startIgd(ctx)
  const client = await UpnpClient.discover(discoverOptions(igd))
  ctx.after(() => { client.close() })
  igd.quirks.descriptionBytesKept = 64
  for (let i = 0; i < 20; i++) igd.occupy(7100 + i, 'TCP', '192.168.1.30', { description: long })
  await assert.rejects(client.list(), (err: unknown) => err instanceof RemoteProtocolError && /not well-formed XML/.test(err.message))
  assert.equal(igd.count('http', 'GetGenericPortMappingEntry'), 8)
})

test('map caps the description to what routers keep, so that the router\'s table stays readable', async (ctx) => {
  const igd = await startIgd(ctx)
  igd.quirks.descriptionBytesKept = 64
  const client = await UpnpClient.discover(discoverOptions(igd))
  ctx.after(() => { client.close() })
  await mapChecked(client, { protocol: 'tcp', internalPort: 7020, lifetimeSeconds: 3600, description: long })
  const sent = Object.fromEntries(igd.requests.find((r) => r.what === 'AddAnyPortMapping')!.args!).NewPortMappingDescription!
  assert.equal(sent, `${'x'.repeat(60)} `, 'cut before the & that would not fit escaped')
  const listed = await client.list()
  assert.deepEqual(listed.entries.map((m) => m.description), [`${'x'.repeat(60)} `])
  assert.deepEqual(listed.unreadable, [])
})

test('natmapper map --description caps it; natmapper list --protocol upnp shows the readable entries and says which could not be read', async (ctx) => {
  const igd = await startIgd(ctx, { externalAddress: '11.22.33.44' })
  igd.quirks.descriptionBytesKept = 64
  igd.occupy(7031, 'TCP', '192.168.1.21', { description: long })
  const flags = ['--protocol', 'upnp', '--gateway', '127.0.0.1', '--ssdp-target', `127.0.0.1:${igd.ssdpUnicastTarget.port}`]
  const mapped = await runCli(['map', '7030', '--once', '--description', long, ...flags])
  assert.equal(mapped.code, 0, mapped.stderr)
  assert.deepEqual(igd.mappings().map((m) => `${m.externalPort} ${m.description}`), [`7031 ${long}`, `7030 ${'x'.repeat(60)} `])
  const listed = await runCli(['list', '--json', ...flags])
  assert.equal(listed.code, 0, listed.stderr)
  const result = JSON.parse(listed.stdout) as { mappings: Array<{ externalPort: number }>, unreadable: Array<{ index: number, reason: string }> }
  assert.deepEqual(result.mappings.map((m) => m.externalPort), [7030])
  assert.deepEqual(result.unreadable.map((u) => u.index), [1], 'newest first: 7030, then 7031')
  const human = await runCli(['list', ...flags])
  assert.equal(human.code, 0, human.stderr)
  assert.match(human.stdout, /tcp 7030 -> 127\.0\.0\.1:7030/)
  assert.match(human.stdout, /1 entry could not be read: index 1 \(SOAP response is not well-formed XML/)
})
