import { test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { createSocket } from 'node:dgram'
import { PcpClient } from '../../src/port-control/pcp-client.js'
import { SimulatedPmpGateway, type SimulatedPmpGatewayOptions } from '../../src/testing/pmp-gateway.js'
import { FakeClock } from '../../src/testing/fake-clock.js'
import { GatewayRefusedError, TimeoutError, UncertainMappingError } from '../../src/errors.js'
import { PcpResultCode, PcpOpcode } from '../../src/pcp/codes.js'
import { decodePcpRequest, encodePcpResponse } from '../../src/pcp/codec.js'
import { openGateway } from '../../src/discover/discover.js'
import { NatPmpClient } from '../../src/port-control/natpmp-client.js'
import { waitFor } from '../helpers/wait.js'
import { mapChecked } from '../../src/gateway.js'

async function setup (ctx: TestContext, options: SimulatedPmpGatewayOptions = {}, clientOptions: { maxAttempts?: number } = {}) {
  const clock = new FakeClock()
  const gateway = await SimulatedPmpGateway.start({ clock, ...options })
  const client = new PcpClient({ gateway: gateway.address, port: gateway.port, clock, ...clientOptions })
  ctx.after(async () => {
    client.close()
    await gateway.close()
  })
  return { clock, gateway, client }
}

test('a MAP costs one request and carries the external address, port and lifetime', async (ctx) => {
  const t = await setup(ctx, { externalAddress: '198.51.100.9', maxLifetimeSeconds: 3600 })
  const mapping = await mapChecked(t.client, { protocol: 'tcp', internalPort: 7001, lifetimeSeconds: 7200 })
  assert.equal(mapping.method, 'pcp')
  assert.equal(mapping.externalAddress, '198.51.100.9')
  assert.equal(mapping.externalPort, 7001)
  assert.equal(mapping.lifetimeSeconds, 3600, 'the server clamped the lifetime and the client kept the clamp')
  assert.equal(t.gateway.requestCount, 1)
  assert.equal(await t.client.externalAddress(), '198.51.100.9', 'known from the MAP reply, no request')
  assert.equal(t.gateway.requestCount, 1)
})

test('listening for announcements binds where asked, from the client\'s own socket, and costs the gateway nothing', async (ctx) => {
  const t = await setup(ctx)
  const where = { portControl: { port: 0, bindAddress: '127.0.0.1', multicastGroup: undefined } }
  assert.equal((await t.client.describe().listen?.(where))?.address, '127.0.0.1')
  const nat = new NatPmpClient({ gateway: t.gateway.address, port: t.gateway.port, clock: t.clock })
  ctx.after(() => { nat.close() })
  assert.equal((await nat.describe().listen?.(where))?.address, '127.0.0.1')
  assert.equal(t.gateway.requestCount, 0)
})

test('renew and delete reuse the nonce, so a server that enforces it accepts them', async (ctx) => {
  const t = await setup(ctx)
  const mapping = await mapChecked(t.client, { protocol: 'udp', internalPort: 7002, suggestedExternalPort: 40000, lifetimeSeconds: 600 })
  const renewed = await t.client.renew(mapping)
  assert.equal(renewed.externalPort, 40000)
  assert.equal(renewed.internalPort, 7002)
  assert.equal(t.gateway.mappings().length, 1)
  // Another client (another nonce) may not delete it: miniupnpd's NOT_AUTHORIZED.
  const intruder = new PcpClient({ gateway: t.gateway.address, port: t.gateway.port, clock: t.clock })
  ctx.after(() => { intruder.close() })
  const err = await intruder.unmap({ ...mapping, session: { nonce: new Uint8Array(12), requestedLifetimeSeconds: 600 } }).catch((e: unknown) => e)
  assert.ok(err instanceof GatewayRefusedError)
  assert.equal(err.resultName, 'NOT_AUTHORIZED')
  await t.client.unmap(renewed)
  assert.deepEqual(t.gateway.mappings(), [])
})

test('a NAT-PMP-only server answers UNSUPP_VERSION; openGateway then falls back to NAT-PMP', async (ctx) => {
  const t = await setup(ctx, { pcp: false })
  const err = await mapChecked(t.client, { protocol: 'tcp', internalPort: 7001, lifetimeSeconds: 60 }).catch((e: unknown) => e)
  assert.ok(err instanceof GatewayRefusedError)
  assert.equal(err.resultName, 'UNSUPP_VERSION')
  assert.equal(await t.client.announce(), false)
  const gateway = await openGateway({ gateway: t.gateway.address, port: t.gateway.port, clock: t.clock, methods: ['pcp', 'natpmp'] })
  ctx.after(() => { gateway.close() })
  assert.ok(gateway instanceof NatPmpClient)
  const mapping = await mapChecked(gateway, { protocol: 'tcp', internalPort: 7001, lifetimeSeconds: 60 })
  assert.equal(mapping.method, 'natpmp')
})

test('openGateway picks PCP when the server speaks it, at the cost of one ANNOUNCE and one address request', async (ctx) => {
  const t = await setup(ctx)
  const gateway = await openGateway({ gateway: t.gateway.address, port: t.gateway.port, clock: t.clock, methods: ['pcp', 'natpmp'] })
  ctx.after(() => { gateway.close() })
  assert.equal(gateway.method, 'pcp')
  assert.deepEqual(t.gateway.received.map((r) => r.summary).sort(), ['ANNOUNCE', 'EXTERNAL_ADDRESS'])
})

test('a short-lifetime refusal carries its lifetime (NO_RESOURCES, RFC 6887 §7.4)', async (ctx) => {
  const t = await setup(ctx)
  t.gateway.faults.refuseWith = { pcp: PcpResultCode.NO_RESOURCES, lifetimeSeconds: 30 }
  const err = await mapChecked(t.client, { protocol: 'tcp', internalPort: 7001, lifetimeSeconds: 7200 }).catch((e: unknown) => e)
  assert.ok(err instanceof GatewayRefusedError)
  assert.equal(err.resultName, 'NO_RESOURCES')
  assert.equal(err.lifetimeSeconds, 30)
})

test('an epoch that goes backwards reports that the server lost its state', async (ctx) => {
  let resets = 0
  const t = await setup(ctx)
  t.client.onReset(() => { resets++ })
  const mapping = await mapChecked(t.client, { protocol: 'tcp', internalPort: 7001, lifetimeSeconds: 7200 })
  await t.clock.advance(30_000)
  await t.client.renew(mapping)
  assert.equal(resets, 0)
  t.gateway.restart()
  await t.clock.advance(1_000)
  const again = await t.client.renew(mapping)
  assert.equal(resets, 1)
  assert.equal(again.externalPort, 7001)
})

test('replies with another nonce are ignored (stale or forged), the right one is taken', async (ctx) => {
  // A hand-made server that answers each MAP twice: first with a wrong nonce and another port.
  const server = createSocket('udp4')
  await new Promise<void>((resolve) => server.bind(0, '127.0.0.1', resolve))
  ctx.after(() => { server.close() })
  server.on('message', (message, rinfo) => {
    const request = decodePcpRequest(new Uint8Array(message))
    const map = request.map!
    const answer = (nonce: Uint8Array, externalPort: number): void => {
      server.send(encodePcpResponse({
        version: 2, opcode: PcpOpcode.MAP, resultCode: 0, lifetimeSeconds: 120, epochSeconds: 5, options: [],
        map: { ...map, nonce, externalPort, externalAddress: '192.0.2.1' }
      }), rinfo.port, rinfo.address)
    }
    answer(new Uint8Array(12).fill(7), 1111)
    answer(map.nonce, 2222)
  })
  const client = new PcpClient({ gateway: '127.0.0.1', port: server.address().port })
  ctx.after(() => { client.close() })
  const mapping = await mapChecked(client, { protocol: 'tcp', internalPort: 7001, lifetimeSeconds: 120 })
  assert.equal(mapping.externalPort, 2222)
})

test('no answer within the attempts: an UncertainMappingError around the TimeoutError, with what to delete (the nonce asked with)', async (ctx) => {
  const t = await setup(ctx, {}, { maxAttempts: 2 })
  t.gateway.faults.silent = true
  const pending = mapChecked(t.client, { protocol: 'tcp', internalPort: 7001, lifetimeSeconds: 60 }).catch((e: unknown) => e)
  await waitFor(() => t.gateway.requestCount === 1, 'request')
  await t.clock.advance(250)
  await waitFor(() => t.gateway.requestCount === 2, 'retransmission')
  await t.clock.advance(500)
  const err = await pending
  assert.ok(err instanceof UncertainMappingError && err.reason instanceof TimeoutError, String(err))
  assert.match(err.message, /after 2 attempts/)
  assert.equal(err.mapping.internalPort, 7001)
  // The delete must carry the nonce the server may hold the mapping under (RFC 6887 §11.1).
  t.gateway.faults.silent = false
  await t.client.unmap(err.mapping)
  assert.ok(t.gateway.received.some((r) => r.summary === 'MAP 6 7001 lifetime 0'), JSON.stringify(t.gateway.received.map((r) => r.summary)))
})
