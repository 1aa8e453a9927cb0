// Shared by the lab tests of issue 18's leak points (test/lab/leak-*.test.ts): a state file of the
// test's own, the CLI run to its end or awaited with a bound, and a router left to finish its queue.
// Not a test file itself.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { bin, repoRoot, type CliRun } from './cli.js'
import type { ExecResult, Lab } from './lab.js'

/** One record of natmapper's state file, as far as these tests read it. */
export interface StateRecord {
  gateway: string
  method: string
  protocol: string
  internalPort: number
  externalPort: number
  expiresAt: number | null
  mapping: { session?: { nonce?: { $bytes?: string } } } & Record<string, unknown>
}

export interface StateFile {
  readonly path: string
  /** process.env with NATMAPPER_STATE_FILE pointing at `path`: for every natmapper the test runs. */
  readonly env: NodeJS.ProcessEnv
  /** What the file holds now ([] when it does not exist). */
  records: () => StateRecord[]
  /** The records of one port. */
  of: (protocol: string, internalPort: number) => StateRecord[]
}

/** A state file in a directory of the test's own, deleted when the test ends. */
export function stateFile (t: { after: (fn: () => void) => void }): StateFile {
  const dir = mkdtempSync(join(tmpdir(), 'natmapper-lab-state-'))
  t.after(() => { rmSync(dir, { recursive: true, force: true }) })
  const path = join(dir, 'mappings.json')
  const records = (): StateRecord[] => {
    let text: string
    try {
      text = readFileSync(path, 'utf8')
    } catch {
      return []
    }
    const list = JSON.parse(text) as unknown
    if (!Array.isArray(list)) throw new Error(`the state file ${path} is not a JSON array: ${text}`)
    return list as StateRecord[]
  }
  return {
    path,
    env: { ...process.env, NATMAPPER_STATE_FILE: path },
    records,
    of: (protocol, internalPort) => records().filter((r) => r.protocol === protocol && r.internalPort === internalPort)
  }
}

/** Runs natmapper in the lan namespace to its end. */
export async function runCli (lab: Lab, args: string[], env: NodeJS.ProcessEnv, timeoutMs = 20_000): Promise<ExecResult> {
  return await lab.exec('lan', process.execPath, [bin, ...args], { env, cwd: repoRoot, timeoutMs })
}

/** The NDJSON events of a finished run's stdout (a line that is not JSON becomes { event: 'not-json', line }). */
export function eventsOf (stdout: string): Array<Record<string, unknown>> {
  return stdout.split('\n').filter((line) => line.trim() !== '').map((line) => {
    try {
      return JSON.parse(line) as Record<string, unknown>
    } catch {
      return { event: 'not-json', line }
    }
  })
}

export async function exited (cli: CliRun, withinMs: number): Promise<{ code: number | null, signal: NodeJS.Signals | null }> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => { reject(new Error(`the CLI did not exit within ${withinMs} ms; stderr: ${cli.stderr()}`)) }, withinMs)
  })
  try {
    return await Promise.race([cli.exit, timeout])
  } finally {
    clearTimeout(timer)
  }
}

/**
 * Waits until miniupnpd's log has not grown for `quietMs` (it may still be working through
 * requests queued before natmapper exited), at most `maxMs`. Returns how long it waited.
 */
export async function routerQuiet (lab: Lab, quietMs = 1000, maxMs = 10_000): Promise<number> {
  const started = performance.now()
  let length = lab.routerLog().length
  let since = performance.now()
  while (performance.now() - since < quietMs) {
    if (performance.now() - started > maxMs) throw new Error(`the router was still logging requests ${maxMs} ms after natmapper exited`)
    await new Promise((resolve) => setTimeout(resolve, 100))
    const now = lab.routerLog().length
    if (now !== length) {
      length = now
      since = performance.now()
    }
  }
  return Math.round(performance.now() - started)
}

/** `7001/tcp 7002/udp` as the router holds them: external ports of the DNAT rules. */
export async function ruleSummary (lab: Lab): Promise<string> {
  const { dnat } = await lab.rules()
  return dnat.map((r) => `${r.externalPort}/${r.protocol}->${r.internalAddress}:${r.internalPort}`).join(' ') || '(none)'
}
