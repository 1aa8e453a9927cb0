import { readFileInto, requireBuiltin } from '../builtin.js'

/**
 * 96 random bits for a PCP MAP nonce (RFC 6887 §11.1): what proves a reply answers our request,
 * so it must be unpredictable to other hosts on the LAN. Read from the kernel's random device
 * where there is one: node:crypto takes 5-8 ms to load in a fresh ESM process (16 internal
 * modules), on the path of the first mapping; the device read takes microseconds. Elsewhere
 * (Windows), node:crypto.
 */
export function randomNonce (): Uint8Array {
  const nonce = new Uint8Array(12)
  try {
    if (readFileInto('/dev/urandom', nonce) === nonce.length) return nonce
  } catch {
    // No such device: fall through.
  }
  return requireBuiltin<typeof import('node:crypto')>('node:crypto').randomFillSync(nonce)
}
