// natmapperNat() in real js-libp2p nodes against miniupnpd (issue 15): a node in the lan namespace
// listens on TCP and announces the external address and port the router granted; a node in the
// wan namespace dials exactly that multiaddr and pings it; the router's table is empty once the
// first node stopped. The same with @libp2p/upnp-nat side by side, each timed from start() until
// the public address is in the address manager (BENCHMARKS.md). Node >= 22 (.ci/run runs this
// file with the Node 22 binary); the nodes run from test/lab/libp2p-node.ts.
import { test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import type { ChildProcess } from 'node:child_process'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import { requireLab, withLab, type Lab } from './lab.js'

const nodeScript = fileURLToPath(new URL('./libp2p-node.js', import.meta.url))
/** Runs of each service; more with NATMAPPER_LIBP2P_RUNS for a benchmark row. */
const RUNS = Number(process.env.NATMAPPER_LIBP2P_RUNS ?? 3)

interface Line { event: string, [key: string]: any }

interface ListeningNode {
  child: ChildProcess
  /** Every line so far. */
  lines: Line[]
  /** What the node wrote on stderr so far (libp2p's debug log, with DEBUG set). */
  stderr: () => string
  /** Resolves with the first line of that event (already seen or to come). */
  next: (event: string, timeoutMs: number) => Promise<Line>
  stop: () => Promise<Line>
}

function startNode (lab: Lab, service: 'natmapper' | 'upnp-nat', port: number, env: NodeJS.ProcessEnv = {}): ListeningNode {
  const child = lab.spawn('lan', process.execPath, [nodeScript, 'listen', service, String(port)], { stdin: true, env: { ...process.env, ...env } })
  const lines: Line[] = []
  const waiters: Array<() => void> = []
  let stderr = ''
  child.stderr?.setEncoding('utf8').on('data', (d: string) => { stderr += d })
  createInterface({ input: child.stdout! }).on('line', (text) => {
    lines.push(JSON.parse(text) as Line)
    for (const w of waiters.splice(0)) w()
  })
  const next = async (event: string, timeoutMs: number): Promise<Line> => await new Promise((resolve, reject) => {
    const timer = setTimeout(() => { reject(new Error(`${service} node: no '${event}' within ${timeoutMs} ms; lines ${JSON.stringify(lines)}; stderr ${stderr}`)) }, timeoutMs)
    const check = (): void => {
      const found = lines.find((l) => l.event === event) ?? lines.find((l) => l.event === 'error')
      if (found === undefined) { waiters.push(check); return }
      clearTimeout(timer)
      if (found.event === 'error') reject(new Error(`${service} node: ${String(found.message)}; stderr ${stderr}`))
      else resolve(found)
    }
    check()
  })
  return {
    child,
    lines,
    stderr: () => stderr,
    next,
    stop: async () => {
      child.stdin!.write('stop\n')
      return await next('stopped', 15_000)
    }
  }
}

/** Dials `address` from `host` with a fresh node and pings it; the round trip in ms. */
async function pingFrom (lab: Lab, host: 'wan' | 'gw', address: string): Promise<number> {
  const r = await lab.exec(host, process.execPath, [nodeScript, 'ping', address], { timeoutMs: 30_000 })
  const line = r.stdout.split('\n').filter((l) => l.trim() !== '').map((l) => JSON.parse(l) as Line).find((l) => l.event === 'ping')
  assert.ok(line !== undefined, `ping ${address} from ${host}: exit ${String(r.code)}: ${r.stdout} ${r.stderr}`)
  return line.rttMs as number
}

function summary (ms: number[]): string {
  const sorted = [...ms].sort((a, b) => a - b)
  const median = sorted[Math.floor((sorted.length - 1) / 2)]!
  return `n=${ms.length} median ${median.toFixed(1)} ms, min ${sorted[0]!.toFixed(1)}, max ${sorted[sorted.length - 1]!.toFixed(1)} (${ms.map((m) => m.toFixed(0)).join(', ')})`
}

async function runService (t: TestContext, service: 'natmapper' | 'upnp-nat', basePort: number): Promise<number[]> {
  const times: number[] = []
  await withLab({}, async (lab) => {
    for (let run = 0; run < RUNS; run++) {
      const port = basePort + run
      const node = startNode(lab, service, port)
      const started = await node.next('started', 15_000)
      const found = await node.next('public', 30_000)
      times.push(found.ms as number)
      const address = found.address as string
      const expected = new RegExp(`^/ip4/${lab.externalAddress.replaceAll('.', '\\.')}/tcp/(\\d+)/p2p/${String(started.peerId)}$`)
      const externalPort = Number(expected.exec(address)?.[1])
      assert.ok(externalPort > 0, `${service} announced ${address}, expected the router's external address`)
      const rules = await lab.rules()
      assert.ok(rules.dnat.some((r) => r.protocol === 'tcp' && r.externalPort === externalPort && r.internalAddress === lab.clientAddress && r.internalPort === port),
        `${service}: the router forwards ${externalPort} to ${lab.clientAddress}:${port}: ${rules.text}`)
      const rttMs = await pingFrom(lab, 'wan', address)
      assert.ok(rttMs >= 0)
      const stopped = await node.stop()
      const left = (await lab.rules()).dnat
      t.diagnostic(`${service} run ${run + 1}: start() -> public address ${(found.ms as number).toFixed(1)} ms (start() itself ${(started.startMs as number).toFixed(1)} ms); ` +
        `${address} pinged from wan in ${rttMs} ms; stop ${(stopped.ms as number).toFixed(0)} ms; left on the router: ${left.length === 0 ? 'nothing' : left.map((r) => r.line).join(' | ')}`)
      if (service === 'natmapper') assert.deepEqual(left, [], 'the router\'s table is empty after the node stopped')
    }
  })
  t.diagnostic(`${service}: start() -> public address in the address manager: ${summary(times)}`)
  return times
}

test('natmapperNat(): a libp2p node behind miniupnpd announces the router\'s address, a node outside dials and pings it, nothing left after stop',
  { timeout: 60_000 + RUNS * 20_000 }, async (t) => {
    await requireLab(t)
    await runService(t, 'natmapper', 7400)
  })

test('@libp2p/upnp-nat side by side on the same router: reachable too; its time to a public address and what it leaves',
  { timeout: 60_000 + RUNS * 40_000 }, async (t) => {
    await requireLab(t)
    await runService(t, 'upnp-nat', 7500)
  })

test('natmapperNat() across a router reboot (miniupnpd stopped, its table flushed, started again): the same address stays announced and is pingable again from outside',
  { timeout: 60_000 }, async (t) => {
    await requireLab(t)
    await withLab({}, async (lab) => {
      const node = startNode(lab, 'natmapper', 7700)
      await node.next('started', 15_000)
      const address = (await node.next('public', 15_000)).address as string
      await pingFrom(lab, 'wan', address)
      const rebooted = performance.now()
      await lab.restartRouter()
      assert.deepEqual((await lab.rules()).dnat, [], 'the reboot emptied the table')
      // The PCP ANNOUNCE, then the RFC's random 0-5 s wait before re-mapping.
      let back = -1
      const deadline = performance.now() + 15_000
      while (back < 0 && performance.now() < deadline) {
        if ((await lab.rules()).dnat.some((r) => r.internalPort === 7700)) back = performance.now() - rebooted
        else await new Promise((resolve) => setTimeout(resolve, 20))
      }
      assert.ok(back >= 0, 'the mapping came back on the router')
      const rttMs = await pingFrom(lab, 'wan', address)
      t.diagnostic(`mapping back ${back.toFixed(0)} ms after the reboot began; ${address} pinged again in ${rttMs} ms`)
      assert.deepEqual(node.lines.filter((l) => l.event === 'public-changed'), [], 'the announced address never changed nor went')
      await node.stop()
      assert.deepEqual((await lab.rules()).dnat, [])
    })
  })

test('natmapperNat() behind a double NAT (miniupnpd with a 100.64.0.1 WAN address): the node starts and works, announces no public address, and its log says why',
  { timeout: 60_000 }, async (t) => {
    await requireLab(t)
    await withLab({ reservedExternalAddress: true }, async (lab) => {
      const node = startNode(lab, 'natmapper', 7600, { DEBUG: 'libp2p:natmapper' })
      const started = await node.next('started', 15_000)
      const flagged = await node.next('not-public', 15_000)
      t.diagnostic(`not public after ${(flagged.ms as number).toFixed(1)} ms: ${String(flagged.reason)}`)
      assert.match(String(flagged.reason), /NETWORK_FAILURE|no public|another NAT|not public/)
      // Reachable on the LAN all the same: the node works without a public address.
      const rttMs = await pingFrom(lab, 'gw', `/ip4/${lab.clientAddress}/tcp/7600/p2p/${String(started.peerId)}`)
      assert.ok(rttMs >= 0)
      await new Promise((resolve) => setTimeout(resolve, 200))
      assert.match(node.stderr(), /libp2p:natmapper announcing no public address: /, 'the log says why')
      assert.doesNotMatch(node.stderr(), /libp2p:natmapper announcing \d/, 'nothing announced')
      await node.stop()
      assert.deepEqual((await lab.rules()).dnat, [], 'nothing left on the router')
    })
  })

