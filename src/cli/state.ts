import { homedir } from 'node:os'
import { dirname, join } from 'node:path'
import { requireBuiltin } from '../builtin.js'
import { systemClock } from '../clock.js'
import type { PortMapping } from '../gateway.js'
import { mappingToJSON } from '../mapping-json.js'

/**
 * Mappings natmapper made and that may outlive the process: all that `natmapper map --once` left,
 * and what a running `natmapper map` holds until it has deleted it (so that after a crash or a
 * kill -9 `natmapper unmap` can still delete them: a PCP server deletes a mapping only for the
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

/** The record of `mapping`, made on the gateway at `gateway`. */
export function recordOf (gateway: string, mapping: PortMapping): SavedMapping {
  const json = mappingToJSON(mapping, systemClock.now())
  return {
    gateway,
    method: mapping.method,
    protocol: mapping.protocol,
    internalPort: mapping.internalPort,
    externalPort: mapping.externalPort,
    ...(mapping.externalAddress === undefined ? {} : { externalAddress: mapping.externalAddress }),
    expiresAt: (json as { expiresAtMs: number | null }).expiresAtMs,
    mapping: json
  }
}

/** Records these mappings, in place of any earlier record of the same ports. */
export async function remember (gateway: string, mappings: PortMapping[]): Promise<void> {
  if (mappings.length === 0) return
  const records = mappings.map((m) => recordOf(gateway, m))
  const kept = (await loadSaved()).filter((s) => !records.some((r) => sameMapping(s, r)))
  await saveAll([...kept, ...records])
}

/** Drops the records of these ports. */
export async function forget (gateway: string, keys: Array<Pick<SavedMapping, 'protocol' | 'internalPort'>>): Promise<void> {
  if (keys.length === 0) return
  const saved = await loadSaved()
  const kept = saved.filter((s) => !keys.some((k) => sameMapping(s, { gateway, ...k })))
  if (kept.length !== saved.length) await saveAll(kept)
}
