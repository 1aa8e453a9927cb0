import { createRequire } from 'node:module'

/**
 * Loads a Node built-in through require rather than import, on first use, for the built-ins whose
 * ESM facade loads much more than the one function needed (`node:fs` its streams, `node:crypto`
 * WebCrypto): `import 'natmapper'` stays cheap (BENCHMARKS.md, benchmark 6).
 */
export const requireBuiltin = createRequire(import.meta.url) as <T>(id: string) => T
