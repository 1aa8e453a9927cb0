// Port ranges on the real router (issue 16): 32 UDP ports and a few TCP ones mapped with
// addMappings on miniupnpd over PCP and over UPnP alone, two of them proven from the wan host,
// the UDP range removed with removeMappings (one DeletePortMappingRange on UPnP IGD v2), and
// nothing left in the router's nftables chain after close.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import { requireLab, withLab, type Lab, type LabOptions } from './lab.js'

const driverPath = fileURLToPath(new URL('./driver.js', import.meta.url))

function startDriver (lab: Lab): { send: (command: Record<string, unknown>) => Promise<Record<string, any>>, kill: () => void } {
  const child = lab.spawn('lan', process.execPath, [driverPath], { stdin: true })
  const waiting = new Map<number, (value: Record<string, any>) => void>()
  let stderr = ''
  child.stderr?.setEncoding('utf8').on('data', (d: string) => { stderr += d })
  createInterface({ input: child.stdout! }).on('line', (line) => {
    const message = JSON.parse(line) as Record<string, any>
    if (typeof message.id === 'number') waiting.get(message.id)?.(message)
  })
  let next = 0
  return {
    kill: () => { child.kill() },
    send: async (command) => await new Promise((resolve, reject) => {
      const id = next++
      const timer = setTimeout(() => { reject(new Error(`driver: no answer to ${JSON.stringify(command).slice(0, 200)}; stderr: ${stderr}`)) }, 30_000)
      waiting.set(id, (value) => { clearTimeout(timer); resolve(value) })
      child.stdin!.write(`${JSON.stringify({ id, ...command })}\n`)
    })
  }
}

const routers: Array<{ name: string, lab: LabOptions, method: 'pcp' | 'upnp' }> = [
  { name: 'PCP', lab: {}, method: 'pcp' },
  { name: 'UPnP only (IGD v2)', lab: { natpmp: false }, method: 'upnp' }
]

for (const router of routers) {
  test(`addMappings: 32 UDP and 4 TCP ports on the real router (${router.name}), two proven from outside, removed as a range, 0 rules after close`, { timeout: 120_000 }, async (t) => {
    await requireLab(t)
    await withLab(router.lab, async (lab) => {
      const driver = startDriver(lab)
      try {
        const found = await driver.send({ op: 'discover', options: { methods: [router.method] } })
        assert.equal(found.ok, true, JSON.stringify(found))
        const udp = await lab.listen('lan', 7431, 'udp')
        const tcp = await lab.listen('lan', 7501, 'tcp')
        const added = await driver.send({ op: 'add-many', requests: [{ protocol: 'udp', ports: [7400, 7431] }, { protocol: 'tcp', ports: [7500, 7503] }] })
        assert.equal(added.ok, true, JSON.stringify(added))
        t.diagnostic(`36 ports mapped in ${String(added.ms)} ms`)
        const results = added.results as Array<{ protocol: string, internalPort: number, externalPort?: number, error?: { message: string } }>
        assert.equal(results.length, 36)
        for (const r of results) assert.equal(r.externalPort, r.internalPort, `${r.protocol} ${r.internalPort}: ${r.error?.message ?? ''}`)
        const rules = await lab.rules()
        assert.equal(rules.dnat.filter((r) => r.protocol === 'udp' && r.externalPort >= 7400 && r.externalPort <= 7431).length, 32)
        assert.equal(rules.dnat.filter((r) => r.protocol === 'tcp').length, 4)
        assert.equal(await lab.connect('wan', lab.externalAddress, 7431, { protocol: 'udp' }), udp.token)
        assert.equal(await lab.connect('wan', lab.externalAddress, 7501), tcp.token)
        await udp.close()
        await tcp.close()

        const from = lab.routerLog().length
        const removed = await driver.send({ op: 'remove-many', requests: [{ protocol: 'udp', ports: [7400, 7431] }] })
        assert.equal(removed.ok, true, JSON.stringify(removed))
        t.diagnostic(`32 UDP ports removed in ${String(removed.ms)} ms`)
        assert.deepEqual((removed.results as Array<{ error?: unknown }>).filter((r) => r.error !== undefined), [])
        assert.deepEqual((await lab.rules()).dnat.filter((r) => r.protocol === 'udp'), [])
        const log = lab.routerLog().slice(from)
        if (router.method === 'upnp') assert.match(log, /DeletePortMappingRange/, 'one range delete on IGD v2')
        assert.equal((await driver.send({ op: 'close' })).ok, true)
        assert.deepEqual((await lab.rules()).dnat, [], 'close removed every mapping')
      } finally {
        driver.kill()
      }
    })
  })
}
