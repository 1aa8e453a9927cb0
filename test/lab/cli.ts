// The natmapper CLI run inside a lab namespace, as the lab tests drive it: its NDJSON events
// collected as they come, its output kept, its exit awaited.
import type { ChildProcess } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { Lab } from './lab.js'

/** build/test/lab/cli.js -> the repository root. */
export const repoRoot = fileURLToPath(new URL('../../../', import.meta.url))
/** The compiled CLI next to the compiled tests. */
export const bin = join(repoRoot, 'build', 'src', 'cli', 'bin.js')

export interface CliRun {
  child: ChildProcess
  /** One per stdout line; a line that is not JSON becomes { event: 'not-json', line }. */
  events: Array<Record<string, unknown>>
  stdout: () => string
  stderr: () => string
  exit: Promise<{ code: number | null, signal: NodeJS.Signals | null }>
  exited: () => boolean
}

let stateDir: string | undefined

/** A state file of this test process's own, so that no lab run writes the records of the user who runs it. */
function defaultEnv (): NodeJS.ProcessEnv {
  if (stateDir === undefined) {
    const dir = mkdtempSync(join(tmpdir(), 'natmapper-lab-cli-'))
    process.on('exit', () => { rmSync(dir, { recursive: true, force: true }) })
    stateDir = dir
  }
  return { ...process.env, NATMAPPER_STATE_FILE: join(stateDir, 'mappings.json') }
}

/**
 * `env` replaces the environment (e.g. with NATMAPPER_STATE_FILE set to a file of the test's
 * own); by default the CLI's state file is one of this test process's, not the user's.
 */
export function startCli (lab: Lab, args: string[], options: { env?: NodeJS.ProcessEnv } = {}): CliRun {
  const child = lab.spawn('lan', process.execPath, [bin, ...args], { cwd: repoRoot, env: options.env ?? defaultEnv() })
  const events: Array<Record<string, unknown>> = []
  let stdout = ''
  let stderr = ''
  let pending = ''
  let done = false
  child.stdout?.setEncoding('utf8').on('data', (d: string) => {
    stdout += d
    pending += d
    const lines = pending.split('\n')
    pending = lines.pop() ?? ''
    for (const line of lines) {
      if (line.trim() === '') continue
      try {
        events.push(JSON.parse(line) as Record<string, unknown>)
      } catch {
        events.push({ event: 'not-json', line })
      }
    }
  })
  child.stderr?.setEncoding('utf8').on('data', (d: string) => { stderr += d })
  const exit = new Promise<{ code: number | null, signal: NodeJS.Signals | null }>((resolve) => {
    child.once('exit', (code, signal) => {
      done = true
      resolve({ code, signal })
    })
  })
  return { child, events, stdout: () => stdout, stderr: () => stderr, exit, exited: () => done }
}

/** Polls `check` every 20 ms; rejects after `timeoutMs` naming `what`. */
export async function waitUntil (check: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = performance.now() + timeoutMs
  while (!check()) {
    if (performance.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
}
