import { test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { discoverGateway } from '../../src/discover/discover.js'
import { NatmapperError, NoGatewayError, RemoteProtocolError, TimeoutError, UncertainMappingError } from '../../src/errors.js'
import type { Gateway } from '../../src/gateway.js'
import { NAT } from '../../src/nat/nat.js'
import { decodeNatPmpRequest, decodeNatPmpResponse, encodeNatPmpResponse, type NatPmpResponse } from '../../src/natpmp/codec.js'
import { NatPmpClient } from '../../src/port-control/natpmp-client.js'
import { decodePcpRequest, decodePcpResponse, encodePcpResponse, type PcpResponse } from '../../src/pcp/codec.js'
import { PcpClient } from '../../src/port-control/pcp-client.js'
import { PcpOpcode } from '../../src/pcp/codes.js'
import { FakeClock } from '../../src/testing/fake-clock.js'
import { SimulatedPmpGateway, type PmpFaults } from '../../src/testing/pmp-gateway.js'
import { EXTRA_LOOPBACK, settle } from './lan.js'
import { mapChecked } from '../../src/gateway.js'

/**
 * Garbage and absurd NAT-PMP and PCP replies: each request must end with a typed error within
 * its timeout (or, where the reply is merely absurd, with a mapping whose renewal cannot loop),
 * on the real clock, against SimulatedPmpGateway's `mangle` and source faults.
 */

const TIMEOUT_MS = 700
const SLACK_MS = 400

type Method = 'pcp' | 'natpmp'

async function setup (ctx: TestContext, method: Method, configure: (faults: PmpFaults) => void, extra: { spoofAddress?: string, clock?: FakeClock } = {}) {
  const gateway = await SimulatedPmpGateway.start({ minLifetimeSeconds: 1, ...extra })
  configure(gateway.faults)
  const options = { gateway: gateway.address, port: gateway.port, ...(extra.clock === undefined ? {} : { clock: extra.clock }) }
  const client: Gateway = method === 'pcp' ? new PcpClient(options) : new NatPmpClient(options)
  ctx.after(async () => {
    client.close()
    await gateway.close()
  })
  return { gateway, client }
}

/** A map request that must fail with `kind`, within the timeout. */
async function mustFail (client: Gateway, kind: new (...args: never[]) => NatmapperError): Promise<NatmapperError> {
  const { error: raw, ms } = await settle(mapChecked(client, { protocol: 'tcp', internalPort: 7001, lifetimeSeconds: 7200 }, { timeoutMs: TIMEOUT_MS }))
  // Unanswered, the request may have been applied: the error says so around the timeout itself.
  const error = raw instanceof UncertainMappingError ? raw.reason : raw
  assert.ok(error instanceof kind, `expected ${kind.name}, got ${String(error)}`)
  assert.ok(ms < TIMEOUT_MS + SLACK_MS, `ended after ${Math.round(ms)} ms`)
  return error
}

/** The reply as a PCP response, edited. */
function editPcp (answer: Uint8Array | undefined, edit: (r: PcpResponse) => PcpResponse): Uint8Array | undefined {
  if (answer === undefined || answer[0] !== 2) return answer
  return encodePcpResponse(edit(decodePcpResponse(answer)))
}

/** The reply as a NAT-PMP MAP response, edited (other replies pass unchanged). */
function editNatPmpMap (answer: Uint8Array | undefined, edit: { lifetimeSeconds?: number, externalPort?: number }): Uint8Array | undefined {
  if (answer === undefined || answer[0] !== 0) return answer
  const r: NatPmpResponse = decodeNatPmpResponse(answer)
  return r.opcode === 'map' ? encodeNatPmpResponse({ ...r, ...edit }) : answer
}

/** Sets the opcode byte of a PCP reply (R bit kept), whatever follows it. */
function withOpcode (answer: Uint8Array, opcode: number): Uint8Array {
  const copy = Uint8Array.from(answer)
  copy[1] = 0x80 | opcode
  return copy
}

const garbage = (): Uint8Array[] => [
  randomBytes(1), randomBytes(7), randomBytes(11), randomBytes(15), randomBytes(23), randomBytes(60), randomBytes(1100),
  Uint8Array.of(0, 0x80), Uint8Array.of(0, 0x82, 0, 0), Uint8Array.of(2, 0x81, 0, 0, 0, 0, 0, 0)
]

for (const method of ['pcp', 'natpmp'] as const) {
  test(`${method}: only garbage and truncated replies: TimeoutError within the timeout, every datagram ignored`, async (ctx) => {
    const { gateway, client } = await setup(ctx, method, (f) => { f.mangle = () => garbage() })
    await mustFail(client, TimeoutError)
    assert.ok(gateway.requestCount >= 2, 'retransmitted meanwhile')
  })

  test(`${method}: answers from another source port (a spoofer on the gateway's host): TimeoutError`, async (ctx) => {
    const { client } = await setup(ctx, method, (f) => { f.wrongSource = true })
    await mustFail(client, TimeoutError)
  })

  test(`${method}: answers from another address (a LAN host spoofing the gateway): TimeoutError`, { skip: EXTRA_LOOPBACK ? false : 'needs 127.0.0.2 (Linux)' }, async (ctx) => {
    const { client } = await setup(ctx, method, (f) => { f.wrongSourceAddress = true }, { spoofAddress: '127.0.0.2' })
    await mustFail(client, TimeoutError)
  })

  test(`${method}: lifetime 0 in a success reply to a MAP: RemoteProtocolError at the first answer, and the manager backs off instead of looping`, async (ctx) => {
    const clock = new FakeClock()
    const { gateway, client } = await setup(ctx, method, (f) => {
      f.mangle = (answer) => method === 'pcp'
        ? editPcp(answer, (r) => ({ ...r, lifetimeSeconds: 0 }))
        : editNatPmpMap(answer, { lifetimeSeconds: 0 })
    }, { clock })
    const nat = new NAT(client, { clock })
    ctx.after(async () => { await nat.close() })
    const errors: Error[] = []
    nat.on('error', (err) => errors.push(err))
    await nat.addMapping('tcp', 7001)
    assert.ok(errors[0] instanceof RemoteProtocolError, String(errors[0]))
    assert.match(errors[0].message, /lifetime 0, which grants nothing/)
    assert.equal(nat.getMapping('tcp', 7001), undefined)
    const first = gateway.requestCount
    await clock.advance(60_000)
    assert.ok(gateway.requestCount - first <= 4, `${gateway.requestCount - first} retries in a minute`)
  })

  test(`${method}: external port 0 in a success reply: RemoteProtocolError`, async (ctx) => {
    const { client } = await setup(ctx, method, (f) => {
      f.mangle = (answer) => method === 'pcp'
        ? editPcp(answer, (r) => r.map === undefined ? r : { ...r, map: { ...r.map, externalPort: 0 } })
        : editNatPmpMap(answer, { externalPort: 0 })
    })
    const err = await mustFail(client, RemoteProtocolError)
    assert.match(err.message, /external port 0/)
  })

  test(`${method}: a huge lifetime (2^32 - 1 s) is granted, and its renewal waits the longest a timer can (24.8 days): no renewal loop`, async (ctx) => {
    const clock = new FakeClock()
    const { gateway, client } = await setup(ctx, method, (f) => {
      f.mangle = (answer) => method === 'pcp'
        ? editPcp(answer, (r) => r.opcode === PcpOpcode.MAP ? { ...r, lifetimeSeconds: 0xffffffff } : r)
        : editNatPmpMap(answer, { lifetimeSeconds: 0xffffffff })
    }, { clock })
    const nat = new NAT(client, { clock })
    ctx.after(async () => { await nat.close() })
    await nat.addMapping('tcp', 7001)
    assert.deepEqual(nat.getMapping('tcp', 7001)?.port, 7001)
    const after = gateway.requestCount
    await clock.advance(24 * 24 * 3600_000)
    assert.equal(gateway.requestCount, after, 'nothing for 24 days')
    await clock.advance(1 * 24 * 3600_000)
    await clock.advance(0)
    assert.equal(gateway.requestCount, after + 1, 'one renewal at 24.8 days')
  })

  test(`${method}: every answer preceded by 50 bogus datagrams: the real one is still taken, in time`, async (ctx) => {
    // More than a socket's receive buffer holds would drop the real answer in the kernel: any UDP
    // protocol can be flooded that way, and only retransmission helps.
    const { client } = await setup(ctx, method, (f) => {
      f.mangle = (answer) => answer === undefined ? undefined : [...Array.from({ length: 5 }, garbage).flat(), answer]
    })
    const { value, error, ms } = await settle(mapChecked(client, { protocol: 'tcp', internalPort: 7001, lifetimeSeconds: 7200 }, { timeoutMs: TIMEOUT_MS }))
    assert.equal(error, undefined, String(error))
    assert.equal(value?.externalPort, 7001)
    assert.ok(ms < TIMEOUT_MS, `${Math.round(ms)} ms`)
  })
}

test('natpmp: wrong opcodes (a MAP answered as the other protocol, as an address reply, with an unknown opcode): TimeoutError', async (ctx) => {
  const { client } = await setup(ctx, 'natpmp', (f) => {
    f.mangle = (answer, request) => {
      const decoded = decodeNatPmpRequest(request)
      if (decoded.opcode !== 'map') return answer
      const other = decoded.protocol === 'tcp' ? 'udp' : 'tcp'
      return [
        encodeNatPmpResponse({ opcode: 'map', resultCode: 0, protocol: other, epochSeconds: 9, internalPort: decoded.internalPort, externalPort: 7001, lifetimeSeconds: 7200 }),
        encodeNatPmpResponse({ opcode: 'map', resultCode: 0, protocol: decoded.protocol, epochSeconds: 9, internalPort: decoded.internalPort + 1, externalPort: 7001, lifetimeSeconds: 7200 }),
        Uint8Array.of(0, 0xc0, 0, 0, 0, 0, 0, 9)
      ]
    }
  })
  // The address request is answered properly; only the MAP is never answered as a MAP.
  await mustFail(client, TimeoutError)
})

test('pcp: wrong opcodes (a MAP answered with ANNOUNCE or PEER) and wrong nonces: TimeoutError', async (ctx) => {
  const { client } = await setup(ctx, 'pcp', (f) => {
    f.mangle = (answer, request) => {
      const map = decodePcpRequest(request).map
      if (answer === undefined || map === undefined) return answer
      const base = decodePcpResponse(answer)
      return [
        withOpcode(answer, PcpOpcode.ANNOUNCE),
        withOpcode(answer, PcpOpcode.PEER),
        withOpcode(answer, 0x7f),
        encodePcpResponse({ ...base, map: { ...base.map!, nonce: randomBytes(12) } }),
        encodePcpResponse({ ...base, map: { ...base.map!, internalPort: map.internalPort + 1 } }),
        encodePcpResponse({ ...base, map: { ...base.map!, protocol: 17 } })
      ]
    }
  })
  await mustFail(client, TimeoutError)
})

test('pcp: an epoch that claims a reboot on every reply (frozen at 0): re-mappings are rate-limited, not a request every few seconds', async (ctx) => {
  const clock = new FakeClock()
  const { gateway, client } = await setup(ctx, 'pcp', (f) => { f.mangle = (answer) => editPcp(answer, (r) => ({ ...r, epochSeconds: 0 })) }, { clock })
  const nat = new NAT(client, { clock, lifetimeSeconds: 7200, random: () => 0.5 })
  ctx.after(async () => { await nat.close() })
  await nat.addMapping('tcp', 7001)
  await nat.addMapping('udp', 7002)
  await clock.advance(3 * 3600_000)
  const perMappingHour = gateway.requestCount / 2 / 3
  ctx.diagnostic(`${gateway.requestCount} requests for 2 mappings in 3 hours`)
  assert.ok(perMappingHour < 6, `${perMappingHour.toFixed(1)} requests per mapping-hour`)
})

test('discovery against a gateway that answers only garbage: a NoGatewayError, timed out, naming each protocol, within the timeout', async (ctx) => {
  const gateway = await SimulatedPmpGateway.start()
  ctx.after(async () => { await gateway.close() })
  gateway.faults.mangle = () => garbage()
  const { error, ms } = await settle(discoverGateway({ gateway: gateway.address, port: gateway.port, methods: ['pcp', 'natpmp'], timeout: 1000 }))
  assert.ok(error instanceof NoGatewayError && error.timedOut, String(error))
  assert.match(error.message, /pcp: PCP announce #\d+: no answer .*datagrams that did not answer it ignored.*natpmp: NAT-PMP external address #\d+: no answer .*ignored/)
  assert.ok(ms < 1000 + SLACK_MS, `${Math.round(ms)} ms`)
})
