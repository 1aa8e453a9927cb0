import { homedir } from 'node:os'
import { dirname, join } from 'node:path'
import { requireBuiltin } from '../builtin.js'

/**
 * Mappings that `natmapper map --once` left on the router, saved so that `natmapper unmap` and
 * `natmapper list` in a later process know them (a PCP server deletes a mapping only for the
 * nonce it was made with). One JSON file; NATMAPPER_STATE_FILE overrides its place.
 */

export interface SavedMapping {
  gateway: string
  method: string
  protocol: string
  internalPort: number
  externalPort: number
  externalAddress?: string
  /** Wall-clock ms; entries past it are dropped on load. */
  expiresAt: number | null
  /** The mapping as mappingToJSON wrote it. */
  mapping: unknown
}

export function stateFile (): string {
  const override = process.env.NATMAPPER_STATE_FILE
  if (override !== undefined && override !== '') return override
  const base = process.platform === 'win32'
    ? process.env.LOCALAPPDATA ?? join(homedir(), 'AppData', 'Local')
    : process.env.XDG_STATE_HOME ?? join(homedir(), '.local', 'state')
  return join(base, 'natmapper', 'mappings.json')
}

export async function loadSaved (nowMs = Date.now()): Promise<SavedMapping[]> {
  const fs = requireBuiltin<typeof import('node:fs')>('node:fs')
  let text: string
  try {
    // Synchronously: a small file, read once by a short-lived command; the promise API's thread
    // pool cost `map --once` more than the read.
    text = fs.readFileSync(stateFile(), 'utf8')
  } catch {
    return []
  }
  try {
    const list = JSON.parse(text) as SavedMapping[]
    return Array.isArray(list) ? list.filter((m) => m.expiresAt === null || m.expiresAt > nowMs) : []
  } catch {
    return []
  }
}

export async function saveAll (list: SavedMapping[]): Promise<void> {
  const fs = requireBuiltin<typeof import('node:fs')>('node:fs')
  const file = stateFile()
  fs.mkdirSync(dirname(file), { recursive: true })
  const temporary = `${file}.${process.pid}.tmp`
  fs.writeFileSync(temporary, `${JSON.stringify(list, null, 2)}\n`, { mode: 0o600 })
  fs.renameSync(temporary, file)
}

/** Same gateway, protocol and internal port: the key a router knows a mapping by. */
export function sameMapping (a: Pick<SavedMapping, 'gateway' | 'protocol' | 'internalPort'>, b: Pick<SavedMapping, 'gateway' | 'protocol' | 'internalPort'>): boolean {
  return a.gateway === b.gateway && a.protocol === b.protocol && a.internalPort === b.internalPort
}
