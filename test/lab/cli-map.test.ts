// The natmapper CLI against a real router: `natmapper map ... --json` in the lan namespace prints one NDJSON
// `mapped` event per port, the ports are really forwarded, and SIGINT releases every mapping before exit 0.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { existsSync } from 'node:fs'
import { bin, startCli, waitUntil } from './cli.js'
import { requireLab, withLab } from './lab.js'
import type { LabProtocol } from './lab.js'


interface MappedEvent {
  event: 'mapped'
  protocol: LabProtocol
  internalPort: number
  externalAddress: string
  externalPort: number
  method: string
  lifetime: number
}

function assertMapped (event: Record<string, unknown> | undefined, expected: {
  protocol: LabProtocol
  internalPort: number
  externalAddress: string
  method: string
}): MappedEvent {
  assert.ok(event !== undefined, `no mapped event for ${expected.internalPort}/${expected.protocol}`)
  assert.equal(event.event, 'mapped')
  assert.equal(event.protocol, expected.protocol)
  assert.equal(event.internalPort, expected.internalPort)
  assert.equal(event.externalAddress, expected.externalAddress)
  assert.equal(event.method, expected.method)
  assert.ok(Number.isInteger(event.externalPort) && (event.externalPort as number) > 0 &&
    (event.externalPort as number) < 65536, `externalPort ${String(event.externalPort)}`)
  assert.ok(typeof event.lifetime === 'number' && event.lifetime > 0, `lifetime ${String(event.lifetime)}`)
  return event as unknown as MappedEvent
}

for (const method of ['natpmp', 'pcp']) {
  test(`natmapper map 7001/tcp 7002/udp --json --protocol ${method}: maps, forwards, releases on SIGINT`,
    { timeout: 60_000 }, async (t) => {
      await requireLab(t)
      assert.ok(existsSync(bin), `${bin} does not exist: the CLI is not built (npm run build:test)`)
      await withLab({}, async (lab) => {
        const tcpListener = await lab.listen('lan', 7001, 'tcp')
        const udpListener = await lab.listen('lan', 7002, 'udp')
        const cli = startCli(lab, ['map', '7001/tcp', '7002/udp', '--json', '--protocol', method])
        try {
          const mapped = (): Array<Record<string, unknown>> => cli.events.filter((e) => e.event === 'mapped')
          await waitUntil(() => mapped().length >= 2 || cli.exited(), 10_000, 'two mapped events')
          assert.equal(cli.exited(), false, 'the CLI exited before mapping both ports')
          assert.deepEqual(cli.events.filter((e) => e.event === 'not-json'), [], 'stdout is NDJSON')

          const expected = { externalAddress: lab.externalAddress, method }
          const tcp = assertMapped(mapped().find((e) => e.protocol === 'tcp'),
            { ...expected, protocol: 'tcp', internalPort: 7001 })
          const udp = assertMapped(mapped().find((e) => e.protocol === 'udp'),
            { ...expected, protocol: 'udp', internalPort: 7002 })

          const { dnat, text } = await lab.rules()
          for (const m of [tcp, udp]) {
            const rule = dnat.find((r) => r.protocol === m.protocol && r.externalPort === m.externalPort)
            assert.ok(rule !== undefined, `no DNAT rule for ${m.externalPort}/${m.protocol} in:\n${text}`)
            assert.equal(rule.internalAddress, lab.clientAddress)
            assert.equal(rule.internalPort, m.internalPort)
          }

          assert.equal(await lab.connect('wan', tcp.externalAddress, tcp.externalPort), tcpListener.token)
          assert.equal(await lab.connect('wan', udp.externalAddress, udp.externalPort, { protocol: 'udp' }),
            udpListener.token)

          assert.equal(cli.exited(), false,
            'the CLI exited on its own before SIGINT; it must hold the mappings until it is interrupted')
          cli.child.kill('SIGINT')
          const timeout = new Promise<never>((_resolve, reject) => {
            setTimeout(() => reject(new Error('the CLI did not exit within 5 s of SIGINT')), 5000).unref()
          })
          const exit = await Promise.race([cli.exit, timeout])
          const after = await lab.rules()
          assert.deepEqual(exit, { code: 0, signal: null },
            `exit code 0 after SIGINT (DNAT rules left after exit: ${after.dnat.length})`)
          assert.deepEqual(after.dnat, [], `mappings left after exit:\n${after.text}`)
        } catch (err) {
          console.error(`--- natmapper stderr ---\n${cli.stderr()}\n--- natmapper stdout ---\n${cli.stdout()}\n---`)
          throw err
        }
      })
    })
}
