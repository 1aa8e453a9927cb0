import { requireBuiltin } from '../builtin.js'

/**
 * 96 random bits for a PCP MAP nonce (RFC 6887 §11.1): what proves a reply answers our request,
 * so it must be unpredictable to other hosts on the LAN: the CSPRNG of node:crypto.
 */
export function randomNonce (): Uint8Array {
  return requireBuiltin<typeof import('node:crypto')>('node:crypto').randomFillSync(new Uint8Array(12))
}
