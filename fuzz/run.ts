import { performance } from 'node:perf_hooks'
import { pathToFileURL } from 'node:url'
import fc from 'fast-check'
import { GatewayRefusedError, MalformedPacketError, NatmapperError } from '../src/errors.js'
import { BLOW_UP_SIZE, targets } from './targets.js'
import type { FuzzTarget } from './targets.js'

/**
 * The fuzz runner behind `npm run fuzz`:
 *
 *   node build/fuzz/run.js [--runs N] [--target NAME[,NAME]]... [--seed S] [--time-budget-ms MS] [--verbose] [--list]
 *
 * `--time-budget-ms` stops each target after that long (the report says so); `--verbose` lists
 * every blow-up shape; `--list` prints the targets. The same seed gives the same inputs, so
 * `--target NAME --seed S` replays a failure from a full run.
 *
 * For each target (fuzz/targets.ts) it runs N inputs (default 100,000) and checks that the parser
 * returns a value that passes the target's checks or throws one of the errors it documents, with
 * a bounded message (router text in an error must be clipped; it ends up in logs). Every input is
 * run even after a failure, so the counts are complete; the first failing input is then replayed
 * from its seed and path and shrunk. Then the blow-up check: each target's worst-case shapes at
 * 1 MiB and at the largest size the parser reads must be decoded or refused within
 * BLOW_UP_LIMIT_MS. Exits non-zero on any unexpected exception or slow shape.
 */

export const DEFAULT_RUNS = 100_000
/** A parser that needs longer than this for a 1 MiB blow-up input fails the run. */
export const BLOW_UP_LIMIT_MS = 50
/**
 * At the parser's own size limit the input is read, not refused, so the budget grows with the
 * limit: 50 ms per 64 KiB (SSDP and SOAP 50 ms, a 256 KiB description 200 ms). Linear parsing
 * stays far below; a quadratic loop at these sizes takes seconds.
 */
export function atLimitBudgetMs (limit: number): number {
  return BLOW_UP_LIMIT_MS * Math.max(1, limit / 65536)
}
/** Error messages quote router text; past this length they were not clipped. */
export const MAX_ERROR_MESSAGE = 1000

export interface Failure {
  readonly seed: number
  /** fast-check's replay path of the shrunk counterexample. */
  readonly path: string
  readonly shrinks: number
  readonly input: string
  readonly error: string
}

export interface TargetReport {
  readonly name: string
  readonly parser: string
  readonly inputs: number
  readonly decoded: number
  readonly refused: number
  readonly unexpected: number
  readonly slowestMs: number
  readonly slowestSize: number
  readonly totalMs: number
  readonly interrupted: boolean
  readonly failure: Failure | undefined
}

/**
 * Runs the parser on one input. Returns whether it decoded or refused and how long the parser
 * took (checks excluded); throws whatever the target does not allow, or an Error describing a
 * broken promise (a value that fails its check, an unclipped message, an offset outside the input).
 */
export function exercise<I> (target: FuzzTarget<I>, input: I): { outcome: 'decoded' | 'refused', ms: number } {
  // Decoders never modify their input (STYLE.md §2); strings cannot be modified anyway.
  const copy = input instanceof Uint8Array ? input.slice() : undefined
  const start = performance.now()
  let value: unknown
  let ms: number
  try {
    value = target.parse(input)
    ms = performance.now() - start
  } catch (err) {
    ms = performance.now() - start
    checkRefusal(target, input, err)
    return { outcome: 'refused', ms }
  } finally {
    if (copy !== undefined && !equalBytes(copy, input as Uint8Array)) throw new Error(`${target.name}: the parser modified its input`)
  }
  target.check(value, input)
  return { outcome: 'decoded', ms }
}

function equalBytes (a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false
  return true
}

function checkRefusal<I> (target: FuzzTarget<I>, input: I, err: unknown): void {
  if (!target.allowed.some((type) => err instanceof type)) throw err
  const error = err as Error
  const fail = (what: string): never => { throw new Error(`${target.name}: ${what} (${error.name}: ${error.message.slice(0, 300)})`, { cause: err }) }
  if (error.message.length > MAX_ERROR_MESSAGE) fail(`error message of ${error.message.length} characters: router text not clipped`)
  if (!(err instanceof NatmapperError) || !err.code.startsWith('NATMAPPER_')) fail('error without a natmapper code')
  if (err instanceof MalformedPacketError) {
    const size = target.size(input)
    if (!Number.isInteger(err.offset) || err.offset < 0 || err.offset > size) fail(`offset ${err.offset} outside 0..${size}`)
    if (err.reason === '') fail('empty reason')
  }
  if (err instanceof GatewayRefusedError && (!Number.isSafeInteger(err.resultCode) || err.resultName === '')) fail('refusal without a code and name')
}

function describe (err: unknown): string {
  if (err instanceof Error) return err.stack ?? `${err.name}: ${err.message}`
  return String(err)
}

/** Runs `runs` inputs of one target; see the file comment. */
export function runTarget<I> (target: FuzzTarget<I>, options: { runs: number, seed: number, timeBudgetMs?: number }): TargetReport {
  let inputs = 0
  let decoded = 0
  let refused = 0
  let unexpected = 0
  let firstFailure = -1
  let slowestMs = 0
  let slowestSize = 0
  const started = performance.now()
  const property = fc.property(target.input, (input) => {
    const index = inputs++
    try {
      const { outcome, ms } = exercise(target, input)
      if (outcome === 'decoded') decoded++
      else refused++
      if (ms > slowestMs) {
        // A garbage collection can land in any one parse: time a new record twice more and keep the fastest.
        const best = Math.min(ms, exercise(target, input).ms, exercise(target, input).ms)
        if (best > slowestMs) {
          slowestMs = best
          slowestSize = target.size(input)
        }
      }
    } catch {
      unexpected++
      if (firstFailure === -1) firstFailure = index
    }
  })
  const plugins = options.timeBudgetMs === undefined ? [] : [fc.interruptAfterTimeLimit(options.timeBudgetMs)]
  const details = fc.check(property, { numRuns: options.runs, seed: options.seed, plugins })
  const totalMs = performance.now() - started
  let failure: Failure | undefined
  if (firstFailure !== -1) {
    // The property above never fails, so run i was generated at path "i": replay it, failing this
    // time, and let fast-check shrink it.
    const replay = fc.check(fc.property(target.input, (input) => { exercise(target, input) }), { seed: options.seed, path: String(firstFailure) })
    failure = replay.failed && replay.counterexample !== null
      ? { seed: options.seed, path: replay.counterexamplePath ?? String(firstFailure), shrinks: replay.numShrinks, input: target.show(replay.counterexample[0]), error: describe(replay.errorInstance) }
      : { seed: options.seed, path: String(firstFailure), shrinks: 0, input: '(the failure did not reproduce on replay)', error: '' }
  }
  return {
    name: target.name,
    parser: target.parser,
    inputs,
    decoded,
    refused,
    unexpected,
    slowestMs,
    slowestSize,
    totalMs,
    interrupted: details.interrupted,
    failure
  }
}

export interface BlowUpResult {
  readonly target: string
  readonly shape: string
  /** 'large': BLOW_UP_SIZE; 'limit': the largest input the parser reads. */
  readonly kind: 'large' | 'limit'
  readonly size: number
  readonly ms: number
  readonly budgetMs: number
  readonly outcome: 'decoded' | 'refused' | 'unexpected'
  readonly error: string | undefined
}

/**
 * Every shape of a target built at `size`, run `repeat` times (the fastest run counts, so that a
 * garbage collection or a cold JIT does not decide the result).
 */
function blowUp<I> (target: FuzzTarget<I>, kind: 'large' | 'limit', size: number, budgetMs: number, repeat: number): BlowUpResult[] {
  return target.shapes.map((shape) => {
    const input = shape.build(size)
    const base = { target: target.name, shape: shape.name, kind, size: target.size(input), budgetMs }
    let best = Infinity
    let outcome: 'decoded' | 'refused' = 'refused'
    for (let i = 0; i < repeat; i++) {
      try {
        const run = exercise(target, input)
        best = Math.min(best, run.ms)
        outcome = run.outcome
      } catch (err) {
        return { ...base, ms: NaN, outcome: 'unexpected', error: describe(err) }
      }
    }
    return { ...base, ms: best, outcome, error: undefined }
  })
}

/** The 1 MiB check, and the same shapes at the largest size the parser reads (when it has a limit). */
export function blowUpChecks<I> (target: FuzzTarget<I>, options: { repeat?: number } = {}): BlowUpResult[] {
  const results = blowUp(target, 'large', BLOW_UP_SIZE, BLOW_UP_LIMIT_MS, 1)
  if (target.limit !== undefined) results.push(...blowUp(target, 'limit', target.limit, atLimitBudgetMs(target.limit), options.repeat ?? 3))
  return results
}

/** Whether a blow-up result breaks the promise: an unexpected exception, or over budget. */
export function blewUp (result: BlowUpResult): boolean {
  return result.outcome === 'unexpected' || !(result.ms <= result.budgetMs)
}

// ---------------------------------------------------------------------------------------------
// Command line

interface Options { runs: number, names: string[], seed: number, timeBudgetMs: number | undefined, verbose: boolean }

function parseArgs (argv: string[]): Options {
  const options: Options = { runs: DEFAULT_RUNS, names: [], seed: Math.floor(Math.random() * 0x7fffffff), timeBudgetMs: undefined, verbose: false }
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!
    const value = (): string => {
      const next = argv[++i]
      if (next === undefined) throw new Error(`${arg} needs a value`)
      return next
    }
    const integer = (text: string): number => {
      if (!/^\d+$/.test(text)) throw new Error(`${arg} needs a non-negative integer, got ${JSON.stringify(text)}`)
      return Number(text)
    }
    if (arg === '--runs') options.runs = integer(value())
    else if (arg === '--target') options.names.push(...value().split(','))
    else if (arg === '--seed') options.seed = integer(value())
    else if (arg === '--time-budget-ms') options.timeBudgetMs = integer(value())
    else if (arg === '--verbose') options.verbose = true
    else if (arg === '--list') {
      for (const target of targets) console.log(`${target.name.padEnd(34)} ${target.parser}`)
      process.exit(0)
    } else throw new Error(`unknown argument ${JSON.stringify(arg)}; use --runs N, --target NAME, --seed S, --time-budget-ms MS, --verbose, --list`)
  }
  return options
}

function row (cells: Array<string | number>, widths: number[]): string {
  return cells.map((cell, i) => i === 0 ? String(cell).padEnd(widths[i]!) : String(cell).padStart(widths[i]!)).join('  ')
}

function main (): number {
  let options: Options
  try {
    options = parseArgs(process.argv.slice(2))
  } catch (err) {
    console.error((err as Error).message)
    return 2
  }
  const selected = options.names.length === 0 ? targets : targets.filter((t) => options.names.includes(t.name))
  const unknown = options.names.filter((name) => !targets.some((t) => t.name === name))
  if (unknown.length > 0) {
    console.error(`unknown target ${unknown.join(', ')}; --list shows them`)
    return 2
  }
  console.log(`natmapper fuzz: ${selected.length} targets, ${options.runs} inputs each, seed ${options.seed}` +
    `${options.timeBudgetMs === undefined ? '' : `, at most ${options.timeBudgetMs} ms per target`} (node ${process.version})`)
  const started = performance.now()
  const reports: TargetReport[] = []
  for (const target of selected) {
    const report = runTarget(target, { runs: options.runs, seed: options.seed, timeBudgetMs: options.timeBudgetMs })
    reports.push(report)
    console.log(`  ${report.name}: ${report.inputs} inputs in ${(report.totalMs / 1000).toFixed(1)} s${report.unexpected > 0 ? `, ${report.unexpected} UNEXPECTED` : ''}${report.interrupted ? ' (time budget reached)' : ''}`)
  }

  const widths = [32, 7, 8, 10, 10, 11, 12, 7]
  console.log()
  console.log(row(['target', 'inputs', 'decoded', 'typed err', 'unexpected', 'slowest ms', '(its size)', 'total s'], widths))
  for (const r of reports) {
    console.log(row([r.name, r.inputs, r.decoded, r.refused, r.unexpected, r.slowestMs.toFixed(2), r.slowestSize, (r.totalMs / 1000).toFixed(1)], widths))
  }
  const totalInputs = reports.reduce((sum, r) => sum + r.inputs, 0)
  console.log(row(['all', totalInputs, '', '', reports.reduce((sum, r) => sum + r.unexpected, 0), '', '', ''], widths))

  let failed = false
  for (const r of reports) {
    if (r.failure === undefined) continue
    failed = true
    console.log(`\n${r.name} (${r.parser}): ${r.unexpected} unexpected; shrunk counterexample after ${r.failure.shrinks} shrinks` +
      ` (replay: --target ${r.name} --seed ${r.failure.seed}; fast-check path ${r.failure.path})`)
    console.log(`input: ${r.failure.input}`)
    console.log(r.failure.error)
  }
  for (const r of reports) if (r.inputs < options.runs && !r.interrupted) failed = true

  console.log(`\nblow-up check: worst-case shapes at ${BLOW_UP_SIZE} bytes or characters (fail above ${BLOW_UP_LIMIT_MS} ms),` +
    ' and at the size limit of each parser (best of 3; fail above 50 ms per 64 KiB)')
  const blowUpWidths = [34, 6, 8, 32, 8, 8, 32]
  console.log(row(['target', 'shapes', '1 MiB ms', 'slowest 1 MiB shape', 'limit', 'limit ms', 'slowest shape at the limit'], blowUpWidths))
  for (const target of selected) {
    const results = blowUpChecks(target)
    const worst = (kind: 'large' | 'limit'): BlowUpResult | undefined => results.filter((r) => r.kind === kind && r.outcome !== 'unexpected')
      .reduce<BlowUpResult | undefined>((w, r) => w === undefined || r.ms > w.ms ? r : w, undefined)
    const [large, limit] = [worst('large'), worst('limit')]
    console.log(row([target.name, target.shapes.length, large?.ms.toFixed(2) ?? '-', large?.shape ?? '-', target.limit ?? 'none',
      limit?.ms.toFixed(2) ?? '-', limit?.shape ?? (target.limit === undefined ? '(reads a fixed prefix)' : '-')], blowUpWidths))
    for (const r of results) {
      const bad = blewUp(r)
      if (bad) failed = true
      if (bad || options.verbose) {
        console.log(`    ${bad ? 'FAIL ' : ''}${r.shape} (${r.size}): ${r.outcome}${Number.isNaN(r.ms) ? '' : ` in ${r.ms.toFixed(2)} ms`} (budget ${r.budgetMs} ms)`)
        if (r.error !== undefined) console.log(r.error.split('\n').map((l) => `      ${l}`).join('\n'))
      }
    }
  }
  console.log(`\n${failed ? 'FAILED' : 'passed'}: ${totalInputs} inputs, wall time ${((performance.now() - started) / 1000).toFixed(1)} s, seed ${options.seed}`)
  return failed ? 1 : 0
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) process.exitCode = main()
