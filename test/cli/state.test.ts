import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { loadSaved, loadState } from '../../src/cli/state.js'

function withStateFile (t: { after: (fn: () => void) => void }, content: unknown): string {
  const dir = mkdtempSync(join(tmpdir(), 'natmapper-state-'))
  const file = join(dir, 'mappings.json')
  writeFileSync(file, JSON.stringify(content))
  const before = process.env.NATMAPPER_STATE_FILE
  process.env.NATMAPPER_STATE_FILE = file
  t.after(() => {
    if (before === undefined) delete process.env.NATMAPPER_STATE_FILE
    else process.env.NATMAPPER_STATE_FILE = before
    rmSync(dir, { recursive: true, force: true })
  })
  return file
}

const v4 = { gateway: '::1', method: 'pcp', protocol: 'tcp', internalPort: 4001, externalPort: 4001, expiresAt: null, mapping: {} }
const v6 = { ...v4, family: 6, externalAddress: '2001:db8:1::2', controlURL: 'http://[2001:db8:1::1]:5000/ctl/IP6FCtl' }

test('state file: pinhole records are read (family 6) but not given to the IPv4 list/unmap, even on a gateway of the same address', async (t) => {
  withStateFile(t, [v4, v6])
  assert.equal((await loadState()).entries.length, 2)
  assert.deepEqual((await loadSaved()).map((r) => r.family ?? 4), [4])
})

test('state file: an unreadable entry is reported with its index and reason, and the others still read', async (t) => {
  const file = withStateFile(t, [{ gateway: 7 }, v4, { ...v6, family: 5 }])
  const state = await loadState()
  assert.deepEqual(state.entries.map((r) => r.internalPort), [4001])
  assert.deepEqual(state.unreadable.map((u) => u.index), [0, 2])
  assert.match(state.unreadable[1]!.reason, /family 5/)
  assert.equal(JSON.parse(readFileSync(file, 'utf8')).length, 3, 'reading changes nothing in the file')
})
