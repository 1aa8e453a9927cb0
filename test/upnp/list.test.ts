import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { RemoteProtocolError } from '../../src/errors.js'
import { decodeGetGenericPortMappingEntry, encodeGetGenericPortMappingEntry } from '../../src/upnp/actions.js'
import { UpnpClient } from '../../src/upnp/client.js'
import { encodeSoapFault, encodeSoapResponse } from '../../src/upnp/soap.js'
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
  assert.deepEqual(listed.map((m) => `${m.protocol} ${m.externalPort} ${m.internalPort} ${m.description}`), ['tcp 7001 7001 one', 'udp 7002 7002 two'])
  assert.equal(igd.count('http', 'GetGenericPortMappingEntry'), 3, 'two entries and the 713 that ends the table')
  igd.quirks.noListing = true
  assert.deepEqual(await client.list(), [])
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
