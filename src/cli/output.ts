/**
 * Everything the CLI prints goes through here: one line per event, either for people or as
 * NDJSON for scripts. Errors are one line on stderr; stacks only with --verbose. Colour only on
 * a terminal, and never when NO_COLOR is set (no-color.org).
 */
export interface Output {
  readonly json: boolean
  event(name: string, fields: Record<string, unknown>, human: string): void
  /** A whole JSON document (for commands that print one result, not a stream). */
  result(value: unknown, human: string): void
  info(line: string): void
  error(err: unknown): void
  /** Calls `handler` once when stdout goes away (the reader of a pipe exited: EPIPE); nothing more is written there. */
  onStdoutClosed(handler: () => void): void
}

export interface OutputOptions {
  json: boolean
  verbose: boolean
  stdout?: NodeJS.WritableStream & { isTTY?: boolean }
  stderr?: NodeJS.WritableStream & { isTTY?: boolean }
}

export type Colour = 'green' | 'yellow' | 'red' | 'dim' | 'bold'
const codes: Record<Colour, [number, number]> = { green: [32, 39], yellow: [33, 39], red: [31, 39], dim: [2, 22], bold: [1, 22] }

export function colourEnabled (stream: { isTTY?: boolean }): boolean {
  const noColour = process.env.NO_COLOR
  return stream.isTTY === true && (noColour === undefined || noColour === '')
}

export function paint (text: string, colour: Colour, enabled: boolean): string {
  if (!enabled) return text
  const [open, close] = codes[colour]
  return `\u001b[${open}m${text}\u001b[${close}m`
}

export function createOutput (options: OutputOptions): Output {
  const stdout = options.stdout ?? process.stdout
  const stderr = options.stderr ?? process.stderr
  const errColour = colourEnabled(stderr)
  // A write to a pipe whose reader is gone fails with EPIPE, asynchronously, as an 'error' event:
  // unheard, it would crash the process before its mappings are deleted.
  let stdoutOpen = true
  const closedHandlers: Array<() => void> = []
  stdout.on('error', () => {
    if (!stdoutOpen) return
    stdoutOpen = false
    for (const handler of closedHandlers) handler()
  })
  stderr.on('error', () => {})
  const write = (stream: NodeJS.WritableStream, text: string): void => {
    if (stream === stdout && !stdoutOpen) return
    try {
      stream.write(text)
    } catch {
      // Output must never stop the work (or the cleanup) it reports on.
    }
  }
  return {
    json: options.json,
    event (name, fields, human) {
      write(stdout, options.json ? `${JSON.stringify({ event: name, ...fields })}\n` : `${human}\n`)
    },
    result (value, human) {
      write(stdout, options.json ? `${JSON.stringify(value, null, 2)}\n` : human.endsWith('\n') ? human : `${human}\n`)
    },
    info (line) {
      // Progress lines are for people; in JSON mode they would break the NDJSON stream.
      if (!options.json) write(stderr, `${paint(line, 'dim', errColour)}\n`)
    },
    error (err) {
      const message = (err instanceof Error ? err.message : String(err)).replace(/\s*\n\s*/g, ' ')
      write(stderr, `${paint('natmapper:', 'red', errColour)} ${message}\n`)
      if (options.verbose && err instanceof Error && err.stack !== undefined) write(stderr, `${err.stack}\n`)
    },
    onStdoutClosed (handler) {
      if (!stdoutOpen) handler()
      else closedHandlers.push(handler)
    }
  }
}
