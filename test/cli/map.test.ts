import { test } from 'node:test'
import assert from 'node:assert/strict'
import { SimulatedPmpGateway } from '../../src/testing/pmp-gateway.js'
import { waitFor } from '../helpers/wait.js'
import { runCli, startCli } from '../helpers/cli.js'

for (const method of ['pcp', 'natpmp'] as const) {
  test(`map --protocol ${method} --json: mapped events, kept until SIGINT, then every mapping deleted`, async (ctx) => {
    const gateway = await SimulatedPmpGateway.start({ externalAddress: '198.51.100.4' })
    ctx.after(async () => { await gateway.close() })
    const cli = startCli(ctx, ['map', '7001/tcp', '7002/udp', '--json', '--protocol', method, '--gateway', gateway.address, '--gateway-port', String(gateway.port)])
    const mapped = (): Array<Record<string, unknown>> => cli.events.filter((e) => e.event === 'mapped')
    await waitFor(() => mapped().length >= 2, `two mapped events (stderr: ${cli.stderr()})`, 5000)
    const byProtocol = Object.fromEntries(mapped().map((e) => [e.protocol, e]))
    assert.deepEqual(byProtocol.tcp, { event: 'mapped', protocol: 'tcp', internalPort: 7001, externalAddress: '198.51.100.4', externalPort: 7001, method, lifetime: 7200 })
    assert.deepEqual(byProtocol.udp, { event: 'mapped', protocol: 'udp', internalPort: 7002, externalAddress: '198.51.100.4', externalPort: 7002, method, lifetime: 7200 })
    assert.equal(gateway.mappings().length, 2)
    cli.child.kill('SIGINT')
    assert.equal(await cli.exit, 0, cli.stderr())
    assert.deepEqual(gateway.mappings(), [])
    assert.equal(cli.events.filter((e) => e.event === 'unmapped').length, 2)
    assert.deepEqual(cli.events.filter((e) => e.event === 'error'), [])
  })
}

test('map without --protocol prefers PCP and falls back to NAT-PMP; human output names the external address', async (ctx) => {
  const gateway = await SimulatedPmpGateway.start({ pcp: false, externalAddress: '11.0.0.5' })
  ctx.after(async () => { await gateway.close() })
  const result = await runCli(['map', '4001', '--once', '--gateway', gateway.address, '--gateway-port', String(gateway.port)])
  assert.equal(result.code, 0, result.stderr)
  assert.match(result.stdout, /^mapped tcp 4001 -> 11\.0\.0\.5:4001 \(natpmp, lifetime 7200 s\)$/m)
  assert.equal(gateway.mappings().length, 1, '--once leaves the mapping for its lifetime')
})

test('map --once exits non-zero with one clear line when the gateway refuses', async (ctx) => {
  const gateway = await SimulatedPmpGateway.start()
  ctx.after(async () => { await gateway.close() })
  gateway.faults.refuseWith = { pcp: 2 }
  const result = await runCli(['map', '4001/udp', '--once', '--protocol', 'pcp', '--gateway', gateway.address, '--gateway-port', String(gateway.port)])
  assert.equal(result.code, 1)
  assert.match(result.stderr, /^natmapper: could not map 4001\/udp: pcp gateway refused the request: NOT_AUTHORIZED \(2\)$/m)
  assert.doesNotMatch(result.stderr, /\n\s+at /, 'no stack trace')
  // The router's rules said no: its address is not asked for (miniupnpd would answer it only after
  // the refused MAP's retransmissions, seconds later in the lab).
  assert.deepEqual(gateway.received.map((r) => r.summary).filter((s) => s === 'EXTERNAL_ADDRESS'), [])
})

test('bad usage exits 2 with a one-line reason', async () => {
  for (const args of [['map'], ['map', '0'], ['map', 'abc'], ['map', '70000/tcp'], ['map', '4001/sctp'], ['map', '4001', '--protocol', 'smtp'],
    ['map', '4001', '--gateway', 'router.local'], ['map', '4001', '--lifetime', '-5'], ['frobnicate'], ['map', '--bogus', '1']]) {
    const result = await runCli(args)
    assert.equal(result.code, 2, `${args.join(' ')}: ${result.stderr}`)
    assert.match(result.stderr, /^natmapper: .+\n$/, args.join(' '))
  }
})

test('--help and --version', async () => {
  const help = await runCli(['--help'])
  assert.equal(help.code, 0)
  assert.match(help.stdout, /Usage: natmapper <command>/)
  const mapHelp = await runCli(['map', '--help'])
  assert.equal(mapHelp.code, 0)
  assert.match(mapHelp.stdout, /--protocol pcp\|natpmp/)
  const version = await runCli(['--version'])
  assert.equal(version.code, 0)
  assert.match(version.stdout, /^\d+\.\d+\.\d+\n$/)
})

test('map --once behind a carrier-grade NAT exits 1 and says so in plain words', async (ctx) => {
  const gateway = await SimulatedPmpGateway.start({ externalAddress: '100.64.0.9' })
  ctx.after(async () => { await gateway.close() })
  const result = await runCli(['map', '4001/tcp', '--once', '--gateway', gateway.address, '--gateway-port', String(gateway.port)])
  assert.equal(result.code, 1, result.stderr)
  assert.match(result.stderr, /^natmapper: carrier-grade NAT: the gateway's external address 100\.64\.0\.9 is in 100\.64\.0\.0\/10/m)
})

test('map --once against a gateway with no external address (miniupnpd behind a reserved WAN) names double NAT', async (ctx) => {
  const gateway = await SimulatedPmpGateway.start({ pcp: false })
  gateway.faults.externalAddressResult = 3
  ctx.after(async () => { await gateway.close() })
  const result = await runCli(['map', '4001/tcp', '--once', '--gateway', gateway.address, '--gateway-port', String(gateway.port)])
  assert.equal(result.code, 1, result.stderr)
  assert.match(result.stderr, /double NAT/)
})

test('map --once on a PCP gateway with no external address (NETWORK_FAILURE to the MAP) names double NAT, and asks no NAT-PMP', async (ctx) => {
  const gateway = await SimulatedPmpGateway.start()
  gateway.faults.refuseWith = { pcp: 7 }
  ctx.after(async () => { await gateway.close() })
  const result = await runCli(['map', '4001/tcp', '--once', '--gateway', gateway.address, '--gateway-port', String(gateway.port)])
  assert.equal(result.code, 1, result.stderr)
  assert.match(result.stderr, /double NAT/)
  assert.match(result.stderr, /NETWORK_FAILURE/)
})

test('map --once where PCP refuses with NO_RESOURCES and the address request says NETWORK_FAILURE (miniupnpd behind a reserved WAN): double NAT', async (ctx) => {
  const gateway = await SimulatedPmpGateway.start()
  gateway.faults.refuseWith = { pcp: 8 }
  gateway.faults.externalAddressResult = 3
  ctx.after(async () => { await gateway.close() })
  const result = await runCli(['map', '4001/tcp', '--once', '--gateway', gateway.address, '--gateway-port', String(gateway.port)])
  assert.equal(result.code, 1, result.stderr)
  assert.match(result.stderr, /double NAT.*could not map 4001\/tcp: .*NO_RESOURCES/)
  assert.equal(gateway.requestCount, 3, 'ANNOUNCE, MAP, then the address request')
})

test('map --once on a PCP gateway costs it the ANNOUNCE and the MAP', async (ctx) => {
  const gateway = await SimulatedPmpGateway.start()
  ctx.after(async () => { await gateway.close() })
  const result = await runCli(['map', '4001/tcp', '--once', '--gateway', gateway.address, '--gateway-port', String(gateway.port)])
  assert.equal(result.code, 0, result.stderr)
  assert.match(result.stdout, /^mapped tcp 4001 -> 11\.0\.0\.1:4001 \(pcp, lifetime 7200 s\)$/m)
  assert.equal(gateway.requestCount, 2)
})

test('map (kept) where the double NAT shows only after the first mapping failed: the warning is printed once, when it is known', async (ctx) => {
  const gateway = await SimulatedPmpGateway.start()
  gateway.faults.refuseWith = { pcp: 8 }
  gateway.faults.externalAddressResult = 3
  ctx.after(async () => { await gateway.close() })
  const cli = startCli(ctx, ['map', '4001/tcp', '--json', '--gateway', gateway.address, '--gateway-port', String(gateway.port)])
  await waitFor(() => cli.events.some((e) => e.event === 'not-public'), `a not-public event (stderr: ${cli.stderr()})`, 5000)
  const warning = cli.events.find((e) => e.event === 'not-public')!
  assert.match(String(warning.reason), /double NAT/)
  cli.child.kill('SIGINT')
  // The port was never mapped: a failure, said at the end.
  assert.equal(await cli.exit, 1, cli.stderr())
  assert.match(cli.stderr(), /1 of 1 port never mapped: 4001\/tcp/)
  assert.equal(cli.events.filter((e) => e.event === 'not-public').length, 1)
})

test('Ctrl-C while looking for the gateway: exit 130 at once, one clear line, nothing mapped', async (ctx) => {
  const gateway = await SimulatedPmpGateway.start()
  ctx.after(async () => { await gateway.close() })
  gateway.faults.silent = true
  const cli = startCli(ctx, ['map', '4001/tcp', '--protocol', 'pcp', '--gateway', gateway.address, '--gateway-port', String(gateway.port)])
  await waitFor(() => gateway.requestCount > 0, 'the first probe')
  const started = Date.now()
  cli.child.kill('SIGINT')
  assert.equal(await cli.exit, 130)
  assert.ok(Date.now() - started < 2000)
  assert.match(cli.stderr(), /^natmapper: interrupted \(SIGINT\) while looking for the gateway; nothing was mapped$/m)
  assert.deepEqual(gateway.mappings(), [])
})

test('map against a gateway where nothing listens: exit 1 with a one-line reason, promptly', async () => {
  const started = Date.now()
  const result = await runCli(['map', '4001/tcp', '--protocol', 'natpmp', '--gateway', '127.0.0.1', '--gateway-port', '9'])
  assert.equal(result.code, 1)
  assert.match(result.stderr, /^natmapper: no port-mapping protocol answered at 127\.0\.0\.1: natpmp: .*refused/m)
  assert.doesNotMatch(result.stderr, /\n\s+at /)
  assert.ok(Date.now() - started < 3000)
})

test('Ctrl-C that lands as the gateway answers the probe is never lost: the command exits and leaves nothing mapped', async (ctx) => {
  // The signal and the answer reach the process in the same turn of its event loop; a command
  // that swapped its signal listeners when discovery resolved dropped the signal and ran on.
  for (let attempt = 0; attempt < 8; attempt++) {
    const gateway = await SimulatedPmpGateway.start()
    let cli: ReturnType<typeof startCli> | undefined
    let signalled = false
    gateway.faults.mangle = (reply) => {
      if (!signalled && cli !== undefined) {
        signalled = true
        cli.child.kill('SIGINT')
      }
      return reply
    }
    cli = startCli(ctx, ['map', '4001/tcp', '--json', '--protocol', 'pcp', '--gateway', gateway.address, '--gateway-port', String(gateway.port)])
    const timeout = new Promise<'hung'>((resolve) => setTimeout(() => { resolve('hung') }, 3000).unref())
    const code = await Promise.race([cli.exit, timeout])
    await gateway.close()
    assert.ok(signalled, 'the probe was answered')
    assert.ok(code === 0 || code === 130, `attempt ${attempt}: exit ${String(code)}; stderr: ${cli.stderr()}`)
    assert.deepEqual(gateway.mappings(), [], `attempt ${attempt}`)
  }
})

test('map with 100 ports and Ctrl-C once all are mapped: progress counts, no MaxListenersExceededWarning, every mapping deleted', async (ctx) => {
  // Every request waiting for one of the 8 slots listened to the NAT's closing signal (and every
  // delete to close()'s), so Node warned of a listener leak past 10 (issue 18 point 6; lab: 100 ports).
  const gateway = await SimulatedPmpGateway.start()
  ctx.after(async () => { await gateway.close() })
  const ports = Array.from({ length: 100 }, (_, i) => `${20000 + i}/tcp`)
  const cli = startCli(ctx, ['map', ...ports, '--protocol', 'pcp', '--gateway', gateway.address, '--gateway-port', String(gateway.port)])
  await waitFor(() => /^mapped 100\/100$/m.test(cli.stderr()), `mapped 100/100 on stderr (stderr: ${cli.stderr()})`, 10_000)
  assert.equal(gateway.mappings().length, 100)
  cli.child.kill('SIGINT')
  assert.equal(await cli.exit, 0, cli.stderr())
  assert.deepEqual(gateway.mappings(), [])
  assert.doesNotMatch(cli.stderr(), /MaxListenersExceededWarning/)
  // Each count once: the count after the first attempts is not said again when the last progress line said it.
  assert.deepEqual(cli.stderr().match(/^mapped \d+\/100.*$/gm), ['mapped 10/100', 'mapped 20/100', 'mapped 30/100', 'mapped 40/100', 'mapped 50/100', 'mapped 60/100', 'mapped 70/100', 'mapped 80/100', 'mapped 90/100', 'mapped 100/100'])
})

test('map where the router stops answering before Ctrl-C: exit 1, a left event per mapping with its remaining lifetime, each with its own reason or that it was given up', async (ctx) => {
  const gateway = await SimulatedPmpGateway.start()
  ctx.after(async () => { await gateway.close() })
  const cli = startCli(ctx, ['map', '7001/tcp', '7002/udp', '--json', '--protocol', 'natpmp', '--gateway', gateway.address, '--gateway-port', String(gateway.port)])
  await waitFor(() => cli.events.filter((e) => e.event === 'mapped').length === 2, `two mapped events (stderr: ${cli.stderr()})`, 5000)
  // Every request from now on is dropped unread: the router no longer answers.
  gateway.faults.dropNext = Infinity
  cli.child.kill('SIGINT')
  assert.equal(await cli.exit, 1, cli.stderr())
  const left = cli.events.filter((e) => e.event === 'left')
  assert.deepEqual(left.map((e) => `${String(e.internalPort)}/${String(e.protocol)}`).sort(), ['7001/tcp', '7002/udp'])
  assert.equal(gateway.mappings().length, 2)
  for (const e of left) {
    assert.ok(typeof e.remainingSeconds === 'number' && e.remainingSeconds > 7000, `remainingSeconds ${String(e.remainingSeconds)}`)
    // Once one delete goes unanswered the other is given up: its reason says so, and does not
    // pass the first one's error off as its own (issue 18 point 3; lab: 'PCP delete udp 7002:
    // ... refused' as the reason 7001/tcp was left).
    const own = `${String(e.protocol)} ${String(e.internalPort)}`
    const other = own === 'tcp 7001' ? 'udp 7002' : 'tcp 7001'
    const reason = String(e.reason)
    if (reason.includes(other)) assert.match(reason, new RegExp(`^given up: the router stopped answering \\(the delete of ${other}: `), `${own}: ${reason}`)
    else assert.match(reason, new RegExp(`\\b${own}\\b.*no answer`), `${own}: ${reason}`)
  }
  assert.equal(left.filter((e) => String(e.reason).startsWith('given up')).length, 1, 'one delete went unanswered, the other was given up')
  assert.match(cli.stderr(), /^natmapper: 2 mappings could not be removed; natmapper unmap --all deletes them once the router answers again$/m)
})
