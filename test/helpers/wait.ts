/**
 * Polls `condition` on the real event loop until it holds. For waiting on socket I/O that a
 * fake clock cannot drive; bounded so a broken test fails instead of hanging.
 */
export async function waitFor (condition: () => boolean, what: string, timeoutMs = 2000): Promise<void> {
  const start = Date.now()
  while (!condition()) {
    if (Date.now() - start > timeoutMs) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 2))
  }
}
