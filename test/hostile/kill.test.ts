import { test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { spawn, type ChildProcess } from 'node:child_process'
import { createInterface } from 'node:readline'
import { SimulatedIgd } from '../../src/testing/igd.js'
import { SimulatedPmpGateway } from '../../src/testing/pmp-gateway.js'
import { bin } from '../helpers/cli.js'
import { waitFor } from '../helpers/wait.js'

/**
 * No leaks: `natmapper map` killed at random points (SIGINT during discovery, during a mapping,
 * during a renewal, during close; SIGKILL anywhere) against the simulated routers, whose tables
 * are then read. After SIGINT nothing may be left. A second SIGINT during close exits 130 at once,
 * skipping the cleanup (the documented trade-off), and SIGKILL skips it too: what is left must
 * then expire within its lifetime, so the mappings here are asked for with a few seconds' lease.
 * Each scenario runs for PCP, NAT-PMP and UPnP at once; the random points are printed.
 */

type Method = 'pcp' | 'natpmp' | 'upnp'
const METHODS: Method[] = ['pcp', 'natpmp', 'upnp']
const LIFETIME_S = 4

interface Router {
  method: Method
  /** CLI arguments that point at this router. */
  args: string[]
  /** Live mappings (expired ones purged). */
  live: () => number
  /** Mapping requests (adds and renewals, not deletes) received so far. */
  maps: () => number
  /** How long the router waits before each answer. */
  setDelay: (ms: number) => void
  /** The router stops answering altogether. */
  silence: () => void
}

async function startRouter (ctx: TestContext, method: Method): Promise<Router> {
  if (method === 'upnp') {
    const igd = await SimulatedIgd.start()
    ctx.after(async () => { await igd.close() })
    const target = igd.ssdpMulticastTarget
    return {
      method,
      args: ['--protocol', 'upnp', '--gateway', igd.address, '--ssdp-target', `${target.address}:${target.port}`],
      live: () => igd.mappings().length,
      maps: () => igd.count('http', 'AddAnyPortMapping') + igd.count('http', 'AddPortMapping'),
      setDelay: (ms) => { igd.quirks.httpDelayMs = ms },
      silence: () => { igd.quirks.httpDelayMs = 3_600_000 }
    }
  }
  const gateway = await SimulatedPmpGateway.start({ minLifetimeSeconds: 1 })
  ctx.after(async () => { await gateway.close() })
  return {
    method,
    args: ['--protocol', method, '--gateway', gateway.address, '--gateway-port', String(gateway.port)],
    live: () => gateway.mappings().length,
    maps: () => gateway.received.filter((r) => /^MAP .* lifetime [1-9]/.test(r.summary)).length,
    setDelay: (ms) => { gateway.faults.delayMs = ms },
    silence: () => { gateway.faults.silent = true }
  }
}

interface Cli {
  child: ChildProcess
  events: Array<Record<string, unknown>>
  stderr: () => string
  exit: Promise<{ code: number | null, signal: NodeJS.Signals | null, atMs: number }>
}

function startMap (ctx: TestContext, router: Router): Cli {
  const child = spawn(process.execPath, [bin, 'map', '7001/tcp', '7002/udp', '--json', '--lifetime', String(LIFETIME_S), ...router.args], { stdio: ['ignore', 'pipe', 'pipe'] })
  const events: Array<Record<string, unknown>> = []
  let stderr = ''
  child.stderr!.on('data', (chunk: Buffer) => { stderr += chunk.toString() })
  createInterface({ input: child.stdout! }).on('line', (line) => {
    try {
      events.push(JSON.parse(line) as Record<string, unknown>)
    } catch {
      events.push({ event: 'not-json', line })
    }
  })
  const exit = new Promise<{ code: number | null, signal: NodeJS.Signals | null, atMs: number }>((resolve) => {
    child.on('exit', (code, signal) => { resolve({ code, signal, atMs: performance.now() }) })
  })
  ctx.after(() => { child.kill('SIGKILL') })
  return { child, events, stderr: () => stderr, exit }
}

const sleep = async (ms: number): Promise<void> => { await new Promise((resolve) => setTimeout(resolve, ms)) }
const between = (min: number, max: number): number => Math.round(min + Math.random() * (max - min))
const mapped = (cli: Cli): number => cli.events.filter((e) => e.event === 'mapped').length

async function exited (cli: Cli, router: Router, withinMs: number): Promise<{ code: number | null, signal: NodeJS.Signals | null, atMs: number }> {
  const timeout = new Promise<never>((_resolve, reject) => {
    setTimeout(() => { reject(new Error(`${router.method}: the CLI did not exit within ${withinMs} ms (stderr: ${cli.stderr()})`)) }, withinMs).unref()
  })
  return await Promise.race([cli.exit, timeout])
}

/** Runs `scenario` for every protocol at once. */
function scenario (title: string, run: (ctx: TestContext, router: Router, note: (text: string) => void) => Promise<void>): void {
  test(title, { timeout: 60_000 }, async (ctx) => {
    await Promise.all(METHODS.map(async (method) => {
      const router = await startRouter(ctx, method)
      await run(ctx, router, (text) => { ctx.diagnostic(`${method}: ${text}`) })
    }))
  })
}

scenario('SIGINT during discovery: nothing is left on the router', async (ctx, router, note) => {
  router.setDelay(200)
  const cli = startMap(ctx, router)
  const atMs = between(100, 700)
  note(`SIGINT ${atMs} ms after start`)
  await sleep(atMs)
  cli.child.kill('SIGINT')
  const exit = await exited(cli, router, 5000)
  // 130 while looking for the gateway (nothing mapped yet), 0 once mapping had begun, or the
  // default action (killed by the signal) before the CLI had set its handlers up.
  assert.ok(exit.signal === 'SIGINT' || exit.code === 130 || exit.code === 0, `${router.method}: ${JSON.stringify(exit)}`)
  note(`exit ${exit.signal ?? String(exit.code)}`)
  await sleep(300)
  assert.equal(router.live(), 0, `${router.method}: mappings left`)
})

scenario('SIGINT during a mapping (the router slow to answer): the cleanup waits for the answer and deletes it', async (ctx, router, note) => {
  router.setDelay(300)
  const cli = startMap(ctx, router)
  await waitFor(() => router.maps() >= 1, `${router.method}: a first mapping request`, 5000)
  const atMs = between(0, 250)
  note(`SIGINT ${atMs} ms after the first mapping request reached the router (${mapped(cli)} mapped)`)
  await sleep(atMs)
  cli.child.kill('SIGINT')
  const exit = await exited(cli, router, 8000)
  assert.deepEqual({ code: exit.code, signal: exit.signal }, { code: 0, signal: null }, `${router.method}: ${cli.stderr()}`)
  assert.equal(router.live(), 0, `${router.method}: mappings left`)
})

scenario('SIGINT during a renewal: nothing is left on the router', async (ctx, router, note) => {
  const cli = startMap(ctx, router)
  await waitFor(() => mapped(cli) === 2, `${router.method}: both mapped`, 5000)
  router.setDelay(300)
  const before = router.maps()
  // Renewal at half the lifetime: 2 s after the mappings.
  await waitFor(() => router.maps() > before, `${router.method}: a renewal`, 5000)
  const atMs = between(0, 250)
  note(`SIGINT ${atMs} ms after the first renewal request reached the router`)
  await sleep(atMs)
  cli.child.kill('SIGINT')
  const exit = await exited(cli, router, 8000)
  assert.deepEqual({ code: exit.code, signal: exit.signal }, { code: 0, signal: null }, `${router.method}: ${cli.stderr()}`)
  assert.equal(router.live(), 0, `${router.method}: mappings left`)
})

scenario('SIGINT or SIGTERM, then SIGINT again during close: exit 130 at once; what the cleanup could not delete expires within its lifetime', async (ctx, router, note) => {
  const cli = startMap(ctx, router)
  await waitFor(() => mapped(cli) === 2, `${router.method}: both mapped`, 5000)
  router.setDelay(800)
  const first = Math.random() < 0.5 ? 'SIGINT' : 'SIGTERM'
  cli.child.kill(first)
  const atMs = between(20, 400)
  note(`${first}, then SIGINT ${atMs} ms later`)
  await sleep(atMs)
  const secondAt = performance.now()
  cli.child.kill('SIGINT')
  const exit = await exited(cli, router, 3000)
  assert.deepEqual({ code: exit.code, signal: exit.signal }, { code: 130, signal: null }, `${router.method}: ${cli.stderr()}`)
  assert.ok(exit.atMs - secondAt < 1000, `${router.method}: exited ${Math.round(exit.atMs - secondAt)} ms after the second SIGINT`)
  note(`${router.live()} mapping(s) left at exit`)
  await sleep((LIFETIME_S + 1) * 1000)
  assert.equal(router.live(), 0, `${router.method}: mappings still there after their lifetime`)
})

scenario('SIGKILL at a random point: whatever is left expires within its lifetime', async (ctx, router, note) => {
  const cli = startMap(ctx, router)
  await waitFor(() => mapped(cli) >= 1, `${router.method}: mapped`, 5000)
  const atMs = between(0, 2500)
  await sleep(atMs)
  cli.child.kill('SIGKILL')
  await exited(cli, router, 3000)
  const left = router.live()
  note(`SIGKILL ${atMs} ms after the first mapping; ${left} mapping(s) left`)
  await sleep((LIFETIME_S + 1) * 1000)
  assert.equal(router.live(), 0, `${router.method}: mappings still there after their lifetime`)
})

scenario('SIGINT with the router no longer answering: close gives up within its 5 s, exits 1 and names each mapping left with its remaining lifetime; the leases then end', async (ctx, router, note) => {
  const cli = startMap(ctx, router)
  await waitFor(() => mapped(cli) === 2, `${router.method}: both mapped`, 5000)
  router.silence()
  const signalledAt = performance.now()
  cli.child.kill('SIGINT')
  const exit = await exited(cli, router, 8000)
  const tookMs = Math.round(exit.atMs - signalledAt)
  note(`exit ${exit.signal ?? String(exit.code)} ${tookMs} ms after SIGINT; ${router.live()} mapping(s) left`)
  assert.deepEqual({ code: exit.code, signal: exit.signal }, { code: 1, signal: null }, `${router.method}: ${cli.stderr()}`)
  assert.ok(tookMs < 6500, `${router.method}: ${tookMs} ms`)
  const left = cli.events.filter((e) => e.event === 'left')
  assert.deepEqual(left.map((e) => `${String(e.protocol)}/${String(e.internalPort)}`).sort(), ['tcp/7001', 'udp/7002'], `${router.method}: each mapping left is named`)
  // The lease is shorter than close()'s 5 s here: what is left may have just run out.
  for (const e of left) {
    assert.ok(typeof e.remainingSeconds === 'number' && e.remainingSeconds >= 0 && e.remainingSeconds <= LIFETIME_S, `${router.method}: ${JSON.stringify(e)}`)
    assert.match(String(e.reason), /no (complete )?answer/, `${router.method}: the reason is the router's silence`)
  }
  assert.match(cli.stderr(), /2 mappings could not be removed/)
  await sleep((LIFETIME_S + 1) * 1000)
  assert.equal(router.live(), 0, `${router.method}: mappings still there after their lifetime`)
})
