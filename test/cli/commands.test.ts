import { test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { runCli } from '../helpers/cli.js'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { SimulatedPmpGateway, type SimulatedPmpGatewayOptions } from '../../src/testing/pmp-gateway.js'



async function router (ctx: TestContext, options: SimulatedPmpGatewayOptions = {}): Promise<{ sim: SimulatedPmpGateway, flags: string[] }> {
  const sim = await SimulatedPmpGateway.start(options)
  ctx.after(async () => { await sim.close() })
  // UPnP is probed by SSDP on the real network: keep these tests to PCP/NAT-PMP on loopback.
  return { sim, flags: ['--gateway', sim.address, '--gateway-port', String(sim.port)] }
}

function stateDir (ctx: TestContext): NodeJS.ProcessEnv {
  const dir = mkdtempSync(join(tmpdir(), 'natmapper-state-'))
  ctx.after(() => { rmSync(dir, { recursive: true, force: true }) })
  return { NATMAPPER_STATE_FILE: join(dir, 'mappings.json') }
}

test('discover --json: the protocols that answered, the external address, public', async (ctx) => {
  const { flags } = await router(ctx, { externalAddress: '11.0.0.3' })
  const result = await runCli(['discover', '--json', '--protocol', 'pcp', ...flags])
  assert.equal(result.code, 0, result.stderr)
  const report = JSON.parse(result.stdout) as Record<string, any>
  assert.equal(report.gateway, '127.0.0.1')
  assert.equal(report.method, 'pcp')
  assert.equal(report.protocols.pcp.ok, true)
  assert.equal(typeof report.protocols.pcp.ms, 'number')
})

test('discover --json with every protocol: once PCP and NAT-PMP have answered, the process still waits for UPnP and prints (it exited 13, "unsettled top-level await", when nothing held the event loop)', async (ctx) => {
  const { flags } = await router(ctx, { externalAddress: '11.0.0.3' })
  // A silent SSDP "group" on loopback: UPnP gets no answer and ends at the timeout.
  const { createSocket } = await import('node:dgram')
  const silent = createSocket('udp4')
  await new Promise<void>((resolve) => { silent.bind(0, '127.0.0.1', resolve) })
  ctx.after(() => { silent.close() })
  const result = await runCli(['discover', '--json', '--timeout', '1500', '--ssdp-target', `127.0.0.1:${silent.address().port}`, ...flags])
  assert.equal(result.code, 0, `exit ${String(result.code)}: ${result.stderr}`)
  const report = JSON.parse(result.stdout) as Record<string, any>
  assert.equal(report.method, 'pcp')
  assert.equal(report.protocols.natpmp.ok, true)
  assert.equal(report.protocols.upnp.ok, false)
})

test('discover behind a carrier-grade NAT never says public, and says why in plain words', async (ctx) => {
  const { flags, sim } = await router(ctx, { externalAddress: '100.64.1.2', pcp: false })
  const json = JSON.parse((await runCli(['discover', '--json', '--protocol', 'natpmp', ...flags])).stdout) as Record<string, any>
  assert.equal(json.public, false)
  assert.equal(json.externalAddress, '100.64.1.2')
  assert.match(json.reason, /carrier-grade NAT/)
  sim.faults.externalAddressResult = 3
  const text = await runCli(['discover', '--protocol', 'natpmp', ...flags])
  assert.equal(text.code, 0)
  assert.match(text.stdout, /NAT-PMP\s+answered/)
  assert.match(text.stdout, /double NAT/)
  assert.doesNotMatch(text.stdout, /\(public\)/)
})

test('discover with nothing answering: exit 1 and a clear report, within the timeout', async () => {
  const result = await runCli(['discover', '--gateway', '127.0.0.1', '--gateway-port', '9', '--protocol', 'natpmp', '--timeout', '2000'])
  assert.equal(result.code, 1)
  assert.match(result.stdout, /NAT-PMP\s+no: .*refused/)
  assert.match(result.stdout, /no port-mapping protocol answered/)
})

test('external-ip prints the address alone, and warns on stderr when it is not public', async (ctx) => {
  const { flags } = await router(ctx, { externalAddress: '11.0.0.8' })
  const result = await runCli(['external-ip', ...flags, '--protocol', 'natpmp'])
  assert.equal(result.code, 0, result.stderr)
  assert.equal(result.stdout, '11.0.0.8\n')
  const { flags: cgnat } = await router(ctx, { externalAddress: '100.64.0.8' })
  const warned = await runCli(['external-ip', ...cgnat, '--protocol', 'natpmp'])
  assert.equal(warned.stdout, '100.64.0.8\n')
  assert.match(warned.stderr, /warning: carrier-grade NAT/)
})

test('map --once, list, unmap: the saved PCP nonce lets a later process delete the mapping', async (ctx) => {
  const { sim, flags } = await router(ctx)
  const env = stateDir(ctx)
  const mapped = await runCli(['map', '5001/tcp', '5002/udp', '--once', '--protocol', 'pcp', '--json', ...flags], env)
  assert.equal(mapped.code, 0, mapped.stderr)
  assert.equal(sim.mappings().length, 2)
  const list = JSON.parse((await runCli(['list', '--json', ...flags], env)).stdout) as { mappings: Array<Record<string, unknown>> }
  assert.deepEqual(list.mappings.map((m) => `${String(m.protocol)} ${String(m.internalPort)} ${String(m.method)}`).sort(), ['tcp 5001 pcp', 'udp 5002 pcp'])
  const unmapped = await runCli(['unmap', '5001/tcp', '5002/udp', ...flags], env)
  assert.equal(unmapped.code, 0, unmapped.stderr)
  assert.match(unmapped.stdout, /unmapped tcp 5001/)
  assert.deepEqual(sim.mappings(), [], 'the gateway accepted the deletes (same nonce)')
  assert.match((await runCli(['list', ...flags], env)).stdout, /no mappings held by natmapper/)
})

test('unmap of a PCP mapping natmapper has no record of explains why it cannot', async (ctx) => {
  const { flags } = await router(ctx)
  const result = await runCli(['unmap', '5003/tcp', '--protocol', 'pcp', ...flags], stateDir(ctx))
  assert.equal(result.code, 1)
  assert.match(result.stderr, /^natmapper: could not unmap 5003\/tcp: natmapper has no record .* nonce/m)
})

test('unmap with NAT-PMP needs no record', async (ctx) => {
  const { sim, flags } = await router(ctx, { pcp: false })
  const env = stateDir(ctx)
  assert.equal((await runCli(['map', '5004/udp', '--once', ...flags], env)).code, 0)
  assert.equal(sim.mappings().length, 1)
  const result = await runCli(['unmap', '5004/udp', '--protocol', 'natpmp', ...flags], stateDir(ctx))
  assert.equal(result.code, 0, result.stderr)
  assert.deepEqual(sim.mappings(), [])
})

test('doctor: each step with timing, a test mapping made and removed, exit 0', async (ctx) => {
  const { sim, flags } = await router(ctx)
  const result = await runCli(['doctor', '--json', '--protocol', 'pcp', ...flags])
  assert.equal(result.code, 0, result.stdout + result.stderr)
  const report = JSON.parse(result.stdout) as { ok: boolean, steps: Array<{ step: string, ok: boolean, detail: string }> }
  assert.equal(report.ok, true)
  assert.deepEqual(report.steps.map((s) => s.step), ['default route', 'PCP', 'external address', 'test mapping', 'router requests'])
  assert.match(report.steps[3]!.detail, /then removed/)
  assert.deepEqual(sim.mappings(), [])
})

test('doctor on a router that refuses: FAIL lines with advice, exit 1', async (ctx) => {
  const { sim, flags } = await router(ctx)
  sim.faults.refuseWith = { pcp: 2 }
  const result = await runCli(['doctor', '--protocol', 'pcp', ...flags])
  assert.equal(result.code, 1)
  assert.match(result.stdout, /FAIL test mapping .*NOT_AUTHORIZED/)
  assert.match(result.stdout, /-> the router answered but refused to map/)
})

test('demo runs the whole flow in-process and leaves the simulated router empty', async () => {
  const result = await runCli(['demo'])
  assert.equal(result.code, 0, result.stderr)
  assert.match(result.stdout, /^mapped tcp 4001 -> 11\.0\.0\.1:4001/m)
  // The reboot is said as it is: the mapping lost, then mapped again.
  assert.match(result.stdout, /^lost tcp 4001: the gateway announced a restart \(PCP ANNOUNCE\)\nmapped tcp 4001 -> 11\.0\.0\.1:4001/m)
  assert.match(result.stdout, /^closed: router table empty/m)
})

test('every command has --help, and NO_COLOR output has no escape codes', async () => {
  for (const command of ['discover', 'map', 'unmap', 'list', 'external-ip', 'doctor', 'demo']) {
    const result = await runCli([command, '--help'], { NO_COLOR: '1' })
    assert.equal(result.code, 0, command)
    assert.match(result.stdout, new RegExp(`^Usage: natmapper ${command}`), command)
    assert.doesNotMatch(result.stdout, /\u001b\[/)
  }
})
