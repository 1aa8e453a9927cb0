// Issue 14: `natmapper map P/tcp --ipv6 --lifetime 20` against miniupnpd 2.3.1 (lab `ipv6: true`),
// over PCP and over UPnP pinholes: the pinhole is renewed, comes back after a router restart
// (miniupnpd's IPv6 ANNOUNCE leaves by its WAN side, so the client learns at its next renewal),
// moves when its address is deprecated (the host's address followed: made on the new one, the old
// rule gone), and no rule is left after SIGINT. Times printed as '# ' lines.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { LAB_IPV6, requireLab, withLab } from './lab.js'
import { startCli, waitUntil } from './cli.js'
import { connect6, listen6, pinholeRules, ruleHex } from './ipv6-net.js'

const has = (rules: string[], address: string, port: number): boolean => rules.some((r) => r.includes(`dport ${port} @nh,192,128 0x${ruleHex(address)}`))

test('IPv6 lab: --ipv6 --lifetime 20 renews, survives a router restart, follows a deprecated address, leaves no rule after SIGINT', { timeout: 400_000 }, async (t) => {
  await requireLab(t)
  await withLab({ ipv6: true, minLifetime: 10, httpPort: 5100 }, async (lab) => {
    const controlURL = `http://[${LAB_IPV6.gatewayLan}]:${lab.httpPort!}/ctl/IP6FCtl`
    // The third: PCP, with the control URL for the deletes PCP refuses (withPinholeDelete).
    const ways = {
      pcp: ['--gateway', LAB_IPV6.gatewayLan],
      'upnp-pinhole': ['--pinhole-url', controlURL],
      'pcp, deletes over UPnP': ['--gateway', LAB_IPV6.gatewayLan, '--ipv6-method', 'pcp', '--pinhole-url', controlURL]
    } as const
    let port = 4300
    for (const [method, args] of Object.entries(ways)) {
      port++
      // Over PCP alone, miniupnpd 2.3.1 keeps a renewed pinhole it will not delete.
      const leaves = method === 'pcp'
      const token = randomBytes(6).toString('hex')
      const stops = [await listen6(lab, 'lan', LAB_IPV6.client, port, token), await listen6(lab, 'lan', LAB_IPV6.secondClient, port, token)]
      const cli = startCli(lab, ['map', `${port}/tcp`, '--ipv6', '--json', '--lifetime', '20', '--local-address', LAB_IPV6.client, ...args])
      try {
        await waitUntil(() => cli.events.some((e) => e.event === 'mapped') || cli.exited(), 15_000, `${method}: mapped (stderr: ${cli.stderr()})`)
        assert.equal(await connect6(lab, LAB_IPV6.client, port), token, `${method}: reachable`)
        const mappedAt = performance.now()
        await waitUntil(() => cli.events.some((e) => e.event === 'renewed') || cli.exited(), 20_000, `${method}: renewed (stderr: ${cli.stderr()})`)
        console.log(`# ${method}: first renewal ${((performance.now() - mappedAt) / 1000).toFixed(1)} s after mapped (lifetime 20 s)`)

        const before = cli.events.filter((e) => e.event === 'mapped' || e.event === 'renewed').length
        const restarted = performance.now()
        await lab.restartRouter()
        assert.equal(has(await pinholeRules(lab), LAB_IPV6.client, port), false, 'the restart flushed the rule')
        await waitUntil(() => cli.events.filter((e) => e.event === 'mapped' || e.event === 'renewed').length > before || cli.exited(), 30_000, `${method}: re-made after the restart (stderr: ${cli.stderr()})`)
        assert.ok(has(await pinholeRules(lab), LAB_IPV6.client, port), `${method}: the rule is back`)
        assert.equal(await connect6(lab, LAB_IPV6.client, port), token, `${method}: reachable after the restart`)
        console.log(`# ${method}: pinhole back ${((performance.now() - restarted) / 1000).toFixed(1)} s after the router restart`)

        const deprecated = performance.now()
        const change = await lab.exec('lan', 'ip', ['-6', 'addr', 'change', `${LAB_IPV6.client}/64`, 'dev', lab.interfaces.lan, 'preferred_lft', '0'])
        assert.equal(change.code, 0, change.stderr)
        await waitUntil(() => cli.events.some((e) => e.event === 'mapped' && e.externalAddress === LAB_IPV6.secondClient) || cli.exited(), 45_000, `${method}: moved to ${LAB_IPV6.secondClient} (stdout: ${cli.stdout()} stderr: ${cli.stderr()})`)
        let rules = await pinholeRules(lab)
        for (let i = 0; i < 20 && has(rules, LAB_IPV6.client, port); i++) rules = await new Promise((resolve) => setTimeout(resolve, 100)).then(async () => await pinholeRules(lab))
        assert.ok(has(rules, LAB_IPV6.secondClient, port), `${method}: rule on the new address\n${rules.join('\n')}`)
        // miniupnpd 2.3.1 refuses the PCP delete of a pinhole renewed once (NOT_AUTHORIZED; upstream
        // 358f430): over PCP alone the old rule stays until its lease ends; over UPnP it is deleted.
        assert.equal(has(rules, LAB_IPV6.client, port), leaves, `${method}: the old rule ${leaves ? 'left by the PCP quirk' : 'gone'}\n${rules.join('\n')}`)
        assert.equal(await connect6(lab, LAB_IPV6.secondClient, port), token, `${method}: wan reaches the new address`)
        console.log(`# ${method}: pinhole moved ${((performance.now() - deprecated) / 1000).toFixed(1)} s after the address was deprecated (poll every 30 s)`)

        cli.child.kill('SIGINT')
        const exit = await cli.exit
        assert.equal(exit.code, 0, cli.stderr())
        const left = await pinholeRules(lab)
        if (!leaves) {
          assert.deepEqual(left, [], 'no rule left after SIGINT')
        } else {
          // The same PCP quirk: the new pinhole is deleted unless it was renewed before SIGINT; the old one stays.
          const renewedNew = cli.events.some((e) => e.event === 'renewed' && e.externalAddress === LAB_IPV6.secondClient)
          assert.equal(has(left, LAB_IPV6.secondClient, port), renewedNew, `pcp after SIGINT\n${left.join('\n')}`)
          assert.ok(has(left, LAB_IPV6.client, port), 'pcp: the old rule refused by the quirk is still there')
          console.log(`# pcp: after SIGINT ${left.length} rule(s) left by miniupnpd's PCP delete quirk (new pinhole renewed before SIGINT: ${String(renewedNew)})`)
        }
      } finally {
        if (!cli.exited()) cli.child.kill('SIGKILL')
        for (const stop of stops) stop()
        await lab.exec('lan', 'ip', ['-6', 'addr', 'change', `${LAB_IPV6.client}/64`, 'dev', lab.interfaces.lan, 'preferred_lft', 'forever'])
      }
    }
  })
})
