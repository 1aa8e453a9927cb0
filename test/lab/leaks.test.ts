// No leaks on a real router: `natmapper map` in the lan namespace, interrupted at random points (SIGINT during
// discovery or the first mapping, during a renewal, a second SIGINT during close) or killed (SIGKILL), then
// miniupnpd's nftables chain is read. After SIGINT nothing may be left; after a second SIGINT or SIGKILL what is left
// must go when its lease ends, so the mappings ask for a few seconds' lease (and miniupnpd's PCP minimum is lowered).
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { existsSync } from 'node:fs'
import { bin, startCli, waitUntil, type CliRun } from './cli.js'
import { requireLab, withLab } from './lab.js'
import type { Lab } from './lab.js'

const LIFETIME_S = 6
const METHODS = ['pcp', 'natpmp', 'upnp'] as const

function startMap (lab: Lab, method: string): CliRun {
  return startCli(lab, ['map', '7001/tcp', '7002/udp', '--json', '--protocol', method, '--lifetime', String(LIFETIME_S)])
}

const sleep = async (ms: number): Promise<void> => { await new Promise((resolve) => setTimeout(resolve, ms)) }
const between = (min: number, max: number): number => Math.round(min + Math.random() * (max - min))

async function exited (cli: CliRun, withinMs: number): Promise<{ code: number | null, signal: NodeJS.Signals | null }> {
  const timeout = new Promise<never>((_resolve, reject) => {
    setTimeout(() => { reject(new Error(`the CLI did not exit within ${withinMs} ms; stderr: ${cli.stderr()}`)) }, withinMs).unref()
  })
  return await Promise.race([cli.exit, timeout])
}

async function rulesLeft (lab: Lab): Promise<number> {
  return (await lab.rules()).dnat.length
}

/** Waits up to the lease plus miniupnpd's own clean-up pace for the chain to empty. */
async function expires (lab: Lab, what: string): Promise<void> {
  const deadline = performance.now() + (LIFETIME_S + 20) * 1000
  for (;;) {
    const left = await rulesLeft(lab)
    if (left === 0) return
    if (performance.now() > deadline) throw new Error(`${what}: ${left} rule(s) still there ${LIFETIME_S + 20} s after the lease\n${(await lab.rules()).text}`)
    await sleep(500)
  }
}

for (const method of METHODS) {
  test(`no leaks on miniupnpd (${method}): SIGINT during discovery or mapping, during a renewal, twice during close, and SIGKILL`, { timeout: 180_000 }, async (t) => {
    await requireLab(t)
    assert.ok(existsSync(bin), `${bin} does not exist: the CLI is not built (npm run build:test)`)
    // miniupnpd clamps PCP lifetimes to [min_lifetime, max_lifetime] (120 s by default at the low end).
    await withLab({ minLifetime: 2, maxLifetime: 3600 }, async (lab) => {
      const note = (text: string): void => { t.diagnostic(`${method}: ${text}`) }

      // 1. SIGINT at a random point of the first second or two: looking for the gateway, or mapping.
      {
        const cli = startMap(lab, method)
        const atMs = between(150, 1500)
        await sleep(atMs)
        cli.child.kill('SIGINT')
        const exit = await exited(cli, 10_000)
        note(`SIGINT ${atMs} ms after start: exit ${exit.signal ?? String(exit.code)}, ${cli.events.filter((e) => e.event === 'mapped').length} mapped before`)
        assert.ok(exit.signal === 'SIGINT' || exit.code === 0 || exit.code === 130, JSON.stringify(exit))
        assert.equal(await rulesLeft(lab), 0, `rules left after SIGINT at ${atMs} ms:\n${(await lab.rules()).text}`)
      }

      // 2. SIGINT around a renewal (at half the lease).
      {
        const cli = startMap(lab, method)
        await waitUntil(() => cli.events.filter((e) => e.event === 'mapped').length === 2, 10_000, 'both mapped')
        const atMs = between(LIFETIME_S * 500 - 300, LIFETIME_S * 500 + 300)
        await sleep(atMs)
        cli.child.kill('SIGINT')
        const exit = await exited(cli, 10_000)
        note(`SIGINT ${atMs} ms after mapping (renewal due at ${LIFETIME_S * 500} ms; ${cli.events.filter((e) => e.event === 'renewed').length} renewed): exit ${exit.signal ?? String(exit.code)}`)
        assert.deepEqual(exit, { code: 0, signal: null }, cli.stderr())
        assert.equal(await rulesLeft(lab), 0, `rules left:\n${(await lab.rules()).text}`)
      }

      // 3. A second SIGINT during close: exit 130 at once; what was not deleted goes with its lease.
      {
        const cli = startMap(lab, method)
        await waitUntil(() => cli.events.filter((e) => e.event === 'mapped').length === 2, 10_000, 'both mapped')
        cli.child.kill('SIGINT')
        const atMs = between(0, 30)
        await sleep(atMs)
        cli.child.kill('SIGINT')
        const exit = await exited(cli, 3000)
        const left = await rulesLeft(lab)
        note(`second SIGINT ${atMs} ms into close: exit ${exit.signal ?? String(exit.code)}, ${left} rule(s) left`)
        // 130 when the second SIGINT cut the cleanup short, 0 when the cleanup had finished. A
        // signal that lands while the finished process is tearing down (Node restores the default
        // action then) ends it by SIGINT: harmless, since nothing was left to delete.
        assert.ok(exit.code === 130 || exit.code === 0 || (exit.signal === 'SIGINT' && left === 0), JSON.stringify(exit))
        await expires(lab, 'after a second SIGINT')
      }

      // 4. SIGKILL at a random point after mapping: no cleanup at all; the leases end.
      {
        const cli = startMap(lab, method)
        await waitUntil(() => cli.events.filter((e) => e.event === 'mapped').length >= 1, 10_000, 'mapped')
        const atMs = between(0, 2000)
        await sleep(atMs)
        cli.child.kill('SIGKILL')
        await exited(cli, 3000)
        const left = await rulesLeft(lab)
        note(`SIGKILL ${atMs} ms after the first mapping: ${left} rule(s) left`)
        const started = performance.now()
        await expires(lab, 'after SIGKILL')
        note(`the chain was empty ${Math.round((performance.now() - started) / 1000)} s later (lease ${LIFETIME_S} s)`)
      }
    })
  })
}
