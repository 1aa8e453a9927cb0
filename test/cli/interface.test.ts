import { test } from 'node:test'
import assert from 'node:assert/strict'
import { networkInterfaces } from 'node:os'
import { runCli } from '../helpers/cli.js'
import { SimulatedPmpGateway } from '../../src/testing/pmp-gateway.js'

/** This machine's loopback interface name (lo on Linux): the one interface these tests may use. */
const loopback = Object.entries(networkInterfaces()).find(([, infos]) => infos?.some((i) => i.address === '127.0.0.1'))?.[0]

test('--interface and --local-address: every command refuses an interface that is not here, exit 2, before sending anything', async () => {
  const runs: Array<[string[], RegExp]> = [
    [['discover', '--interface', 'nm-no-such0'], /no network interface named "nm-no-such0"/],
    [['map', '4001', '--once', '--interface', 'nm-no-such0'], /no network interface named "nm-no-such0"/],
    [['unmap', '4001/udp', '--interface', 'nm-no-such0'], /no network interface named "nm-no-such0"/],
    [['external-ip', '--local-address', '192.0.2.222'], /no interface of this host has the address 192\.0\.2\.222/],
    [['doctor', '--local-address', 'eth0'], /the local address must be an IPv4 address, not "eth0"/]
  ]
  await Promise.all(runs.map(async ([args, message]) => {
    const result = await runCli(args)
    assert.equal(result.code, 2, `${args.join(' ')}: ${result.stderr}`)
    assert.match(result.stderr, message)
  }))
})

test('discover --local-address 127.0.0.1: the report names the interface and the address bound, and the router saw it', async (ctx) => {
  assert.ok(loopback !== undefined, 'this host lists 127.0.0.1 on an interface')
  const sim = await SimulatedPmpGateway.start()
  ctx.after(async () => { await sim.close() })
  const result = await runCli(['discover', '--json', '--protocol', 'pcp', '--gateway', sim.address, '--gateway-port', String(sim.port), '--local-address', '127.0.0.1'])
  assert.equal(result.code, 0, result.stderr)
  const report = JSON.parse(result.stdout) as { interface: string, localAddress: string, method: string }
  assert.deepEqual([report.interface, report.localAddress, report.method], [loopback, '127.0.0.1', 'pcp'])
  assert.deepEqual(sim.received.map((r) => r.from), ['127.0.0.1'])
  const text = await runCli(['discover', '--protocol', 'pcp', '--gateway', sim.address, '--gateway-port', String(sim.port), '--interface', loopback])
  assert.match(text.stdout, new RegExp(`^gateway 127\\.0\\.0\\.1 on ${loopback} \\(from 127\\.0\\.0\\.1\\)$`, 'm'))
})
