// The service driven through hand-made components (the few members it uses of libp2p's): what a
// real node cannot be made to do on demand in a test, a listener that closes while the node runs,
// and the search's back-off, read from what the service logs on libp2p's logger.
import { test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { format } from 'node:util'
import { SimulatedPmpGateway, FakeClock } from '../../src/testing/index.js'
import { NatmapperNat, type NatmapperNatComponents, type NatmapperNatInit } from '../../src/libp2p/index.js'
import { waitFor } from '../helpers/wait.js'
import { freeUdpPort } from '../helpers/net.js'

interface Fake {
  components: NatmapperNatComponents
  logs: string[]
  /** The node's transport addresses, as strings; change them, then `emit`. */
  transport: string[]
  /** ip-mapping entries, as `internalIp:port/protocol -> externalIp:port`. */
  mappings: Set<string>
  emit: (event: 'transport:listening' | 'transport:close') => void
}

function fakeComponents (): Fake {
  const logs: string[] = []
  const logger = Object.assign((f: unknown, ...args: unknown[]) => { logs.push(format(f, ...args)) }, { error: (f: unknown, ...args: unknown[]) => { logs.push(format(f, ...args)) } })
  const events = new EventTarget()
  const transport: string[] = []
  const mappings = new Set<string>()
  const key = (ip: string, port: number, eip: string, eport: number | undefined, proto: string | undefined): string => `${ip}:${port}/${String(proto)} -> ${eip}:${String(eport)}`
  return {
    logs,
    transport,
    mappings,
    emit: (event) => { events.dispatchEvent(new Event(event)) },
    components: {
      logger: { forComponent: () => logger },
      events,
      addressManager: {
        getAddressesWithMetadata: () => transport.map((a) => ({ multiaddr: a, type: 'transport', verified: true })),
        addPublicAddressMapping: (ip, port, eip, eport, proto) => { mappings.add(key(ip, port, eip, eport, proto)) },
        removePublicAddressMapping: (ip, port, eip, eport, proto) => { mappings.delete(key(ip, port, eip, eport, proto)) },
        confirmObservedAddr: () => {}
      }
    }
  }
}

async function startService (ctx: TestContext, fake: Fake, init: NatmapperNatInit): Promise<NatmapperNat> {
  const service = new NatmapperNat(fake.components, init)
  await service.start()
  ctx.after(async () => { await service.stop() })
  return service
}

test('a listener that closes while the node runs: its mapping is deleted on the router and its address removed; the other stays', async (ctx) => {
  const gateway = await SimulatedPmpGateway.start({ externalAddress: '11.0.0.1' })
  const fake = fakeComponents()
  fake.transport.push('/ip4/127.0.0.1/tcp/4001', '/ip4/127.0.0.1/udp/4002/quic-v1', '/ip4/127.0.0.1/tcp/4003/ws')
  const service = await startService(ctx, fake, { gateway: gateway.address, autoConfirmAddress: true, natmapper: { port: gateway.port, methods: ['pcp'], announcements: false } })
  ctx.after(async () => { await gateway.close() })
  await waitFor(() => fake.mappings.size === 3, 'three public addresses', 5000)
  assert.deepEqual([...fake.mappings].sort(), [
    '127.0.0.1:4001/tcp -> 11.0.0.1:4001', '127.0.0.1:4002/udp -> 11.0.0.1:4002', '127.0.0.1:4003/tcp -> 11.0.0.1:4003'
  ])
  fake.transport.splice(1, 2) // the QUIC and WebSocket listeners close
  fake.emit('transport:close')
  await waitFor(() => gateway.mappings().length === 1, 'the two mappings deleted on the router', 5000)
  assert.deepEqual(gateway.mappings().map((m) => `${m.protocol} ${m.internalPort}`), ['tcp 4001'])
  assert.deepEqual([...fake.mappings], ['127.0.0.1:4001/tcp -> 11.0.0.1:4001'])
  assert.deepEqual(service.announced().map((a) => a.internalPort), [4001])
  await service.stop()
  assert.deepEqual(gateway.mappings(), [])
  assert.deepEqual([...fake.mappings], [])
})

test('no gateway: the search is tried again after 10 s, then 20 s, 40 s, up to gatewaySearchInterval, each said in the log', async (ctx) => {
  const clock = new FakeClock()
  const fake = fakeComponents()
  const port = await freeUdpPort()
  const service = await startService(ctx, fake, {
    gateway: '127.0.0.1', clock, gatewaySearchInterval: 40_000,
    natmapper: { port, methods: ['pcp', 'natpmp'], announcements: false, ssdpListen: false, ssdpTarget: false, timeout: 1000 }
  })
  const retries = (): string[] => fake.logs.filter((l) => l.startsWith('no gateway found')).map((l) => /searching again in (\d+ s)/.exec(l)?.[1] ?? l)
  for (const [n, wait] of [[1, 10_000], [2, 20_000], [3, 40_000], [4, 40_000]] as const) {
    await waitFor(() => retries().length === n && clock.pendingTimers === 1, `search ${n} failed and a retry scheduled`, 5000)
    await clock.advance(wait - 1)
    assert.equal(retries().length, n, `no search before ${wait} ms`)
    await clock.advance(1)
  }
  await waitFor(() => retries().length === 5, 'the fifth search', 5000)
  assert.deepEqual(retries(), ['10 s', '20 s', '40 s', '40 s', '40 s'])
  assert.equal(service.nat, undefined)
  assert.match(fake.logs.find((l) => l.startsWith('no gateway found')) ?? '', /^no gateway found \(.*(refused|NAT-PMP|PCP).*\); searching again in 10 s$/)
})
