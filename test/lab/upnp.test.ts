// natmapper's UPnP IGD client against a real miniupnpd, NAT-PMP/PCP off: found by real SSDP multicast inside the
// lan namespace, mappings forwarded from wan, released on SIGINT; the same with an IGDv1 description; and the
// in-process discovery + first mapping timed next to `upnpc -a` in the same lab.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { bin, repoRoot, startCli, waitUntil } from './cli.js'
import { requireLab, withLab } from './lab.js'
import type { LabProtocol } from './lab.js'

const clientModule = join(repoRoot, 'build', 'src', 'upnp', 'client.js')

const limits = { timeout: 60_000 }

interface Mapped { protocol: LabProtocol, internalPort: number, externalAddress: string, externalPort: number, method: string, lifetime: number }

for (const igdV1 of [false, true]) {
  const igd = igdV1 ? 'IGDv1 (force_igd_desc_v1)' : 'IGDv2'
  test(`natmapper map 7001/tcp 7002/udp --json --protocol upnp, ${igd}, NAT-PMP/PCP off: SSDP multicast, forwarded, released on SIGINT`,
    limits, async (t) => {
      await requireLab(t)
      assert.ok(existsSync(bin), `${bin} does not exist: the CLI is not built (npm run build:test)`)
      await withLab({ natpmp: false, igdV1 }, async (lab) => {
        const tcpListener = await lab.listen('lan', 7001, 'tcp')
        const udpListener = await lab.listen('lan', 7002, 'udp')
        const logStart = lab.routerLog().length
        const cli = startCli(lab, ['map', '7001/tcp', '7002/udp', '--json', '--protocol', 'upnp'])
        try {
          const mapped = (): Mapped[] => cli.events.filter((e) => e.event === 'mapped') as unknown as Mapped[]
          await waitUntil(() => mapped().length >= 2 || cli.exited(), 10_000, 'two mapped events')
          assert.equal(cli.exited(), false, 'the CLI exited before mapping both ports')
          assert.deepEqual(cli.events.filter((e) => e.event === 'not-json'), [], 'stdout is NDJSON')
          for (const [protocol, port] of [['tcp', 7001], ['udp', 7002]] as const) {
            const m = mapped().find((e) => e.protocol === protocol)
            assert.ok(m !== undefined, `no mapped event for ${port}/${protocol}`)
            assert.equal(m.method, 'upnp')
            assert.equal(m.internalPort, port)
            assert.equal(m.externalAddress, lab.externalAddress)
            assert.equal(m.externalPort, port, 'the internal port was free outside too')
            assert.ok(m.lifetime > 0)
          }

          // The router was found by SSDP (multicast: natmapper was not told the gateway) and mapped through SOAP.
          const log = lab.routerLog().slice(logStart)
          assert.match(log, /SSDP M-SEARCH from 192\.168\.77\.2:\d+ ST: urn:schemas-upnp-org:device:InternetGatewayDevice:1/)
          const add = igdV1 ? 'urn:schemas-upnp-org:service:WANIPConnection:1#AddPortMapping' : 'urn:schemas-upnp-org:service:WANIPConnection:2#AddAnyPortMapping'
          assert.equal(log.split(`SOAPAction: ${add}`).length - 1, 2, `two ${add} in the router log`)
          assert.equal(lab.countRequests(log).natpmp + lab.countRequests(log).pcp, 0)

          const { dnat, text } = await lab.rules()
          for (const [protocol, port] of [['tcp', 7001], ['udp', 7002]] as const) {
            const rule = dnat.find((r) => r.protocol === protocol && r.externalPort === port)
            assert.ok(rule !== undefined, `no DNAT rule for ${port}/${protocol} in:\n${text}`)
            assert.equal(rule.internalAddress, lab.clientAddress)
            assert.equal(rule.internalPort, port)
          }
          assert.equal(await lab.connect('wan', lab.externalAddress, 7001), tcpListener.token)
          assert.equal(await lab.connect('wan', lab.externalAddress, 7002, { protocol: 'udp' }), udpListener.token)

          const signalledAt = performance.now()
          cli.child.kill('SIGINT')
          const timeout = new Promise<never>((_resolve, reject) => {
            setTimeout(() => reject(new Error('the CLI did not exit within 5 s of SIGINT')), 5000).unref()
          })
          const exit = await Promise.race([cli.exit, timeout])
          t.diagnostic(`${igd}: exit ${String(exit.code)} ${Math.round(performance.now() - signalledAt)} ms after SIGINT`)
          const after = await lab.rules()
          assert.deepEqual(exit, { code: 0, signal: null }, `exit code 0 after SIGINT (DNAT rules left: ${after.dnat.length})`)
          assert.deepEqual(after.dnat, [], `mappings left after exit:\n${after.text}`)
          assert.match(lab.routerLog().slice(logStart), /DeletePortMapping/)
        } catch (err) {
          console.error(`--- natmapper stderr ---\n${cli.stderr()}\n--- natmapper stdout ---\n${cli.stdout()}\n---`)
          throw err
        }
      })
    })
}

/** Runs in the lan namespace: discovery and a first mapping in one process, timed by phase. */
const TIMING_SCRIPT = `
const { UpnpClient } = await import(process.argv[1])
const port = Number(process.argv[2])
const t0 = performance.now()
const client = await UpnpClient.discover({ timeoutMs: 5000 })
const t1 = performance.now()
const { mapping } = await client.map({ protocol: 'tcp', internalPort: port, lifetimeSeconds: 3600 })
const t2 = performance.now()
const s = client.selection
console.log(JSON.stringify({
  ssdpMs: s.timings.ssdpMs, descriptionMs: s.timings.descriptionMs, probeMs: s.timings.probeMs,
  discoveryMs: t1 - t0, mapMs: t2 - t1, totalMs: t2 - t0,
  service: client.service.serviceType, externalAddress: mapping.externalAddress, externalPort: mapping.externalPort
}))
await client.unmap(mapping)
`

interface Timing {
  ssdpMs: number
  descriptionMs: number
  probeMs: number
  discoveryMs: number
  mapMs: number
  totalMs: number
  service: string
  externalAddress: string
  externalPort: number
}

test('in-process discovery + first mapping, timed, next to upnpc -a in the same lab (both must work)', limits, async (t) => {
  await requireLab(t)
  await withLab({ natpmp: false }, async (lab) => {
    const runs: Timing[] = []
    const logStart = lab.routerLog().length
    for (let i = 0; i < 3; i++) {
      // Let miniupnpd send the SSDP answers still queued from the previous run first.
      if (i > 0) await new Promise((resolve) => setTimeout(resolve, 500))
      const r = await lab.exec('lan', process.execPath, ['--input-type=module', '-e', TIMING_SCRIPT, clientModule, String(7010 + i)], { timeoutMs: 15_000 })
      assert.equal(r.code, 0, r.stderr)
      const timing = JSON.parse(r.stdout.trim()) as Timing
      assert.equal(timing.externalAddress, lab.externalAddress)
      assert.equal(timing.externalPort, 7010 + i)
      assert.equal(timing.service, 'urn:schemas-upnp-org:service:WANIPConnection:2')
      runs.push({ ...timing, processMs: r.durationMs } as Timing)
    }
    const natmapperLog = lab.routerLog().slice(logStart)
    const fmt = (n: number): string => n.toFixed(1)
    for (const [i, r] of runs.entries()) {
      t.diagnostic(`natmapper run ${i + 1}: SSDP answer ${fmt(r.ssdpMs)} ms, description ${fmt(r.descriptionMs)} ms, ` +
        `GetExternalIPAddress ${fmt(r.probeMs)} ms, discovery ${fmt(r.discoveryMs)} ms, AddAnyPortMapping ${fmt(r.mapMs)} ms, ` +
        `total ${fmt(r.totalMs)} ms (whole process ${fmt((r as Timing & { processMs: number }).processMs)} ms)`)
    }
    const counts = lab.countRequests(natmapperLog)
    t.diagnostic(`natmapper, 3 runs (discover, map, unmap each): ${counts.ssdp} M-SEARCH and ${counts.http} HTTP requests seen by the router`)
    assert.deepEqual((await lab.rules()).dnat, [], 'each run deleted its mapping')
    // miniupnpd answers SSDP after 50 ms or more; everything else is a few LAN round trips, and no
    // fixed collection window is waited out (upnpc waits 2 s). On a quiet machine the total is
    // about 80-190 ms; the bound leaves room for a machine busy with other work (several times
    // slower, seen here) and still fails on any fixed window of a second or more.
    const fastest = Math.min(...runs.map((r) => r.totalMs))
    assert.ok(fastest < 1000, `discovery + first mapping took ${fmt(fastest)} ms at best`)

    const upnpcStart = lab.routerLog().length
    const add = await lab.exec('lan', 'upnpc', ['-a', lab.clientAddress, '7020', '7020', 'TCP', '3600'], { timeoutMs: 15_000 })
    assert.equal(add.code, 0, add.stdout + add.stderr)
    assert.match(add.stdout, /external 11\.0\.0\.1:7020 TCP is redirected to internal 192\.168\.77\.2:7020/)
    const upnpcCounts = lab.countRequests(lab.routerLog().slice(upnpcStart))
    t.diagnostic(`upnpc -a: ${fmt(add.durationMs)} ms whole process, ${upnpcCounts.ssdp} M-SEARCH and ${upnpcCounts.http} HTTP requests`)
    assert.ok((await lab.rules()).dnat.some((r) => r.externalPort === 7020 && r.internalAddress === lab.clientAddress))
    const listener = await lab.listen('lan', 7020)
    assert.equal(await lab.connect('wan', lab.externalAddress, 7020), listener.token)
    const del = await lab.exec('lan', 'upnpc', ['-d', '7020', 'TCP'], { timeoutMs: 15_000 })
    assert.equal(del.code, 0, del.stdout + del.stderr)
    assert.deepEqual((await lab.rules()).dnat, [])
    const best = Math.min(...runs.map((r) => (r as Timing & { processMs: number }).processMs))
    t.diagnostic(`whole process: natmapper ${fmt(best)} ms (best of 3) vs upnpc -a ${fmt(add.durationMs)} ms`)
    assert.ok(best < add.durationMs, 'natmapper, node start-up included, is faster than upnpc -a')
  })
})
