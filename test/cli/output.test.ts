// What the CLI says, where issue 18 (points 9, 12, 13) found it misleading: each test names the point.
import { test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { runCli, startCli } from '../helpers/cli.js'
import { waitFor } from '../helpers/wait.js'
import { SimulatedPmpGateway, type SimulatedPmpGatewayOptions } from '../../src/testing/pmp-gateway.js'
import { freeUdpPort } from '../helpers/net.js'

async function router (ctx: TestContext, options: SimulatedPmpGatewayOptions = {}): Promise<{ sim: SimulatedPmpGateway, flags: string[] }> {
  const sim = await SimulatedPmpGateway.start(options)
  ctx.after(async () => { await sim.close() })
  return { sim, flags: ['--gateway', sim.address, '--gateway-port', String(sim.port)] }
}

test('issue 18.9: doctor with nothing answering gives no double-NAT advice', async () => {
  const result = await runCli(['doctor', '--protocol', 'pcp', '--gateway', '127.0.0.1', '--gateway-port', String(await freeUdpPort())])
  assert.equal(result.code, 1)
  assert.match(result.stdout, /external address unknown: no protocol answered/)
  assert.doesNotMatch(result.stdout, /bridge mode|double NAT|provider/)
})

test('issue 18.9: doctor behind a carrier-grade NAT whose router refuses the test mapping points upstream, not at the router\'s permissions', async (ctx) => {
  const { sim, flags } = await router(ctx, { pcp: false, externalAddress: '100.64.0.7' })
  sim.faults.refuseWith = { natpmp: 2 }
  const result = await runCli(['doctor', '--protocol', 'natpmp', ...flags])
  assert.equal(result.code, 1)
  assert.match(result.stdout, /FAIL external address 100\.64\.0\.7: carrier-grade NAT/)
  assert.match(result.stdout, /-> the router has no public address to map on/)
  assert.doesNotMatch(result.stdout, /port-forwarding permissions/)
})

test('issue 18.9: external-ip --json prints JSON when the gateway has no address to give', async (ctx) => {
  const { sim, flags } = await router(ctx, { pcp: false })
  sim.faults.externalAddressResult = 3
  const result = await runCli(['external-ip', '--json', '--protocol', 'natpmp', ...flags])
  assert.equal(result.code, 1)
  const report = JSON.parse(result.stdout) as Record<string, unknown>
  assert.equal(report.externalAddress, null)
  assert.equal(report.public, false)
  assert.match(String(report.reason), /NETWORK_FAILURE/)
})

test('issue 18.9: discover --timeout 1 names what did not answer in time, no empty parentheses', async (ctx) => {
  const { sim, flags } = await router(ctx)
  sim.faults.silent = true
  const result = await runCli(['discover', '--protocol', 'pcp', '--timeout', '1', ...flags])
  assert.equal(result.code, 1)
  assert.match(result.stdout, /^ {2}PCP {7}no: no answer within 1 ms$/m)
  assert.doesNotMatch(result.stdout, /\(\)/)
})

test('issue 18.9: demo --json uses map\'s field names (lifetime), and says the reboot as lost then mapped', async () => {
  const result = await runCli(['demo', '--json'])
  assert.equal(result.code, 0, result.stderr)
  const events = result.stdout.trim().split('\n').map((line) => JSON.parse(line) as Record<string, unknown>)
  const mapped = events.filter((e) => e.event === 'mapped')
  assert.equal(mapped.length, 2, 'mapped, and mapped again after the reboot')
  for (const e of mapped) {
    assert.equal(e.lifetime, 7200)
    assert.equal('lifetimeSeconds' in e, false)
  }
  const order = events.map((e) => e.event).filter((e) => e === 'mapped' || e === 'lost' || e === 'reboot')
  assert.deepEqual(order, ['mapped', 'reboot', 'lost', 'mapped'])
})

test('issue 18.9: map --once prints in the order the ports were given; map on NAT-PMP says the external address', async (ctx) => {
  const { flags } = await router(ctx, { externalAddress: '11.0.0.8' })
  const once = await runCli(['map', '7003/udp', '7001', '7002/tcp', '--once', '--protocol', 'pcp', ...flags])
  assert.equal(once.code, 0, once.stderr)
  assert.deepEqual(once.stdout.trim().split('\n').map((l) => l.split(' ').slice(1, 3).join(' ')), ['udp 7003', 'tcp 7001', 'tcp 7002'])

  const natpmp = await router(ctx, { pcp: false, externalAddress: '11.0.0.9' })
  const cli = startCli(ctx, ['map', '7004', '--json', '--protocol', 'natpmp', ...natpmp.flags])
  await waitFor(() => cli.events.some((e) => e.event === 'mapped') && cli.events.some((e) => e.event === 'external-address'), 'mapped and the address', 5000)
  assert.deepEqual(cli.events.find((e) => e.event === 'external-address'), { event: 'external-address', address: '11.0.0.9', public: true })
  cli.child.kill('SIGINT')
  assert.equal(await cli.exit, 0)
})

test('issue 18.13: bad arguments get one line of natmapper\'s own, exit 2; PCP and TCP in capitals are accepted', async (ctx) => {
  for (const [args, pattern] of [
    [['map', '-1'], /^natmapper: invalid port "-1": ports are 1-65535; see natmapper map --help\n$/],
    [['map', '7001', '--bogus'], /^natmapper: unknown option --bogus for natmapper map; see natmapper map --help\n$/],
    [['map', '7001', '--timeout', '-5'], /^natmapper: --timeout needs a value, not "-5"; see natmapper map --help\n$/],
    [['map', '7001', '--lifetime'], /^natmapper: --lifetime needs a value; see natmapper map --help\n$/],
    [['discover', '--json=3'], /^natmapper: --json takes no value; see natmapper discover --help\n$/]
  ] as const) {
    const result = await runCli([...args])
    assert.equal(result.code, 2, `${args.join(' ')}: ${result.stderr}`)
    assert.match(result.stderr, pattern, args.join(' '))
    assert.doesNotMatch(result.stderr, /To specify a positional|ambiguous/)
  }
  const { flags } = await router(ctx)
  const caps = await runCli(['map', '7030/TCP', '--once', '--protocol', 'PCP', ...flags])
  assert.equal(caps.code, 0, caps.stderr)
  assert.match(caps.stdout, /^mapped tcp 7030 /m)
})
