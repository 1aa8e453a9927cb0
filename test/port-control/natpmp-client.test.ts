import { test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { NatPmpClient } from '../../src/port-control/natpmp-client.js'
import { SimulatedPmpGateway, type SimulatedPmpGatewayOptions } from '../../src/testing/pmp-gateway.js'
import { FakeClock } from '../../src/testing/fake-clock.js'
import { AbortError, GatewayRefusedError, NoResponseError, TimeoutError } from '../../src/errors.js'
import { NatPmpResultCode } from '../../src/natpmp/codes.js'
import { waitFor } from '../helpers/wait.js'
import { mapChecked } from '../../src/gateway.js'
import { freeUdpPort } from '../helpers/net.js'

async function setup (ctx: TestContext, options: SimulatedPmpGatewayOptions = {}, clientOptions: { maxAttempts?: number } = {}) {
  const clock = new FakeClock()
  const gateway = await SimulatedPmpGateway.start({ clock, ...options })
  const client = new NatPmpClient({ gateway: gateway.address, port: gateway.port, clock, ...clientOptions })
  ctx.after(async () => {
    client.close()
    await gateway.close()
  })
  return { clock, gateway, client }
}

test('external address and a first mapping cost the gateway two requests; the next mapping one', async (ctx) => {
  const t = await setup(ctx, { externalAddress: '198.51.100.7' })
  const mapping = await mapChecked(t.client, { protocol: 'tcp', internalPort: 7001, lifetimeSeconds: 7200 })
  assert.equal(mapping.method, 'natpmp')
  assert.equal(mapping.externalAddress, '198.51.100.7')
  assert.equal(mapping.externalPort, 7001)
  assert.equal(mapping.lifetimeSeconds, 7200)
  assert.equal(t.gateway.requestCount, 2)
  await mapChecked(t.client, { protocol: 'udp', internalPort: 7002, lifetimeSeconds: 7200 })
  assert.equal(t.gateway.requestCount, 3)
  assert.deepEqual(t.gateway.mappings().map((m) => `${m.protocol} ${m.internalPort}->${m.externalPort}`).sort(), ['tcp 7001->7001', 'udp 7002->7002'])
})

test('the port and lifetime the gateway grants are honoured, not the ones asked for', async (ctx) => {
  const t = await setup(ctx, { minExternalPort: 40000 })
  t.gateway.faults.capLifetimeSeconds = 600
  const mapping = await mapChecked(t.client, { protocol: 'tcp', internalPort: 7001, lifetimeSeconds: 7200 })
  assert.equal(mapping.externalPort, 40000)
  assert.equal(mapping.lifetimeSeconds, 600)
  assert.equal(mapping.expiresAtMs - mapping.grantedAtMs, 600_000)
})

test('renewal asks for the port previously granted and gets it back after a reboot; the epoch reveals the reboot', async (ctx) => {
  let resets = 0
  const t = await setup(ctx)
  t.client.onReset(() => { resets++ })
  const first = await mapChecked(t.client, { protocol: 'udp', internalPort: 9000, suggestedExternalPort: 50000, lifetimeSeconds: 3600 })
  assert.equal(first.externalPort, 50000)
  await t.clock.advance(60_000)
  t.gateway.restart()
  assert.equal(t.gateway.mappings().length, 0)
  const renewed = await t.client.renew(first)
  assert.equal(renewed.externalPort, 50000)
  assert.equal(renewed.internalPort, 9000)
  assert.equal(resets, 1)
  assert.equal(t.gateway.mappings().length, 1)
})

test('unmap deletes the mapping on the gateway', async (ctx) => {
  const t = await setup(ctx)
  const mapping = await mapChecked(t.client, { protocol: 'tcp', internalPort: 7001, lifetimeSeconds: 7200 })
  await t.client.unmap(mapping)
  assert.deepEqual(t.gateway.mappings(), [])
})

test('a refusal surfaces as GatewayRefusedError with the result name', async (ctx) => {
  const t = await setup(ctx)
  await t.client.externalAddress()
  t.gateway.faults.refuseWith = { natpmp: NatPmpResultCode.NOT_AUTHORIZED }
  const err = await mapChecked(t.client, { protocol: 'tcp', internalPort: 7001, lifetimeSeconds: 7200 }).catch((e: unknown) => e)
  assert.ok(err instanceof GatewayRefusedError)
  assert.equal(err.resultName, 'NOT_AUTHORIZED')
  assert.equal(err.protocol, 'natpmp')
})

test('lost requests are retransmitted after 250 ms, then 500 ms (RFC 6886 §3.1)', async (ctx) => {
  const t = await setup(ctx)
  t.gateway.faults.dropNext = 2
  const pending = t.client.externalAddress()
  await waitFor(() => t.gateway.requestCount === 1, 'first attempt')
  await t.clock.advance(249)
  assert.equal(t.gateway.requestCount, 1)
  await t.clock.advance(1)
  await waitFor(() => t.gateway.requestCount === 2, 'second attempt')
  await t.clock.advance(500)
  assert.equal(await pending, '11.0.0.1')
  assert.equal(t.gateway.requestCount, 3)
})

test('answers from another source port and garbage are ignored', async (ctx) => {
  const t = await setup(ctx, {}, { maxAttempts: 2 })
  t.gateway.faults.garbageFirst = true
  assert.equal(await t.client.externalAddress(), '11.0.0.1')
  t.gateway.faults.wrongSource = true
  const pending = t.client.externalAddress().catch((e: unknown) => e)
  await waitFor(() => t.gateway.requestCount === 2, 'request')
  await t.clock.advance(250)
  await waitFor(() => t.gateway.requestCount === 3, 'retransmission')
  await t.clock.advance(500)
  assert.ok(await pending instanceof TimeoutError)
})

test('a closed port (ICMP port unreachable) fails at once with NoResponseError', async () => {
  const port = await freeUdpPort()
  const client = new NatPmpClient({ gateway: '127.0.0.1', port, clock: new FakeClock() })
  await assert.rejects(client.externalAddress(), NoResponseError)
  client.close()
})

test('the caller\'s AbortSignal stops a request', async (ctx) => {
  const t = await setup(ctx)
  t.gateway.faults.silent = true
  const controller = new AbortController()
  const pending = t.client.externalAddress({ signal: controller.signal })
  await waitFor(() => t.gateway.requestCount === 1, 'request')
  controller.abort()
  await assert.rejects(pending, AbortError)
})

test('requests are serialised: concurrent maps reach the gateway one at a time', async (ctx) => {
  const t = await setup(ctx)
  t.gateway.faults.delayMs = 10
  const all = Promise.all([7001, 7002, 7003].map(async (port) => await mapChecked(t.client, { protocol: 'tcp', internalPort: port, lifetimeSeconds: 60 })))
  for (let n = 1; n <= 4; n++) {
    await waitFor(() => t.gateway.requestCount === n, `request ${n}`)
    assert.equal(t.gateway.requestCount, n)
    await t.clock.advance(10)
  }
  const mappings = await all
  assert.deepEqual(mappings.map((m) => m.externalPort), [7001, 7002, 7003])
})
