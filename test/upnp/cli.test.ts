import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { createSocket } from 'node:dgram'
import { waitFor } from '../helpers/wait.js'
import { bin, runCli, startCli } from '../helpers/cli.js'
import { startIgd } from './setup.js'

/** `natmapper map --protocol upnp` against the simulated IGD, over loopback only. */




/** A UDP port on loopback with nothing behind it: NAT-PMP and PCP get ICMP port unreachable there. */
async function closedUdpPort (): Promise<number> {
  const socket = createSocket('udp4')
  await new Promise<void>((resolve) => { socket.bind(0, '127.0.0.1', resolve) })
  const { port } = socket.address()
  await new Promise<void>((resolve) => { socket.close(() => { resolve() }) })
  return port
}

for (const [label, protocolArgs] of [['--protocol upnp', ['--protocol', 'upnp']], ['no --protocol, NAT-PMP and PCP absent', []]] as const) {
  test(`map 7001/tcp 7002/udp --json, ${label}: mapped through the IGD, deleted on SIGINT`, async (ctx) => {
    const igd = await startIgd(ctx, { externalAddress: '198.51.100.4' })
    const cli = startCli(ctx, ['map', '7001/tcp', '7002/udp', '--json', ...protocolArgs, '--gateway', '127.0.0.1',
      '--gateway-port', String(await closedUdpPort()), '--ssdp-target', `127.0.0.1:${igd.ssdpUnicastTarget.port}`])
    const mapped = (): Array<Record<string, unknown>> => cli.events.filter((e) => e.event === 'mapped')
    await waitFor(() => mapped().length >= 2, `two mapped events (stderr: ${cli.stderr()})`, 10_000)
    const byProtocol = Object.fromEntries(mapped().map((e) => [e.protocol, e]))
    assert.deepEqual(byProtocol.tcp, { event: 'mapped', protocol: 'tcp', internalPort: 7001, externalAddress: '198.51.100.4', externalPort: 7001, method: 'upnp', lifetime: 7200 })
    assert.deepEqual(byProtocol.udp, { event: 'mapped', protocol: 'udp', internalPort: 7002, externalAddress: '198.51.100.4', externalPort: 7002, method: 'upnp', lifetime: 7200 })
    assert.deepEqual(igd.mappings().map((m) => `${m.protocol} ${m.externalPort}`).sort(), ['TCP 7001', 'UDP 7002'])
    cli.child.kill('SIGINT')
    assert.equal(await cli.exit, 0, cli.stderr())
    assert.deepEqual(igd.mappings(), [])
    assert.deepEqual(cli.events.filter((e) => e.event === 'unmapped').map((e) => e.protocol).sort(), ['tcp', 'udp'])
  })
}

test('--ssdp-target must be IP:PORT', async () => {
  for (const target of ['localhost:1900', '127.0.0.1', '127.0.0.1:0', '[::1]', 'x:y']) {
    const child = spawn(process.execPath, [bin, 'map', '4001', '--protocol', 'upnp', '--gateway', '127.0.0.1', '--ssdp-target', target], { stdio: ['ignore', 'ignore', 'pipe'] })
    let stderr = ''
    child.stderr.on('data', (chunk: Buffer) => { stderr += chunk.toString() })
    const code = await new Promise<number | null>((resolve) => child.on('exit', resolve))
    assert.equal(code, 2, `${target}: ${stderr}`)
    assert.match(stderr, /^natmapper: --ssdp-target /, target)
  }
})

test('issue 18 point 7: natmapper unmap refuses to delete an entry that is not ours (another internal port), and says why; ours it deletes', async (ctx) => {
  const igd = await startIgd(ctx, { externalAddress: '198.51.100.4' })
  igd.occupy(7170, 'TCP', '127.0.0.1', { internalPort: 7171, description: 'libminiupnpc' })
  igd.occupy(7175, 'TCP', '127.0.0.1', { internalPort: 7175, description: 'natmapper' })
  const flags = ['--protocol', 'upnp', '--gateway', '127.0.0.1', '--ssdp-target', `127.0.0.1:${igd.ssdpUnicastTarget.port}`]
  const refused = await runCli(['unmap', '7170/tcp', ...flags])
  assert.equal(refused.code, 1)
  assert.match(refused.stderr, /could not unmap 7170\/tcp: not deleting UPnP TCP external port 7170: the router's entry there is not natmapper's: it forwards to 127\.0\.0\.1:7171, not to internal port 7170/)
  const deleted = await runCli(['unmap', '7175/tcp', ...flags])
  assert.equal(deleted.code, 0, deleted.stderr)
  assert.deepEqual(igd.mappings().map((m) => m.externalPort), [7170])
})
