import { test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { GatewayRefusedError, NoResponseError, TimeoutError } from '../../src/errors.js'
import type { Gateway, GatewayAbilities, MapRequest, MapResult, PortMapping } from '../../src/gateway.js'
import { NAT } from '../../src/nat/nat.js'
import { NatPmpClient } from '../../src/port-control/natpmp-client.js'
import { NatPmpResultCode } from '../../src/natpmp/codes.js'
import { PcpClient } from '../../src/port-control/pcp-client.js'
import { PcpResultCode } from '../../src/pcp/codes.js'
import { FakeClock } from '../../src/testing/fake-clock.js'
import { SimulatedPmpGateway } from '../../src/testing/pmp-gateway.js'
import { UpnpClient } from '../../src/upnp/client.js'
import { discoverOptions, startIgd } from '../upnp/setup.js'
import { waitFor } from '../helpers/wait.js'

/**
 * Router quirks the mapping manager answers for (shared/reference/router-quirks-and-anchors.md
 * §3): refusals that last, short-lifetime refusals, and the load a dead or absent gateway sees.
 */

async function pmpSetup (ctx: TestContext, method: 'pcp' | 'natpmp') {
  const clock = new FakeClock()
  const gateway = await SimulatedPmpGateway.start({ clock })
  const options = { gateway: gateway.address, port: gateway.port, clock }
  const nat = new NAT(method === 'pcp' ? new PcpClient(options) : new NatPmpClient(options), { clock })
  ctx.after(async () => {
    await nat.close()
    await gateway.close()
  })
  return { clock, gateway, nat }
}

for (const method of ['pcp', 'natpmp'] as const) {
  test(`quirk 23: NOT_AUTHORIZED (FRITZ!Box without port sharing: tailscale#13145), ${method}: a long-lived "disabled" state, one error event for three mappings over six hours, retries every 15 min and rarer`, async (ctx) => {
    const { clock, gateway, nat } = await pmpSetup(ctx, method)
    const errors: Error[] = []
    nat.on('error', (err) => errors.push(err))
    gateway.faults.refuseWith = method === 'pcp' ? { pcp: PcpResultCode.NOT_AUTHORIZED } : { natpmp: NatPmpResultCode.NOT_AUTHORIZED }
    for (const port of [4001, 4002, 4003]) await nat.addMapping('tcp', port)
    const first = gateway.countRequests(method)
    assert.equal(errors.length, 1, 'said once, not once per mapping')
    assert.ok(errors[0] instanceof GatewayRefusedError && errors[0].resultName === 'NOT_AUTHORIZED')
    assert.equal(nat.refusal, errors[0])
    await clock.advance(15 * 60_000 - 1)
    assert.equal(gateway.countRequests(method), first, 'no retry before 15 min')
    await clock.advance(6 * 3600_000)
    const retries = gateway.countRequests(method) - first
    // 15, 45, 105, 225 min, then every 4 h: 5 retries per mapping in six hours, not 70.
    assert.ok(retries <= 3 * 5, `${retries} retries`)
    assert.equal(errors.length, 1, 'no event spam while it lasts')
    // Someone allows it on the router: the next retry maps, and the state ends.
    gateway.faults.refuseWith = undefined
    await clock.advance(4 * 3600_000)
    assert.equal(gateway.mappings().length, 3)
    assert.equal(nat.refusal, undefined)
  })
}

test('quirk 23: UPnP 606 Action not authorized (FRITZ!Box IGD2: miniupnp#392): the same quiet back-off', async (ctx) => {
  const clock = new FakeClock()
  const igd = await startIgd(ctx, { clock })
  igd.quirks.faultNext = Array.from({ length: 100 }, () => ({ action: 'AddAnyPortMapping', code: 606 }))
  const client = await UpnpClient.discover({ ...discoverOptions(igd), clock })
  const nat = new NAT(client, { clock })
  ctx.after(async () => { await nat.close() })
  const errors: Error[] = []
  nat.on('error', (err) => errors.push(err))
  await nat.addMapping('tcp', 4001)
  await nat.addMapping('udp', 4002)
  assert.equal(errors.length, 1)
  assert.ok(nat.refusal instanceof GatewayRefusedError && nat.refusal.resultCode === 606)
  await clock.advance(60 * 60_000)
  await waitFor(() => igd.count('http', 'AddAnyPortMapping') >= 2 + 2 * 2, 'retries at 15 and 45 min')
  assert.equal(igd.count('http', 'AddAnyPortMapping'), 2 + 2 * 2, 'two retries per mapping in the first hour')
  assert.equal(errors.length, 1)
})

test('quirk 25: PCP NO_RESOURCES (a short-lifetime error, 30 s from miniupnpd: tailscale#13687): retried after the lifetime in the reply, not at once', async (ctx) => {
  const { clock, gateway, nat } = await pmpSetup(ctx, 'pcp')
  nat.on('error', () => {})
  gateway.faults.refuseWith = { pcp: PcpResultCode.NO_RESOURCES, lifetimeSeconds: 30 }
  await nat.addMapping('tcp', 4001)
  assert.equal(gateway.requestCount, 1)
  await clock.advance(29_999)
  assert.equal(gateway.requestCount, 1, 'nothing before the 30 s are over')
  await clock.advance(1)
  assert.equal(gateway.requestCount, 2)
  gateway.faults.refuseWith = undefined
  await clock.advance(30_000)
  assert.equal(gateway.requestCount, 3)
  assert.deepEqual(nat.getMapping('tcp', 4001), { address: '11.0.0.1', port: 4001 })
})

/** A gateway that refuses every connection, as a router whose service is gone does (ICMP unreachable). */
class GoneGateway implements Gateway {
  readonly method = 'pcp' as const
  readonly address = '192.0.2.1'
  calls = 0
  async externalAddress (): Promise<string> { throw this.#refused() }
  async map (_request: MapRequest): Promise<MapResult> { throw this.#refused() }
  async renew (_mapping: PortMapping): Promise<PortMapping> { throw this.#refused() }
  async unmap (_mapping: PortMapping): Promise<void> { throw this.#refused() }
  onReset (): () => void { return () => {} }
  describe (): GatewayAbilities { return {} }
  close (): void {}
  #refused (): Error {
    this.calls++
    return new NoResponseError('192.0.2.1:5351 refused (ICMP port unreachable): no server there')
  }
}

test('quirk 41: over-probing (tailscale#4237, #1001): a gateway gone for good costs a falling number of requests and rediscoveries, not one a second', async (ctx) => {
  const clock = new FakeClock()
  const gateway = new GoneGateway()
  let rediscoveries = 0
  const nat = new NAT(gateway, {
    clock,
    rediscover: async () => {
      rediscoveries++
      throw new TimeoutError('no gateway answered')
    }
  })
  ctx.after(async () => { await nat.close() })
  nat.on('error', () => {})
  await nat.addMapping('tcp', 4001)
  await nat.addMapping('udp', 4002)
  await clock.advance(3600_000)
  // Retries at 1, 2, 4 ... 256 s, then every 5 min: about 20 per mapping in the hour (3,600 before).
  assert.ok(gateway.calls <= 2 * 22, `${gateway.calls} requests in an hour`)
  // Rediscoveries at least 15 s apart, doubling while they fail: 8 in the hour (about 1,800 before).
  assert.ok(rediscoveries >= 2 && rediscoveries <= 9, `${rediscoveries} rediscoveries in an hour`)
  const perHourLater = { calls: gateway.calls, rediscoveries }
  await clock.advance(3600_000)
  assert.ok(gateway.calls - perHourLater.calls <= 2 * 12, 'then at most one request per mapping every 5 min')
  assert.ok(rediscoveries - perHourLater.rediscoveries <= 2, 'and a rediscovery every 30 min at most')
})

test('quirk 41: a change of network (a new default route) is looked at at once, whatever the back-off', async (ctx) => {
  const clock = new FakeClock()
  const gateway = new GoneGateway()
  let route = '192.168.1.1'
  let rediscoveries = 0
  const nat = new NAT(gateway, {
    clock,
    watchRoute: { lookup: async () => route, intervalMs: 10_000 },
    rediscover: async () => {
      rediscoveries++
      throw new TimeoutError('no gateway answered')
    }
  })
  ctx.after(async () => { await nat.close() })
  nat.on('error', () => {})
  await nat.addMapping('tcp', 4001)
  await clock.advance(600_000)
  const before = rediscoveries
  route = '10.0.0.1'
  await clock.advance(10_000)
  assert.equal(rediscoveries, before + 1)
})
