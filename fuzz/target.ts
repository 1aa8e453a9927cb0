import type fc from 'fast-check'

/** What a fuzz target is (fuzz/targets.ts lists them, fuzz/route-targets.ts adds the route parsers'). */

/** An error class a parser documents. */
export type ErrorClass = abstract new (...args: never[]) => Error

/** A worst-case input family, built at a given size (bytes or UTF-16 units), for the blow-up check. */
export interface Shape<I> {
  readonly name: string
  build (size: number): I
}

export interface FuzzTarget<I> {
  readonly name: string
  /** The function under test, for the report. */
  readonly parser: string
  /** Everything the parser may throw; anything else is a bug. */
  readonly allowed: readonly ErrorClass[]
  readonly input: fc.Arbitrary<I>
  /** The size above which the parser refuses at once; undefined when it reads a bounded prefix of any input. */
  readonly limit: number | undefined
  readonly shapes: ReadonlyArray<Shape<I>>
  parse (input: I): unknown
  /** Asserts what a returned value must satisfy (a round trip, values in range). */
  check (value: unknown, input: I): void
  size (input: I): number
  show (input: I): string
}
