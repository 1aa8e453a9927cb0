import { test } from 'node:test'
import assert from 'node:assert/strict'
import { existsSync, readFileSync } from 'node:fs'

/**
 * docs/quirks.md must cover all 42 quirks of the reference list, each with a status, and every
 * test it cites (`file` › “title, or a literal part of it”) must exist: a renamed or deleted
 * test shows here instead of leaving the table quietly wrong.
 */

const root = new URL('../../../', import.meta.url)
const doc = readFileSync(new URL('docs/quirks.md', root), 'utf8')
const rows = doc.split('\n').filter((line) => /^\| \d+ \|/.test(line))

test('docs/quirks.md has one row for each of the 42 quirks, with a status', () => {
  assert.deepEqual(rows.map((row) => Number(/^\| (\d+) \|/.exec(row)![1])), Array.from({ length: 42 }, (_, i) => i + 1))
  for (const row of rows) {
    const cells = row.split(' | ')
    assert.match(cells[2] ?? '', /^(handled|handled \(opt-in\)|partly|not applicable)$/, row.slice(0, 60))
  }
})

test('every test docs/quirks.md cites exists, under that title', () => {
  const sources = new Map<string, string>()
  for (const row of rows) {
    const citations = [...row.matchAll(/`(test\/[^`]+\.ts)` › “([^”]+)”/g)]
    const n = /^\| (\d+) \|/.exec(row)![1]
    assert.ok(citations.length > 0, `quirk ${n} cites no test`)
    for (const [, file, title] of citations) {
      const path = new URL(file!, root)
      assert.ok(existsSync(path), `quirk ${n}: no file ${file}`)
      if (!sources.has(file!)) sources.set(file!, readFileSync(path, 'utf8').replaceAll("\\'", "'"))
      assert.ok(sources.get(file!)!.includes(title!), `quirk ${n}: no test titled “${title}” in ${file}`)
    }
  }
})
