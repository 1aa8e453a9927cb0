/**
 * Helpers for running a client under simulated time against a real router: after each step of
 * virtual time, real time passes until no request is in flight, so the router's answers arrive
 * before time jumps again.
 */

// Taken at load time: a runner may later replace the global with node:test's mock timers.
const realSetTimeout = globalThis.setTimeout

/** Real time passes until `busy()` is false (at most `capMs`), in small steps. */
export async function settleWhile (busy: () => boolean, capMs = 3000): Promise<void> {
  const deadline = performance.now() + capMs
  await new Promise<void>((resolve) => { setImmediate(resolve) })
  while (busy() && performance.now() < deadline) {
    await new Promise<void>((resolve) => { realSetTimeout(resolve, 1) })
  }
}

/** Handles of these types mean a request is in flight (UDP for natmapper, TCP for HTTP/SOAP). */
export function activeNetworkHandles (types: string[]): number {
  return process.getActiveResourcesInfo().filter((r) => types.includes(r)).length
}
