import type { ChildProcess } from 'node:child_process'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import type { Lab, LabHost } from '../../test/lab/lab.js'

/**
 * The parent's side of a runner script (bench/runners/*): a Node process started inside a lab
 * namespace that prints one JSON object per line and reads one command per line. Timing happens
 * inside the runner with performance.now(), so process start-up and imports are not counted.
 */

export type Message = Record<string, any>

export interface Runner {
  child: ChildProcess
  /** The next message of this type; rejects if the runner exits or the wait runs out first. */
  next: (type: string, timeoutMs?: number) => Promise<Message>
  send: (command: string) => void
  /** Every message of this type received so far and not yet taken. */
  take: (type: string) => Message[]
  /** Resolves with the exit code once the runner has exited. */
  exited: Promise<number | null>
  stderr: () => string
  kill: () => void
}

export function runnerPath (name: string): string {
  return fileURLToPath(new URL(`../runners/${name}.js`, import.meta.url))
}

export function startRunner (lab: Lab, name: string, args: string[], host: LabHost = 'lan', env?: NodeJS.ProcessEnv): Runner {
  const child = lab.spawn(host, process.execPath, [runnerPath(name), ...args], { stdin: true, ...(env === undefined ? {} : { env }) })
  const queue: Message[] = []
  const waiters: Array<{ type: string, resolve: (m: Message) => void }> = []
  let stderr = ''
  let done = false
  child.stderr?.setEncoding('utf8').on('data', (d: string) => { stderr += d })
  child.stdin?.on('error', () => {})
  createInterface({ input: child.stdout! }).on('line', (line) => {
    let message: Message
    try {
      message = JSON.parse(line) as Message
    } catch {
      stderr += `(stdout) ${line}\n`
      return
    }
    const i = waiters.findIndex((w) => w.type === message.type || message.type === 'fatal')
    if (i !== -1) waiters.splice(i, 1)[0]!.resolve(message)
    else queue.push(message)
  })
  const exited = new Promise<number | null>((resolve) => {
    child.once('exit', (code) => {
      done = true
      resolve(code)
    })
  })
  return {
    child,
    exited,
    stderr: () => stderr,
    take: (type) => {
      const taken = queue.filter((m) => m.type === type)
      for (const m of taken) queue.splice(queue.indexOf(m), 1)
      return taken
    },
    send: (command) => { if (!done) child.stdin?.write(`${command}\n`) },
    kill: () => { if (!done) child.kill('SIGKILL') },
    next: async (type, timeoutMs = 30_000) => {
      const i = queue.findIndex((m) => m.type === type || m.type === 'fatal')
      const found = i === -1 ? undefined : queue.splice(i, 1)[0]
      const message = found ?? await new Promise<Message>((resolve, reject) => {
        const timer = setTimeout(() => {
          const j = waiters.indexOf(waiter)
          if (j !== -1) waiters.splice(j, 1)
          reject(new Error(`runner ${name}: no ${type} message within ${timeoutMs} ms; stderr: ${stderr.slice(-2000)}`))
        }, timeoutMs)
        const waiter = { type, resolve: (m: Message) => { clearTimeout(timer); resolve(m) } }
        waiters.push(waiter)
        void exited.then((code) => {
          const j = waiters.indexOf(waiter)
          if (j === -1) return
          waiters.splice(j, 1)
          clearTimeout(timer)
          reject(new Error(`runner ${name} exited (code ${String(code)}) before sending ${type}; stderr: ${stderr.slice(-2000)}`))
        })
      })
      if (message.type === 'fatal') throw new Error(`runner ${name}: ${String(message.error)}`)
      return message
    }
  }
}
