/**
 * Times whole processes from inside a lab namespace, hyperfine-style: each `run` command line is
 * a JSON array [cmd, ...args]; the answer is the wall time from spawn to exit, measured here so
 * that `ip netns exec` is not counted. Children inherit this process's namespace.
 */
import { spawn } from 'node:child_process'
import { command, fatal, send } from './io.js'

async function time (argv: string[]): Promise<void> {
  const [cmd, ...args] = argv
  let stdout = ''
  let stderr = ''
  const t0 = performance.now()
  const child = spawn(cmd!, args, { stdio: ['ignore', 'pipe', 'pipe'] })
  child.stdout.setEncoding('utf8').on('data', (d: string) => { stdout += d })
  child.stderr.setEncoding('utf8').on('data', (d: string) => { stderr += d })
  const code = await new Promise<number | null>((resolve) => {
    child.once('error', (err) => { stderr += String(err); resolve(127) })
    child.once('exit', (c) => { resolve(c) })
  })
  const ms = performance.now() - t0
  send({ type: 'timed', ms, code, stdout: stdout.slice(-2000), stderr: stderr.slice(-2000) })
}

try {
  for (;;) {
    const line = await command()
    if (line === 'exit') break
    await time(JSON.parse(line) as string[])
  }
} catch (err) {
  fatal(err)
}
process.exit(0)
