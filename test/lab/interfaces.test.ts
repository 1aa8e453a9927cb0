// A host on two networks (lab option secondRouter): two miniupnpd routers, each with its own WAN,
// reached from the lan host by two interfaces. natmapper maps on the interface it is asked for
// and nowhere else, and discoverNATs finds both routers. The Docker and VPN hints are shown by
// building those networks in the lan namespace.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import { bin, repoRoot, startCli, waitUntil } from './cli.js'
import { requireLab, withLab, type Lab, type SecondRouter } from './lab.js'

const natsScript = fileURLToPath(new URL('./nats-script.js', import.meta.url))

function requests (counts: ReturnType<Lab['countRequests']>): number {
  return counts.natpmp + counts.pcp + counts.http + counts.ssdp
}

test('map --interface <second>: the mapping is on the second router alone, reachable from its WAN, the first router not asked at all (PCP, NAT-PMP, UPnP)', { timeout: 120_000 }, async (t) => {
  await requireLab(t)
  await withLab({ secondRouter: true }, async (lab) => {
    const second = lab.second as SecondRouter
    const listener = await lab.listen('lan', 7001)
    for (const method of ['pcp', 'natpmp', 'upnp'] as const) {
      const firstBefore = lab.routerLog().length
      const cli = startCli(lab, ['map', '7001/tcp', '--json', '--protocol', method, '--interface', second.interfaces.lan])
      await waitUntil(() => cli.events.some((e) => e.event === 'mapped') || cli.exited(), 15_000, `the ${method} mapping`)
      const mapped = cli.events.find((e) => e.event === 'mapped')
      assert.ok(mapped !== undefined, `${method}: ${cli.stderr()}`)
      assert.equal(mapped.externalAddress, second.externalAddress, method)
      // From the second router's outside host, through its WAN address, to the lan host.
      assert.equal(await lab.connect('wan2', second.externalAddress, mapped.externalPort as number), listener.token, method)
      assert.deepEqual((await second.rules()).dnat.map((r) => `${r.protocol} ${r.externalPort} -> ${r.internalAddress}:${r.internalPort}`),
        [`tcp ${String(mapped.externalPort)} -> ${second.clientAddress}:7001`], method)
      assert.deepEqual((await lab.rules()).dnat, [], `${method}: the first router's table stays empty`)
      assert.equal(requests(lab.countRequests(lab.routerLog().slice(firstBefore))), 0, `${method}: the first router heard nothing (SSDP multicast too)`)
      cli.child.kill('SIGINT')
      const exit = await cli.exit
      assert.equal(exit.code, 0, cli.stderr())
      assert.deepEqual((await second.rules()).dnat, [], `${method}: released`)
    }
    await listener.close()
  })
})

test('discoverNATs in a host on two networks: both routers, each mapping on its own, all deleted by close(); discover --interface and --all-interfaces report them', { timeout: 60_000 }, async (t) => {
  await requireLab(t)
  await withLab({ secondRouter: true }, async (lab) => {
    const second = lab.second as SecondRouter
    const child = lab.spawn('lan', process.execPath, [natsScript, '7002'], { stdin: true, cwd: repoRoot })
    let stderr = ''
    child.stderr?.setEncoding('utf8').on('data', (d: string) => { stderr += d })
    const lines = createInterface({ input: child.stdout! })[Symbol.asyncIterator]()
    const next = async (): Promise<Record<string, any>> => {
      const line = await lines.next()
      assert.ok(line.done !== true, `the script ended: ${stderr}`)
      return JSON.parse(line.value as string) as Record<string, any>
    }
    const found = await next()
    t.diagnostic(JSON.stringify(found))
    assert.deepEqual(found.nats.map((n: any) => [n.interface, n.localAddress, n.gateway, n.mapping.address]), [
      [lab.interfaces.lan, lab.clientAddress, lab.gatewayLanAddress, lab.externalAddress],
      [second.interfaces.lan, second.clientAddress, second.gatewayLanAddress, second.externalAddress]
    ])
    assert.deepEqual(found.failures, [])
    assert.deepEqual((await lab.rules()).dnat.map((r) => `${r.internalAddress}:${r.internalPort}`), [`${lab.clientAddress}:7002`])
    assert.deepEqual((await second.rules()).dnat.map((r) => `${r.internalAddress}:${r.internalPort}`), [`${second.clientAddress}:7002`])
    child.stdin!.write('close\n')
    assert.deepEqual(await next(), { left: 0 })
    assert.deepEqual([(await lab.rules()).dnat, (await second.rules()).dnat], [[], []])
    // The report of one of them, as people read it.
    const report = await lab.exec('lan', process.execPath, [bin, 'discover', '--interface', second.interfaces.lan], { cwd: repoRoot })
    t.diagnostic(`natmapper discover --interface ${second.interfaces.lan}:\n${report.stderr}${report.stdout}`)
    assert.equal(report.code, 0, report.stderr)
    assert.match(report.stdout, new RegExp(`^gateway ${second.gatewayLanAddress.replaceAll('.', '\\.')} on ${second.interfaces.lan} \\(from ${second.clientAddress.replaceAll('.', '\\.')}\\)\n`))
    assert.match(report.stdout, new RegExp(`external address ${second.externalAddress.replaceAll('.', '\\.')} \\(public\\)`))
    // Every interface at once.
    const all = await lab.exec('lan', process.execPath, [bin, 'discover', '--all-interfaces', '--json'], { cwd: repoRoot })
    assert.equal(all.code, 0, all.stderr)
    const reports = JSON.parse(all.stdout) as Array<{ interface: string, gateway: string, method: string, externalAddress: string }>
    assert.deepEqual(reports.map((r) => [r.interface, r.gateway, r.method, r.externalAddress]), [
      [lab.interfaces.lan, lab.gatewayLanAddress, 'pcp', lab.externalAddress],
      [second.interfaces.lan, second.gatewayLanAddress, 'pcp', second.externalAddress]
    ])
  })
})


test('the hints, on the real network stack: a WireGuard-style default route into wg0, and a Docker default bridge', { timeout: 60_000 }, async (t) => {
  await requireLab(t)
  await withLab({ router: false }, async (lab) => {
    const ip = async (...args: string[]): Promise<void> => {
      const r = await lab.exec('lan', 'ip', args)
      assert.equal(r.code, 0, `ip ${args.join(' ')}: ${r.stderr}`)
    }
    // A tunnel that took the default route, with no next hop (the default route via the gateway is gone).
    // A veth pair stands for the tunnel device (this kernel has no dummy driver); only the name and the routes matter.
    await ip('link', 'add', 'wg0', 'type', 'veth', 'peer', 'name', 'wg0peer')
    await ip('addr', 'add', '10.8.0.2/24', 'dev', 'wg0')
    await ip('link', 'set', 'wg0', 'up')
    await ip('route', 'replace', 'default', 'dev', 'wg0')
    const vpn = await lab.exec('lan', process.execPath, [bin, 'discover'], { cwd: repoRoot })
    t.diagnostic(`natmapper discover (wg0): exit ${String(vpn.code)}: ${vpn.stderr.trim()}`)
    assert.equal(vpn.code, 1)
    assert.match(vpn.stderr, new RegExp(`no IPv4 default route on linux; pass the gateway address explicitly\\. The default route goes straight into wg0, a VPN tunnel with no router on it; choose your LAN interface with --interface ${lab.interfaces.lan}`))
    // A container on Docker's default bridge: 172.17.0.2/16, its gateway the host at 172.17.0.1, which maps nothing.
    await ip('route', 'del', 'default')
    await ip('addr', 'add', '172.17.0.2/16', 'dev', lab.interfaces.lan)
    await ip('route', 'add', 'default', 'via', '172.17.0.1', 'dev', lab.interfaces.lan)
    const docker = await lab.exec('lan', process.execPath, [bin, 'discover', '--timeout', '1500'], { cwd: repoRoot })
    t.diagnostic(`natmapper discover (Docker bridge): exit ${String(docker.code)}: ${docker.stdout.trim()} | ${docker.stderr.trim()}`)
    assert.equal(docker.code, 1)
    // Whichever shows it: CI's own machine may be a container with /.dockerenv.
    assert.match(docker.stdout, /This looks like a Docker container \((this host is on 172\.17\.0\.0\/16|\/\.dockerenv exists)\): the gateway 172\.17\.0\.1 is the Docker host, not your router/)
  })
})
