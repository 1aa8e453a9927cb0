// Issue 18 points 7 and 10 against a real miniupnpd 2.3.1, the router's nftables table as the evidence.
// 7: miniupnpd overwrites an entry of the same internal client whatever its internal port (upnpredirect.c
// upnp_redirect), so natmapper looks first: another program's entry (made here by upnpc) or another natmapper's
// is never mapped over nor deleted. 10: miniupnpd 2.3.1 reads descriptions back into desc[64], so one of 64
// bytes or more comes back cut, mid-entity, with stack bytes after it: natmapper caps its own and lists the rest.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { bin } from './cli.js'
import { requireLab, withLab, type Lab } from './lab.js'

const limits = { timeout: 90_000 }

function stateEnv (t: { after: (fn: () => void) => void }): NodeJS.ProcessEnv {
  const dir = mkdtempSync(join(tmpdir(), 'natmapper-lab-state-'))
  t.after(() => { rmSync(dir, { recursive: true, force: true }) })
  return { ...process.env, NATMAPPER_STATE_FILE: join(dir, 'mappings.json') }
}

/** `ext->internal` of every TCP DNAT rule, sorted by external port. */
async function table (lab: Lab): Promise<string[]> {
  return (await lab.rules()).dnat.filter((r) => r.protocol === 'tcp').sort((a, b) => a.externalPort - b.externalPort)
    .map((r) => `${r.externalPort}->${r.internalAddress === lab.clientAddress ? '' : r.internalAddress}:${r.internalPort}`)
}

test('issue 18 point 7: another program\'s entry of the same host, or another natmapper\'s, is neither mapped over nor deleted', limits, async (t) => {
  await requireLab(t)
  const env = stateEnv(t)
  await withLab({ natpmp: false }, async (lab) => {
    const natmapper = async (...args: string[]): Promise<{ code: number | null, stdout: string, stderr: string }> => {
      const r = await lab.exec('lan', process.execPath, [bin, ...args, '--protocol', 'upnp'], { env, timeoutMs: 15_000 })
      t.diagnostic(`natmapper ${args.join(' ')}: exit ${String(r.code)} ${r.stdout.trim()} ${r.stderr.trim()}`)
      return r
    }
    const upnpc = async (...args: string[]): Promise<void> => {
      const r = await lab.exec('lan', 'upnpc', args)
      assert.match(r.stdout, /is redirected to internal/, r.stdout + r.stderr)
    }
    // Another program of this host: external 7170 -> :7171.
    await upnpc('-e', 'other program', '-a', lab.clientAddress, '7171', '7170', 'tcp', '3600')
    assert.deepEqual(await table(lab), ['7170->:7171'])

    // map 7170: replaced that entry before; now another external port.
    const first = await natmapper('map', '7170/tcp', '--once')
    assert.equal(first.code, 0, first.stderr)
    const firstPort = Number(/-> [\d.]+:(\d+)/.exec(first.stdout)?.[1])
    assert.notEqual(firstPort, 7170)
    assert.deepEqual(await table(lab), [`7170->:7171`, `${firstPort}->:7170`].sort((a, b) => parseInt(a) - parseInt(b)))

    // natmapper's own mapping 7173 -> :7173, then another natmapper asking for external 7173 for internal 7174.
    assert.equal((await natmapper('map', '7173/tcp', '--once')).code, 0)
    const second = await natmapper('map', '7174/tcp', '--once', '--external-port', '7173')
    assert.equal(second.code, 0, second.stderr)
    const secondPort = Number(/-> [\d.]+:(\d+)/.exec(second.stdout)?.[1])
    assert.notEqual(secondPort, 7173)
    const rules = await table(lab)
    assert.ok(rules.includes('7170->:7171') && rules.includes('7173->:7173') && rules.includes(`${secondPort}->:7174`), rules.join(', '))

    // Another program adds over natmapper's 7173 (the router lets it); unmap 7173 must not delete their entry.
    await upnpc('-e', 'other program', '-a', lab.clientAddress, '7175', '7173', 'tcp', '3600')
    const unmap = await natmapper('unmap', '7173/tcp')
    assert.equal(unmap.code, 1)
    assert.match(unmap.stderr, /not deleting UPnP TCP external port 7173: the router's entry there is not natmapper's: it forwards to 192\.168\.77\.2:7175, not to internal port 7173/)
    assert.ok((await table(lab)).includes('7173->:7175'), 'their entry is still there')

    // What is natmapper's it deletes.
    for (const port of ['7170/tcp', '7174/tcp']) assert.equal((await natmapper('unmap', port)).code, 0)
    assert.deepEqual(await table(lab), ['7170->:7171', '7173->:7175'], 'only the other program\'s entries are left')
  })
})

test('issue 18 point 10: natmapper caps --description to what miniupnpd keeps; natmapper list shows the table and names the entry the router sends cut mid-entity', limits, async (t) => {
  await requireLab(t)
  const env = stateEnv(t)
  await withLab({ natpmp: false }, async (lab) => {
    const long = `${'x'.repeat(60)} & more`
    // Another program's entry with a long description, the router's reply for it is not XML.
    const other = await lab.exec('lan', 'upnpc', ['-e', long, '-a', lab.clientAddress, '7181', '7181', 'tcp', '3600'])
    assert.match(other.stdout, /is redirected to internal/, other.stdout + other.stderr)
    const map = await lab.exec('lan', process.execPath, [bin, 'map', '7180/tcp', '--once', '--protocol', 'upnp', '--description', long], { env, timeoutMs: 15_000 })
    assert.equal(map.code, 0, map.stderr)
    const list = await lab.exec('lan', process.execPath, [bin, 'list', '--json', '--protocol', 'upnp'], { env, timeoutMs: 15_000 })
    t.diagnostic(`list: exit ${String(list.code)} ${list.stdout.replace(/\s+/g, ' ')} ${list.stderr.trim()}`)
    assert.equal(list.code, 0, list.stderr)
    const result = JSON.parse(list.stdout) as { mappings: Array<{ externalPort: number, description: string }>, unreadable: Array<{ index: number, reason: string }> }
    assert.deepEqual(result.mappings.map((m) => [m.externalPort, m.description]), [[7180, `${'x'.repeat(60)} `]], 'ours, capped before the & (63 bytes as sent)')
    assert.equal(result.unreadable.length, 1, 'the other program\'s entry, reported')
    assert.match(result.unreadable[0]!.reason, /not well-formed XML/)
    assert.equal((await lab.rules()).dnat.length, 2, 'both entries are on the router')
  })
})
