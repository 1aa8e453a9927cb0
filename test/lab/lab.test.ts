// The lab itself: miniupnpd in namespaces, driven by the reference clients (natpmpc, upnpc) from the lan host.
// If these fail, natmapper's own lab tests cannot be trusted.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { requireLab, startLab, withLab } from './lab.js'
import type { Lab, DnatRule } from './lab.js'

async function natpmpc (lab: Lab, args: string[]): Promise<{ code: number | null, output: string }> {
  const r = await lab.exec('lan', 'natpmpc', ['-g', lab.gatewayLanAddress, ...args], { timeoutMs: 5000 })
  return { code: r.code, output: r.stdout + r.stderr }
}

async function netnsList (): Promise<string> {
  return await new Promise((resolve, reject) => {
    const child = spawn('ip', ['netns', 'list'], { stdio: ['ignore', 'pipe', 'inherit'] })
    let out = ''
    child.stdout.setEncoding('utf8').on('data', (d: string) => { out += d })
    child.once('error', reject)
    child.once('close', () => resolve(out))
  })
}

// A hung daemon or client fails the test instead of hanging the run.
const limits = { timeout: 60_000 }

function only (rules: DnatRule[], port: number): DnatRule | undefined {
  return rules.find((r) => r.externalPort === port)
}

test('natpmpc maps a TCP port, reachable from wan; deleting it removes the rule', limits, async (t) => {
  await requireLab(t)
  await withLab({}, async (lab) => {
    const add = await natpmpc(lab, ['-a', '7001', '7001', 'tcp', '3600'])
    assert.equal(add.code, 0, add.output)
    assert.match(add.output, new RegExp(`Public IP address : ${lab.externalAddress.replaceAll('.', '\\.')}`))
    assert.match(add.output, /Mapped public port 7001 protocol TCP to local port 7001/)

    const rule = only((await lab.rules()).dnat, 7001)
    assert.deepEqual(rule && { ...rule, line: '' },
      { protocol: 'tcp', externalPort: 7001, internalAddress: lab.clientAddress, internalPort: 7001, line: '' })

    const listener = await lab.listen('lan', 7001)
    assert.equal(await lab.connect('wan', lab.externalAddress, 7001), listener.token)
    // DNAT only: the lan host sees the outside host's own address.
    assert.match(listener.peers[0] ?? '', new RegExp(`^tcp ${lab.outsideAddress.replaceAll('.', '\\.')}:`))

    const counts = lab.countRequests()
    assert.equal(counts.natpmp, 2, 'natpmpc -a sends an external-address request and a mapping request')

    const del = await natpmpc(lab, ['-a', '7001', '7001', 'tcp', '0'])
    assert.equal(del.code, 0, del.output)
    assert.deepEqual((await lab.rules()).dnat, [])
    await assert.rejects(lab.connect('wan', lab.externalAddress, 7001, { timeoutMs: 1000 }), /ECONNREFUSED/)
  })
})

test('upnpc finds the gateway by SSDP multicast, maps a port reachable from wan, deletes it', limits, async (t) => {
  await requireLab(t)
  await withLab({}, async (lab) => {
    const add = await lab.exec('lan', 'upnpc', ['-a', lab.clientAddress, '7003', '7003', 'TCP'])
    assert.equal(add.code, 0, add.stdout + add.stderr)
    assert.match(add.stdout, new RegExp(`Found valid IGD : http://${lab.gatewayLanAddress}:${String(lab.httpPort)}/`))
    assert.match(add.stdout, /is redirected to internal/)
    assert.ok(lab.countRequests().ssdp >= 1, 'the M-SEARCH reached miniupnpd')
    assert.ok(lab.countRequests().http >= 1)

    const rule = only((await lab.rules()).dnat, 7003)
    assert.equal(rule?.protocol, 'tcp')
    assert.equal(rule?.internalAddress, lab.clientAddress)
    assert.equal(rule?.internalPort, 7003)
    const listener = await lab.listen('lan', 7003)
    assert.equal(await lab.connect('wan', lab.externalAddress, 7003), listener.token)

    const del = await lab.exec('lan', 'upnpc', ['-d', '7003', 'TCP'])
    assert.equal(del.code, 0, del.stdout + del.stderr)
    assert.deepEqual((await lab.rules()).dnat, [])
  })
})

test('a UDP mapping is reachable from wan too', limits, async (t) => {
  await requireLab(t)
  await withLab({}, async (lab) => {
    // natpmpc -a <public port> <private port> <protocol> <lifetime>
    const add = await natpmpc(lab, ['-a', '7012', '7002', 'udp', '60'])
    assert.equal(add.code, 0, add.output)
    const rule = only((await lab.rules()).dnat, 7012)
    assert.equal(rule?.protocol, 'udp')
    assert.equal(rule?.internalPort, 7002)
    const listener = await lab.listen('lan', 7002, 'udp')
    assert.equal(await lab.connect('wan', lab.externalAddress, 7012, { protocol: 'udp' }), listener.token)
  })
})

test('restartRouter flushes the rules, answers again, and can move to another HTTP port', limits, async (t) => {
  await requireLab(t)
  await withLab({ httpPort: 5000 }, async (lab) => {
    assert.equal(lab.httpPort, 5000)
    const add = await natpmpc(lab, ['-a', '7001', '7001', 'tcp', '3600'])
    assert.equal(add.code, 0, add.output)
    assert.equal((await lab.rules()).dnat.length, 1)

    await lab.restartRouter()
    assert.deepEqual((await lab.rules()).dnat, [], 'a reboot loses the mappings')
    assert.equal(lab.httpPort, 5000)
    const again = await natpmpc(lab, ['-a', '7001', '7001', 'tcp', '3600'])
    assert.equal(again.code, 0, again.output)
    assert.equal((await lab.rules()).dnat.length, 1)

    const from = lab.routerLog().length
    await lab.restartRouter({ httpPort: 5001 })
    assert.equal(lab.httpPort, 5001)
    assert.match(lab.routerLog().slice(from), /HTTP listening on port 5001/)
    assert.deepEqual((await lab.rules()).dnat, [])
    const status = await lab.exec('lan', 'upnpc', ['-u', `http://${lab.gatewayLanAddress}:5001/rootDesc.xml`, '-s'])
    assert.equal(status.code, 0, status.stdout + status.stderr)
    assert.match(status.stdout, new RegExp(`ExternalIPAddress = ${lab.externalAddress.replaceAll('.', '\\.')}`))
    await assert.rejects(lab.connect('lan', lab.gatewayLanAddress, 5000, { timeoutMs: 1000 }), /ECONNREFUSED/,
      'the old control URL is gone')
  })
})

test('behind a reserved WAN address (double NAT) miniupnpd hides its external address', limits, async (t) => {
  await requireLab(t)
  await withLab({ reservedExternalAddress: true }, async (lab) => {
    assert.equal(lab.gatewayWanAddress, '100.64.0.1')
    assert.match(lab.routerLog(), /Reserved \/ private IP address 100\.64\.0\.1 on ext interface/)
    const r = await natpmpc(lab, [])
    assert.notEqual(r.code, 0, r.output)
    // natpmpc prints result code 3 (NETWORK_FAILURE) as "network failure".
    assert.match(r.output, /network failure/)
    assert.equal(lab.countRequests().natpmp, 1)
  })
})

test('upnp: false serves NAT-PMP only; natpmp: false serves UPnP only', limits, async (t) => {
  await requireLab(t)
  await withLab({ upnp: false }, async (lab) => {
    assert.equal(lab.httpPort, undefined)
    assert.doesNotMatch(lab.routerLog(), /HTTP listening on port/)
    const tcp = await lab.exec('gw', 'ss', ['-Hltn'])
    assert.equal(tcp.stdout.trim(), '', 'nothing listens on TCP in the gateway')
    const r = await natpmpc(lab, [])
    assert.equal(r.code, 0, r.output)
  })
  await withLab({ natpmp: false }, async (lab) => {
    assert.doesNotMatch(lab.routerLog(), /Listening for NAT-PMP\/PCP traffic/)
    assert.equal(typeof lab.httpPort, 'number')
    const r = await natpmpc(lab, [])
    assert.notEqual(r.code, 0, r.output)
    assert.equal(lab.countRequests().natpmp, 0)
  })
})

test('close() deletes the namespaces, is idempotent; a killed run is cleaned by the next start', limits, async (t) => {
  await requireLab(t)
  const lab = await startLab()
  const names = Object.values(lab.namespaces)
  for (const ns of names) assert.match(await netnsList(), new RegExp(`^${ns}\\b`, 'm'))
  await lab.close()
  await lab.close()
  const after = await netnsList()
  for (const ns of names) assert.doesNotMatch(after, new RegExp(`^${ns}\\b`, 'm'))
  assert.doesNotMatch(after, new RegExp(`^${lab.prefix}`, 'm'))

  // A run that dies without cleaning up (SIGKILL): its namespaces and miniupnpd are left behind...
  const labModule = fileURLToPath(new URL('./lab.js', import.meta.url))
  const orphan = spawn(process.execPath, ['--input-type=module', '-e',
    `const { startLab } = await import(${JSON.stringify(labModule)})
     const lab = await startLab()
     process.stdout.write(lab.prefix + '\\n')
     setInterval(() => {}, 1000)`], { stdio: ['ignore', 'pipe', 'inherit'] })
  const prefix = await new Promise<string>((resolve, reject) => {
    let out = ''
    orphan.stdout.setEncoding('utf8').on('data', (d: string) => {
      out += d
      if (out.includes('\n')) resolve(out.trim())
    })
    orphan.once('exit', (code) => reject(new Error(`orphan lab exited early (${String(code)})`)))
  })
  orphan.kill('SIGKILL')
  await new Promise((resolve) => orphan.once('exit', resolve))
  assert.match(await netnsList(), new RegExp(`^${prefix}-gw\\b`, 'm'))

  // ...and the next lab removes them.
  const next = await startLab()
  try {
    assert.doesNotMatch(await netnsList(), new RegExp(`^${prefix}-`, 'm'))
  } finally {
    await next.close()
  }
})
