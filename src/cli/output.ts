/**
 * Everything the CLI prints goes through here: one line per event, either for people or as
 * NDJSON for scripts. Errors are one line on stderr; stacks only with --verbose.
 */
export interface Output {
  event(name: string, fields: Record<string, unknown>, human: string): void
  info(line: string): void
  error(err: unknown): void
}

export interface OutputOptions {
  json: boolean
  verbose: boolean
  stdout?: NodeJS.WritableStream
  stderr?: NodeJS.WritableStream
}

export function createOutput (options: OutputOptions): Output {
  const stdout = options.stdout ?? process.stdout
  const stderr = options.stderr ?? process.stderr
  return {
    event (name, fields, human) {
      stdout.write(options.json ? `${JSON.stringify({ event: name, ...fields })}\n` : `${human}\n`)
    },
    info (line) {
      // Progress lines are for people; in JSON mode they would break the NDJSON stream.
      if (!options.json) stderr.write(`${line}\n`)
    },
    error (err) {
      const message = err instanceof Error ? err.message : String(err)
      stderr.write(`natmapper: ${message}\n`)
      if (options.verbose && err instanceof Error && err.stack !== undefined) stderr.write(`${err.stack}\n`)
    }
  }
}
