import { createInterface } from 'node:readline'

/** The runner's side of the line protocol of bench/lib/runner.ts. */

export function send (message: Record<string, unknown>): void {
  process.stdout.write(`${JSON.stringify(message)}\n`)
}

const lines: string[] = []
const waiting: Array<(line: string) => void> = []
createInterface({ input: process.stdin }).on('line', (line) => {
  const w = waiting.shift()
  if (w !== undefined) w(line)
  else lines.push(line)
})

/** The next command from the parent. */
export async function command (): Promise<string> {
  const line = lines.shift()
  if (line !== undefined) return line
  return await new Promise((resolve) => { waiting.push(resolve) })
}

export function describe (err: unknown): string {
  const e = err as Error & { code?: string }
  return `${e.name ?? 'Error'}${e.code === undefined ? '' : ` ${e.code}`}: ${e.message ?? String(err)}`
}

/** Reports an unexpected failure and exits, so the parent never waits for a message that will not come. */
export function fatal (err: unknown): never {
  send({ type: 'fatal', error: describe(err) })
  process.exit(1)
}

export function parseArgs (argv: string[]): Record<string, string> {
  const out: Record<string, string> = {}
  for (const arg of argv) {
    const m = /^--([^=]+)=(.*)$/.exec(arg)
    if (m !== null) out[m[1]!] = m[2]!
  }
  return out
}

/**
 * Runs the tool that `--tool=` names; an unknown name or a throw is reported as fatal (exit 1).
 * Resolves when the tool has finished; the runner then exits.
 */
export async function runTool (tool: string | undefined, tools: Record<string, () => Promise<void>>): Promise<void> {
  try {
    const run = tool === undefined ? undefined : tools[tool]
    if (run === undefined) throw new Error(`unknown --tool=${String(tool)}`)
    await run()
  } catch (err) {
    fatal(err)
  }
}
