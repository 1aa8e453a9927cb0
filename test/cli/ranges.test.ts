import { test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { runCli, startCli } from '../helpers/cli.js'
import { waitFor } from '../helpers/wait.js'
import { SimulatedPmpGateway, type SimulatedPmpGatewayOptions } from '../../src/testing/pmp-gateway.js'
import { describePorts, parsePortArguments } from '../../src/cli/ports.js'

async function router (ctx: TestContext, options: SimulatedPmpGatewayOptions = {}): Promise<{ sim: SimulatedPmpGateway, flags: string[] }> {
  const sim = await SimulatedPmpGateway.start(options)
  ctx.after(async () => { await sim.close() })
  // PCP/NAT-PMP on loopback only: UPnP would search the real network.
  return { sim, flags: ['--protocol', 'pcp', '--gateway', sim.address, '--gateway-port', String(sim.port)] }
}

function stateDir (ctx: TestContext): NodeJS.ProcessEnv {
  const dir = mkdtempSync(join(tmpdir(), 'natmapper-state-'))
  ctx.after(() => { rmSync(dir, { recursive: true, force: true }) })
  return { NATMAPPER_STATE_FILE: join(dir, 'mappings.json') }
}

test('port ranges: FIRST-LAST/proto expands in order, repeats once; describePorts says them back short', () => {
  const specs = parsePortArguments(['4001/tcp', '5000-5003/udp', '5002/udp', '7000-7000'])
  assert.deepEqual(specs.map((s) => `${s.port}/${s.protocol}`), ['4001/tcp', '5000/udp', '5001/udp', '5002/udp', '5003/udp', '7000/tcp'])
  assert.equal(describePorts(specs), '4001/tcp, 5000-5003/udp, 7000/tcp')
})

for (const [arg, message] of [
  ['10-5/udp', /^natmapper: invalid port range "10-5\/udp": it goes backwards \(10 is above 5\); write FIRST-LAST, e\.g\. 5-10\/udp$/m],
  ['0-3/tcp', /^natmapper: invalid port range "0-3\/tcp": 0 is not a port \(ports are 1-65535\)$/m],
  ['1-70000/udp', /^natmapper: invalid port range "1-70000\/udp": 70000 is not a port \(ports are 1-65535\)$/m],
  ['1000-9000/udp', /^natmapper: invalid port range "1000-9000\/udp": 8001 ports, more than the 4096 natmapper maps at once$/m],
  ['5000-5010/sctp', /^natmapper: invalid port range "5000-5010\/sctp": the protocol is tcp or udp, not "sctp"$/m]
] as const) {
  test(`map ${arg}: exit 2 with a clear message, nothing sent`, async (ctx) => {
    const { sim, flags } = await router(ctx)
    const result = await runCli(['map', arg, '--once', ...flags])
    assert.equal(result.code, 2, result.stderr)
    assert.match(result.stderr, message)
    assert.equal(sim.requestCount, 0)
  })
}

test('map 5000-5009/udp --once --json on a router that allows 8: one mapped line per port, one error line per failed port, a short summary, exit 1', async (ctx) => {
  const { sim, flags } = await router(ctx, { maxMappings: 8 })
  const env = stateDir(ctx)
  const result = await runCli(['map', '5000-5009/udp', '4001/tcp', '--once', '--json', ...flags], env)
  assert.equal(result.code, 1, result.stderr)
  const events = result.stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>)
  const mapped = events.filter((e) => e.event === 'mapped').map((e) => e.internalPort)
  const errors = events.filter((e) => e.event === 'error')
  assert.equal(mapped.length, 8)
  assert.equal(errors.length, 3)
  for (const e of errors) assert.match(String(e.message), /NO_RESOURCES \(8\)/)
  assert.deepEqual([...mapped, ...errors.map((e) => e.internalPort)].map(Number).sort((a, b) => a - b), [4001, 5000, 5001, 5002, 5003, 5004, 5005, 5006, 5007, 5008, 5009])
  assert.match(result.stderr, /^natmapper: could not map 5008-5009\/udp, 4001\/tcp: pcp gateway refused the request: NO_RESOURCES \(8\)$/m)
  assert.equal(sim.mappings().length, 8)
  // What --once left is deleted by a range too.
  const unmapped = await runCli(['unmap', '5000-5009/udp', '4001/tcp', ...flags], env)
  assert.equal(sim.mappings().length, 0, unmapped.stderr)
})

test('map 6000-6031/udp (kept): every port mapped, then all deleted at Ctrl-C, exit 0; a port never mapped makes it exit 1', async (ctx) => {
  const { sim, flags } = await router(ctx)
  const cli = startCli(ctx, ['map', '6000-6031/udp', '--json', ...flags])
  await waitFor(() => cli.events.filter((e) => e.event === 'mapped').length === 32, `32 mapped (stderr: ${cli.stderr()})`, 5000)
  assert.equal(sim.mappings().length, 32)
  cli.child.kill('SIGINT')
  assert.equal(await cli.exit, 0, cli.stderr())
  assert.equal(cli.events.filter((e) => e.event === 'unmapped').length, 32)
  assert.deepEqual(sim.mappings(), [])

  const { sim: small, flags: smallFlags } = await router(ctx, { maxMappings: 30 })
  const full = startCli(ctx, ['map', '6000-6031/udp', '--json', ...smallFlags])
  await waitFor(() => full.events.filter((e) => e.event === 'error').length === 2, `2 errors (stderr: ${full.stderr()})`, 5000)
  full.child.kill('SIGINT')
  assert.equal(await full.exit, 1, full.stderr())
  assert.match(full.stderr(), /^natmapper: 2 of 32 ports never mapped: 6030-6031\/udp$/m)
  assert.deepEqual(small.mappings(), [])
})
