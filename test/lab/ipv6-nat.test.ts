// Issue 14 through the CLI (and so the NAT) against a real miniupnpd 2.3.1 with IPv6 (lab `ipv6: true`):
// `natmapper map P/tcp --ipv6` opens a TCP port for the lan host's global address over PCP and over
// UPnP pinholes (--pinhole-url); wan connects over IPv6: dropped before, answered after, dropped
// again after SIGINT, with no rule left in miniupnpd's chain. Time to the first pinhole is measured
// from the CLI's start (node start-up included) to its mapped event.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { LAB_IPV6, requireLab, withLab } from './lab.js'
import { startCli, waitUntil } from './cli.js'
import { connect6, listen6, pinholeRules, ruleHex } from './ipv6-net.js'

const RUNS = 3

test('IPv6 lab: natmapper map --ipv6 over PCP and over UPnP pinholes: refused before, reachable from wan after, refused and no rule left after SIGINT', { timeout: 300_000 }, async (t) => {
  await requireLab(t)
  await withLab({ ipv6: true }, async (lab) => {
    const controlURL = `http://[${LAB_IPV6.gatewayLan}]:${lab.httpPort!}/ctl/IP6FCtl`
    const ways = {
      pcp: ['--gateway', LAB_IPV6.gatewayLan],
      'upnp-pinhole': ['--pinhole-url', controlURL]
    } as const
    let port = 4100
    for (const [method, args] of Object.entries(ways)) {
      const times: number[] = []
      for (let run = 0; run < RUNS; run++) {
        port++
        const token = randomBytes(6).toString('hex')
        const stop = await listen6(lab, 'lan', LAB_IPV6.client, port, token)
        try {
          assert.equal(await connect6(lab, LAB_IPV6.client, port), 'ETIMEDOUT', `${method}: dropped before the pinhole`)
          const started = performance.now()
          const cli = startCli(lab, ['map', `${port}/tcp`, '--ipv6', '--json', '--local-address', LAB_IPV6.client, ...args])
          await waitUntil(() => cli.events.some((e) => e.event === 'mapped') || cli.exited(), 15_000, `${method}: a mapped event (stderr: ${cli.stderr()})`)
          times.push(performance.now() - started)
          assert.deepEqual(cli.events.find((e) => e.event === 'mapped'), { event: 'mapped', family: 6, protocol: 'tcp', internalPort: port, externalAddress: LAB_IPV6.client, externalPort: port, method, lifetime: 7200 }, cli.stderr())
          const rules = await pinholeRules(lab)
          assert.ok(rules.some((r) => r.includes(`dport ${port} @nh,192,128 0x${ruleHex(LAB_IPV6.client)}`)), rules.join('\n'))
          assert.equal(await connect6(lab, LAB_IPV6.client, port), token, `${method}: wan reaches the listener over IPv6`)
          cli.child.kill('SIGINT')
          const exit = await cli.exit
          assert.equal(exit.code, 0, cli.stderr())
          assert.deepEqual(cli.events.filter((e) => e.event === 'unmapped'), [{ event: 'unmapped', family: 6, protocol: 'tcp', internalPort: port }])
          assert.deepEqual(await pinholeRules(lab), [], `${method}: no rule left after SIGINT`)
          assert.equal(await connect6(lab, LAB_IPV6.client, port), 'ETIMEDOUT', `${method}: dropped again after close`)
        } finally {
          stop()
        }
      }
      t.diagnostic(`time to first IPv6 pinhole, ${method}, CLI start to mapped event (node start-up included), n=${RUNS}: ${times.map((ms) => ms.toFixed(0)).join(', ')} ms (min ${Math.min(...times).toFixed(0)}, max ${Math.max(...times).toFixed(0)})`)
    }
  })
})
