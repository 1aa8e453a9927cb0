import type { TestContext } from 'node:test'
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'

/** The compiled CLI next to the compiled tests (build/src/cli/bin.js). */
export const bin = fileURLToPath(new URL('../../src/cli/bin.js', import.meta.url))

/**
 * Where the CLI keeps what `map --once` left: a directory of this test process's own, unless a
 * test names a file, so that no test writes to the state file of the user who runs them.
 */
const stateDir = mkdtempSync(join(tmpdir(), 'natmapper-cli-'))
process.on('exit', () => { rmSync(stateDir, { recursive: true, force: true }) })
const cliEnv = (env: NodeJS.ProcessEnv): NodeJS.ProcessEnv => ({ ...process.env, NATMAPPER_STATE_FILE: join(stateDir, 'mappings.json'), ...env })

export interface CliRun { child: ChildProcess, events: Array<Record<string, unknown>>, stderr: () => string, exit: Promise<number | null> }

/** Starts the CLI and collects its NDJSON events; killed when the test ends. */
export function startCli (ctx: TestContext, args: string[]): CliRun {
  const child = spawn(process.execPath, [bin, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: cliEnv({}) })
  const events: Array<Record<string, unknown>> = []
  let stderr = ''
  child.stderr!.on('data', (chunk: Buffer) => { stderr += chunk.toString() })
  // Without --json the lines are for people: kept as { event: 'not-json', line }.
  createInterface({ input: child.stdout! }).on('line', (line) => {
    try {
      events.push(JSON.parse(line) as Record<string, unknown>)
    } catch {
      events.push({ event: 'not-json', line })
    }
  })
  const exit = new Promise<number | null>((resolve) => child.on('exit', (code) => { resolve(code) }))
  ctx.after(() => { child.kill('SIGKILL') })
  return { child, events, stderr: () => stderr, exit }
}

/** Runs the CLI to the end. */
export async function runCli (args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number | null, stdout: string, stderr: string }> {
  const child = spawn(process.execPath, [bin, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: cliEnv(env) })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (chunk: Buffer) => { stdout += chunk.toString() })
  child.stderr.on('data', (chunk: Buffer) => { stderr += chunk.toString() })
  const code = await new Promise<number | null>((resolve) => child.on('exit', resolve))
  return { code, stdout, stderr }
}
