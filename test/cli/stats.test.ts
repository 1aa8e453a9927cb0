// The counters in the CLI (issue 16): map --json ends with a stats line, doctor shows what its test mapping cost.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { runCli, startCli } from '../helpers/cli.js'
import { waitFor } from '../helpers/wait.js'
import { SimulatedPmpGateway } from '../../src/testing/pmp-gateway.js'

test('map --json, --once or kept, ends with a stats line: requests per protocol, mapped, renewals', async (ctx) => {
  const sim = await SimulatedPmpGateway.start({ externalAddress: '11.0.0.2' })
  ctx.after(async () => { await sim.close() })
  const flags = ['--gateway', sim.address, '--gateway-port', String(sim.port), '--protocol', 'pcp']
  const once = await runCli(['map', '7001', '7002/udp', '--once', '--json', ...flags])
  assert.equal(once.code, 0, once.stderr)
  const last = JSON.parse(once.stdout.trim().split('\n').at(-1)!) as Record<string, any>
  assert.equal(last.event, 'stats')
  assert.deepEqual(last.protocols.pcp, { requests: 3, retransmissions: 0, answers: 3, timeouts: 0, refusals: {} }, 'the ANNOUNCE and two MAPs')
  assert.equal(last.mapped, 2)

  const kept = startCli(ctx, ['map', '7003', '--json', ...flags])
  await waitFor(() => kept.events.some((e) => e.event === 'mapped'), 'mapped', 5000)
  kept.child.kill('SIGINT')
  assert.equal(await kept.exit, 0)
  const stats = kept.events.at(-1)!
  assert.equal(stats.event, 'stats')
  assert.equal((stats.protocols as any).pcp.requests, 3, 'the ANNOUNCE, the MAP and the delete')
})

test('doctor shows what its test mapping cost the router', async (ctx) => {
  const sim = await SimulatedPmpGateway.start({ externalAddress: '11.0.0.2' })
  ctx.after(async () => { await sim.close() })
  const result = await runCli(['doctor', '--protocol', 'pcp', '--gateway', sim.address, '--gateway-port', String(sim.port)])
  assert.equal(result.code, 0, result.stdout)
  assert.match(result.stdout, /ok {3}router requests +PCP 3 requests, 3 answered, 0 timed out, 0 sent again/)
})
