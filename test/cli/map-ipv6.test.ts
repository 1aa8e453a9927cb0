import { test } from 'node:test'
import assert from 'node:assert/strict'
import { SimulatedPmpGateway } from '../../src/testing/pmp-gateway.js'
import { waitFor } from '../helpers/wait.js'
import { runCli, startCli } from '../helpers/cli.js'
import { pinholeServer } from '../upnp/pinhole-server.js'

test('map --ipv6 --json over PCP on ::1: a mapped event with family 6 and the address opened; SIGINT deletes the pinhole', async (ctx) => {
  const gateway = await SimulatedPmpGateway.start({ address: '::1' })
  ctx.after(async () => { await gateway.close() })
  const cli = startCli(ctx, ['map', '4001/tcp', '--ipv6', '--json', '--gateway', '::1', '--gateway-port', String(gateway.port), '--local-address', '::1'])
  await waitFor(() => cli.events.some((e) => e.event === 'mapped'), `a mapped event (stderr: ${cli.stderr()})`, 5000)
  assert.deepEqual(cli.events.find((e) => e.event === 'mapped'), { event: 'mapped', family: 6, protocol: 'tcp', internalPort: 4001, externalAddress: '::1', externalPort: 4001, method: 'pcp', lifetime: 7200 })
  assert.deepEqual(gateway.mappings().map((m) => [m.clientAddress, m.internalPort]), [['::1', 4001]])
  cli.child.kill('SIGINT')
  assert.equal(await cli.exit, 0, cli.stderr())
  assert.deepEqual(gateway.mappings(), [])
  assert.deepEqual(cli.events.filter((e) => e.event === 'unmapped'), [{ event: 'unmapped', family: 6, protocol: 'tcp', internalPort: 4001 }])
  assert.deepEqual(cli.events.filter((e) => e.event === 'error'), [])
})

test('map --ipv4 --ipv6 --once: both families, each line naming its family and the address opened', async (ctx) => {
  const v4 = await SimulatedPmpGateway.start({ externalAddress: '11.0.0.5' })
  const v6 = await SimulatedPmpGateway.start({ address: '::1' })
  ctx.after(async () => { await v4.close(); await v6.close() })
  const result = await runCli(['map', '4001/tcp', '--ipv4', '--ipv6', '--once', '--protocol', 'pcp', '--gateway', v4.address, '--gateway-port', String(v4.port),
    '--gateway6', '::1', '--gateway6-port', String(v6.port), '--local-address6', '::1'])
  assert.equal(result.code, 0, result.stderr)
  assert.match(result.stdout, /^mapped tcp 4001 -> 11\.0\.0\.5:4001 \(pcp, lifetime 7200 s\)$/m)
  assert.match(result.stdout, /^mapped tcp 4001 -> \[::1\]:4001 \(IPv6 pcp, lifetime 7200 s\)$/m)
  assert.equal(v4.mappings().length, 1)
  assert.equal(v6.mappings().length, 1, '--once leaves the pinhole for its lifetime')
})

test('map --ipv6 --pinhole-url: a UPnP pinhole (AddPinhole from the address opened), deleted at SIGINT', async (ctx) => {
  const router = await pinholeServer()
  ctx.after(() => router.server.close())
  const cli = startCli(ctx, ['map', '4002/udp', '--ipv6', '--pinhole-url', router.url, '--local-address', '::1'])
  const lines = (): string[] => cli.events.flatMap((e) => e.event === 'not-json' ? [String(e.line)] : [])
  await waitFor(() => lines().some((l) => l.startsWith('mapped')), `a mapped line (stderr: ${cli.stderr()})`, 5000)
  assert.deepEqual(lines().filter((l) => l.startsWith('mapped')), ['mapped udp 4002 -> [::1]:4002 (IPv6 upnp-pinhole, lifetime 7200 s)'])
  assert.deepEqual([...router.pinholes.values()].map((p) => [p.InternalClient, p.InternalPort, p.Protocol]), [['::1', '4002', '17']])
  cli.child.kill('SIGINT')
  assert.equal(await cli.exit, 0, cli.stderr())
  assert.equal(router.pinholes.size, 0)
  assert.deepEqual(router.seen.map((s) => s.action), ['GetFirewallStatus', 'AddPinhole', 'DeletePinhole'])
})

test('map: IPv6 options without --ipv6 are a usage error (exit 2)', async () => {
  for (const args of [['map', '4001', '--gateway6', '::1'], ['map', '4001', '--pinhole-url', 'http://[::1]:1/x']]) {
    const result = await runCli(args)
    assert.equal(result.code, 2, `${args.join(' ')}: ${result.stderr}`)
    assert.match(result.stderr, /^natmapper: --\S+ applies with --ipv6\n$/)
  }
})

test('map --ipv6 --ipv6-method pcp --pinhole-url: PCP opens the pinhole (UPnP not asked while PCP deletes); a bad or lone --ipv6-method is a usage error', async (ctx) => {
  const gateway = await SimulatedPmpGateway.start({ address: '::1' })
  const router = await pinholeServer()
  ctx.after(async () => { router.server.close(); await gateway.close() })
  const cli = startCli(ctx, ['map', '4003/tcp', '--ipv6', '--json', '--ipv6-method', 'pcp', '--pinhole-url', router.url, '--gateway', '::1', '--gateway-port', String(gateway.port), '--local-address', '::1'])
  await waitFor(() => cli.events.some((e) => e.event === 'mapped'), `a mapped event (stderr: ${cli.stderr()})`, 5000)
  assert.equal(cli.events.find((e) => e.event === 'mapped')?.method, 'pcp')
  assert.deepEqual(gateway.mappings().map((m) => [m.clientAddress, m.internalPort]), [['::1', 4003]])
  cli.child.kill('SIGINT')
  assert.equal(await cli.exit, 0, cli.stderr())
  assert.deepEqual(gateway.mappings(), [])
  assert.deepEqual(router.seen, [])
  for (const [args, message] of [
    [['--ipv6-method', 'natpmp'], /--ipv6-method takes pcp or upnp-pinhole, not "natpmp"/],
    [['--ipv6-method', 'upnp-pinhole'], /--ipv6-method upnp-pinhole needs --pinhole-url/],
    [['--ipv6-method', 'pcp', '--no-such'], /./]
  ] as const) {
    const result = await runCli(['map', '4001', '--ipv6', '--gateway', '::1', ...args])
    assert.equal(result.code, 2, `${args.join(' ')}: ${result.stderr}`)
    assert.match(result.stderr, message)
  }
  const lone = await runCli(['map', '4001', '--ipv6-method', 'pcp'])
  assert.equal(lone.code, 2)
  assert.match(lone.stderr, /--ipv6-method applies with --ipv6/)
})
