// Issue 18 point 11: a router whose rules allow 1024-65535 only (miniupnpd's default) refuses `map 80`; every
// protocol says why in plain words. The refusals are the ones miniupnpd sends (pcpserver.c, natpmp.c: NOT_AUTHORIZED
// when no external port is permitted; the lab shows them); UPnP's are in test/upnp/client.test.ts.
import { test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { GatewayRefusedError } from '../src/errors.js'
import { NatPmpClient } from '../src/port-control/natpmp-client.js'
import { PcpClient } from '../src/port-control/pcp-client.js'
import { PcpResultCode } from '../src/pcp/codes.js'
import { lowPortHint } from '../src/port-rules.js'
import { SimulatedPmpGateway } from '../src/testing/pmp-gateway.js'

const PLAIN = /refused the request: NOT_AUTHORIZED \(2\): internal port 80 is outside what the router permits: many routers allow only ports 1024-65535 \(miniupnpd's default rules\); use an internal port from 1024 up$/

async function refusingGateway (ctx: TestContext): Promise<SimulatedPmpGateway> {
  const gateway = await SimulatedPmpGateway.start()
  ctx.after(async () => { await gateway.close() })
  gateway.faults.refuseWith = { pcp: PcpResultCode.NOT_AUTHORIZED, natpmp: 2 }
  return gateway
}

test('lowPortHint: only for ports below 1024', () => {
  assert.match(lowPortHint(80) ?? '', /internal port 80 is outside what the router permits/)
  assert.match(lowPortHint(1023) ?? '', /internal port 1023/)
  assert.equal(lowPortHint(1024), undefined)
})

for (const Client of [PcpClient, NatPmpClient]) {
  test(`${Client.name}: NOT_AUTHORIZED for internal port 80 says the router's rules are why; for a high port it says nothing it does not know`, async (ctx) => {
    const gateway = await refusingGateway(ctx)
    const client = new Client({ gateway: gateway.address, port: gateway.port })
    ctx.after(() => { client.close() })
    await assert.rejects(client.map({ protocol: 'tcp', internalPort: 80, lifetimeSeconds: 7200 }), (err: unknown) => {
      assert.ok(err instanceof GatewayRefusedError, String(err))
      assert.equal(err.resultName, 'NOT_AUTHORIZED')
      assert.match(err.message, PLAIN)
      return true
    })
    await assert.rejects(client.map({ protocol: 'tcp', internalPort: 8080, lifetimeSeconds: 7200 }), (err: unknown) =>
      err instanceof GatewayRefusedError && /NOT_AUTHORIZED \(2\)$/.test(err.message))
  })
}
