import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { readFileInto } from '../src/builtin.js'

test('readFileInto fills the buffer from the start of the file, stops at its end, and throws for a missing file', (ctx) => {
  const dir = mkdtempSync(join(tmpdir(), 'natmapper-'))
  ctx.after(() => { rmSync(dir, { recursive: true, force: true }) })
  const path = join(dir, 'f')
  writeFileSync(path, Buffer.from('0123456789'))
  const small = new Uint8Array(4)
  assert.equal(readFileInto(path, small), 4)
  assert.equal(Buffer.from(small).toString(), '0123')
  const large = new Uint8Array(64)
  assert.equal(readFileInto(path, large), 10)
  assert.equal(Buffer.from(large.subarray(0, 10)).toString(), '0123456789')
  assert.throws(() => readFileInto(join(dir, 'missing'), small), { code: 'ENOENT' })
})

test('readFileInto reads a device with no end (the random device) up to the buffer\'s size', { skip: process.platform === 'win32' ? 'no /dev/urandom on Windows' : false }, () => {
  const a = new Uint8Array(12)
  const b = new Uint8Array(12)
  assert.equal(readFileInto('/dev/urandom', a), 12)
  assert.equal(readFileInto('/dev/urandom', b), 12)
  assert.notDeepEqual(a, b)
})
