// natmapper/testing used by clients nobody here wrote, on loopback: miniupnpc's upnpc (given the
// description URL, and through a minissdpd socket in a network namespace of its own), libnatpmp's
// natpmpc (which only talks to port 5351), python's miniupnpc and @achingbrain/nat-port-mapper.
// What each did is checked in the simulator's own table and request log.
import { test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { existsSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { delimiter, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { pmpNat, upnpNat } from '@achingbrain/nat-port-mapper'
import { SimulatedIgd, SimulatedPmpGateway } from '../../src/testing/index.js'

/** natpmpc and the NAT-PMP peer only talk to port 5351: the gateway gets an address of its own for it. */
const PMP_ADDRESS = '127.51.0.1'
const PYTHON = '/usr/bin/python3'

interface Run { code: number | null, stdout: string, stderr: string }

async function run (cmd: string, args: string[], timeoutMs = 10_000): Promise<Run> {
  return await new Promise((resolve) => {
    execFile(cmd, args, { timeout: timeoutMs, encoding: 'utf8' }, (err, stdout, stderr) => {
      resolve({ code: err === null ? 0 : typeof err.code === 'number' ? err.code : null, stdout, stderr })
    })
  })
}

function which (name: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(delimiter).concat(['/usr/bin', '/usr/sbin'])) {
    if (dir !== '' && existsSync(join(dir, name))) return join(dir, name)
  }
  return undefined
}

/** The client's path, or a printed reason and a skip; in CI a missing client fails (.ci/run installs them). */
function requireClient (t: TestContext, name: string, found: string | undefined, install: string): string | undefined {
  if (found !== undefined) return found
  const reason = `${name} is not installed (${install})`
  if (process.env.CI === 'true') assert.fail(`${reason}: CI must provide it`)
  t.diagnostic(reason)
  t.skip(reason)
  return undefined
}

async function startIgd (t: TestContext, options: Parameters<typeof SimulatedIgd.start>[0] = {}): Promise<SimulatedIgd> {
  const igd = await SimulatedIgd.start(options)
  t.after(async () => { await igd.close() })
  return igd
}

test('upnpc -u: status, add, list (both ways), add-any, delete, range delete against SimulatedIgd', async (t) => {
  const upnpc = requireClient(t, 'upnpc', which('upnpc'), 'Debian package miniupnpc')
  if (upnpc === undefined) return
  const igd = await startIgd(t)
  const u = ['-u', igd.descriptionUrl]
  const status = await run(upnpc, [...u, '-s'])
  assert.match(status.stdout, /ExternalIPAddress = 11\.0\.0\.1/, status.stdout + status.stderr)
  assert.match(status.stdout, /Status : Connected/)
  const add = await run(upnpc, [...u, '-e', 'from upnpc', '-a', '127.0.0.1', '7001', '7001', 'TCP', '3600'])
  assert.equal(add.code, 0, add.stdout + add.stderr)
  assert.match(add.stdout, /external 11\.0\.0\.1:7001 TCP is redirected to internal 127\.0\.0\.1:7001 \(duration=3600\)/)
  assert.deepEqual(igd.mappings().map((m) => [m.protocol, m.externalPort, m.internalClient, m.internalPort, m.description]), [['TCP', 7001, '127.0.0.1', 7001, 'from upnpc']])
  const any = await run(upnpc, [...u, '-e', 'any', '-n', '127.0.0.1', '7002', '7001', 'UDP', '600'])
  assert.equal(any.code, 0, any.stdout + any.stderr)
  assert.match(any.stdout, /external 11\.0\.0\.1:7001 UDP is redirected to internal 127\.0\.0\.1:7002/)
  const list = await run(upnpc, [...u, '-l'])
  assert.match(list.stdout, /0 UDP {2}7001->127\.0\.0\.1:7002 {2}'any' '' \d+/, list.stdout)
  assert.match(list.stdout, /1 TCP {2}7001->127\.0\.0\.1:7001 {2}'from upnpc' '' \d+/, list.stdout)
  const listV2 = await run(upnpc, [...u, '-L'])
  assert.match(listV2.stdout, /PortMappingEntry.*7001.*from upnpc|from upnpc/s, listV2.stdout)
  assert.match(listV2.stdout, /TCP\s+7001->127\.0\.0\.1:7001/, listV2.stdout)
  const remove = await run(upnpc, [...u, '-d', '7001', 'TCP'])
  assert.equal(remove.code, 0, remove.stdout + remove.stderr)
  assert.deepEqual(igd.mappings().map((m) => `${m.protocol} ${m.externalPort}`), ['UDP 7001'])
  const range = await run(upnpc, [...u, '-N', '7000', '7010', 'UDP'])
  assert.equal(range.code, 0, range.stdout + range.stderr)
  assert.deepEqual(igd.mappings(), [])
  // upnpc -s asks WANCommonInterfaceConfig too (GetCommonLinkProperties, the counters): every action it used is answered.
  assert.ok(igd.count('http', 'GetCommonLinkProperties') > 0 && igd.count('http', 'GetTotalBytesSent') > 0)
  assert.deepEqual(igd.requests.filter((r) => r.fault === 401 || r.fault === 402).map((r) => `${r.what} ${String(r.fault)}`), [])
})

test('upnpc -p finds SimulatedIgd through its minissdpd socket, in a network namespace with nothing but loopback', async (t) => {
  const upnpc = requireClient(t, 'upnpc', which('upnpc'), 'Debian package miniupnpc')
  const unshare = requireClient(t, 'unshare', which('unshare'), 'Debian package util-linux')
  if (upnpc === undefined || unshare === undefined) return
  const dir = await mkdtemp(join(tmpdir(), 'natmapper-minissdpd-'))
  t.after(async () => { await rm(dir, { recursive: true, force: true }) })
  const helper = fileURLToPath(new URL('./minissdpd-helper.js', import.meta.url))
  // The namespace has no route anywhere: should upnpc search by multicast too, nothing leaves it.
  // As root a plain network namespace; otherwise one inside a user namespace (-r).
  const r = await run(unshare, [process.getuid?.() === 0 ? '-n' : '-rn', 'sh', '-c', 'ip link set lo up 2>/dev/null || true; exec "$0" "$@"', process.execPath, helper, upnpc, join(dir, 'minissdpd.sock')], 20_000)
  if (r.code !== 0 && /unshare failed|Operation not permitted/.test(r.stderr)) {
    const reason = `no network namespace for an unprivileged test here: ${r.stderr.trim()}`
    if (process.env.CI === 'true') assert.fail(reason)
    t.skip(reason)
    return
  }
  assert.equal(r.code, 0, r.stdout + r.stderr)
  const result = JSON.parse(r.stdout) as { upnpc: Run, ssdpSearches: number, mappings: number }
  assert.match(result.upnpc.stdout, /Found valid IGD : http:\/\/127\.0\.0\.1:\d+\/ctl\/IPConn/, result.upnpc.stdout + result.upnpc.stderr)
  assert.match(result.upnpc.stdout, /external 11\.0\.0\.1:7005 TCP is redirected/)
  assert.equal(result.mappings, 1)
  assert.equal(result.ssdpSearches, 0, 'found without any M-SEARCH')
})

test('natpmpc -g: public address, map, delete against SimulatedPmpGateway on port 5351', async (t) => {
  const natpmpc = requireClient(t, 'natpmpc', which('natpmpc'), 'Debian package natpmpc')
  if (natpmpc === undefined) return
  const gateway = await SimulatedPmpGateway.start({ address: PMP_ADDRESS, port: 5351 })
  t.after(async () => { await gateway.close() })
  const address = await run(natpmpc, ['-g', PMP_ADDRESS])
  assert.match(address.stdout, /Public IP address : 11\.0\.0\.1/, address.stdout + address.stderr)
  const map = await run(natpmpc, ['-g', PMP_ADDRESS, '-a', '7010', '7011', 'tcp', '3600'])
  assert.equal(map.code, 0, map.stdout + map.stderr)
  assert.match(map.stdout, /Mapped public port 7010 protocol TCP to local port 7011 liftime 3600/, map.stdout)
  assert.deepEqual(gateway.mappings().map((m) => [m.protocol, m.externalPort, m.internalPort, m.lifetimeSeconds, m.via]), [['tcp', 7010, 7011, 3600, 'natpmp']])
  const remove = await run(natpmpc, ['-g', PMP_ADDRESS, '-a', '0', '7011', 'tcp', '0'])
  assert.equal(remove.code, 0, remove.stdout + remove.stderr)
  assert.deepEqual(gateway.mappings(), [])
})

test('python3-miniupnpc: selectigd(descriptionUrl), add, read, delete against SimulatedIgd', async (t) => {
  const found = existsSync(PYTHON) && (await run(PYTHON, ['-c', 'import miniupnpc'])).code === 0 ? PYTHON : undefined
  const python = requireClient(t, 'python3-miniupnpc', found, 'Debian package python3-miniupnpc')
  if (python === undefined) return
  const igd = await startIgd(t)
  const script = [
    'import json, sys, miniupnpc',
    'u = miniupnpc.UPnP()',
    'u.selectigd(sys.argv[1])',
    'out = {"external": u.externalipaddress(), "status": u.statusinfo()}',
    'out["added"] = u.addportmapping(7020, "UDP", u.lanaddr, 7021, "from python", "")',
    'out["specific"] = u.getspecificportmapping(7020, "UDP")',
    'out["generic"] = u.getgenericportmapping(0)',
    'out["deleted"] = u.deleteportmapping(7020, "UDP")',
    'print(json.dumps(out))'
  ].join('\n')
  const r = await run(python, ['-c', script, igd.descriptionUrl])
  assert.equal(r.code, 0, r.stderr)
  const out = JSON.parse(r.stdout) as { external: string, status: unknown[], added: boolean, specific: unknown[], generic: unknown[], deleted: boolean }
  assert.equal(out.external, '11.0.0.1')
  assert.equal(out.status[0], 'Connected')
  assert.equal(out.added, true)
  assert.deepEqual(out.specific.slice(0, 3), ['127.0.0.1', 7021, 'from python'])
  assert.deepEqual(out.generic.slice(0, 4), [7020, 'UDP', ['127.0.0.1', 7021], 'from python'])
  assert.equal(out.deleted, true)
  assert.deepEqual(igd.mappings(), [])
  assert.equal(igd.count('http', 'AddPortMapping'), 1)
})

test('@achingbrain/nat-port-mapper: pmpNat and upnpNat().getGateway(descriptionUrl) map and unmap on the simulators', async (t) => {
  const gateway = await SimulatedPmpGateway.start({ address: PMP_ADDRESS, port: 5351 })
  t.after(async () => { await gateway.close() })
  const pmp = pmpNat(PMP_ADDRESS, { autoRefresh: false })
  t.after(async () => { await pmp.stop() })
  assert.equal(await pmp.externalIp(), '11.0.0.1')
  const mapped = await pmp.map(7030, '127.0.0.1', { protocol: 'tcp', ttl: 3600_000 })
  assert.equal(mapped.externalPort, 7030)
  assert.deepEqual(gateway.mappings().map((m) => [m.protocol, m.externalPort, m.internalPort]), [['tcp', 7030, 7030]])
  await pmp.unmap(7030)
  assert.deepEqual(gateway.mappings(), [])

  const igd = await startIgd(t)
  const upnp = await upnpNat({ autoRefresh: false }).getGateway(new URL(igd.descriptionUrl))
  t.after(async () => { await upnp.stop() })
  assert.equal(await upnp.externalIp(), '11.0.0.1')
  const viaUpnp = await upnp.map(7031, '127.0.0.1', { protocol: 'tcp', description: 'peer' })
  assert.equal(viaUpnp.externalPort, 7031)
  assert.deepEqual(igd.mappings().map((m) => [m.protocol, m.externalPort, m.internalPort, m.description]), [['TCP', 7031, 7031, 'peer']])
  await upnp.unmap(7031)
  assert.deepEqual(igd.mappings(), [])
  // The peer deletes with NewProtocol '', which miniupnpd reads as TCP (proto_atoi) and answers
  // with success: a UDP mapping stays on the router, here as on miniupnpd 2.3.1.
  await upnp.map(7032, '127.0.0.1', { protocol: 'udp', description: 'peer' })
  await upnp.unmap(7032)
  assert.deepEqual(igd.mappings().map((m) => `${m.protocol} ${m.externalPort}`), ['UDP 7032'])
  const deletes = igd.requests.filter((r) => r.what === 'DeletePortMapping')
  assert.deepEqual(deletes.map((r) => Object.fromEntries(r.args ?? []).NewProtocol), ['', ''])
  assert.deepEqual(deletes.map((r) => r.fault), [undefined, undefined])
})
