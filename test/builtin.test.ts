import { test } from 'node:test'
import assert from 'node:assert/strict'
import * as fs from 'node:fs'
import { requireBuiltin } from '../src/builtin.js'

test('requireBuiltin gives the same built-in as an import', () => {
  assert.equal(requireBuiltin<typeof fs>('node:fs').readFileSync, fs.readFileSync)
  assert.throws(() => requireBuiltin('node:no-such-module'), { code: 'ERR_UNKNOWN_BUILTIN_MODULE' })
})
