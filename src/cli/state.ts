import { homedir } from 'node:os'
import { dirname, join } from 'node:path'
import { requireBuiltin } from '../builtin.js'
import { systemClock } from '../clock.js'
import type { AddressFamily, PortMapping } from '../gateway.js'
import { mappingToJSON } from '../mapping-json.js'

/**
 * Mappings natmapper made and that may outlive the process: all that `natmapper map --once` left,
 * and what a running `natmapper map` holds until it has deleted it (so that after a crash or a
 * kill -9 `natmapper unmap` can still delete them: a PCP server deletes a mapping only for the
 * nonce it was made with). IPv6 pinholes too (family 6). One JSON file; NATMAPPER_STATE_FILE
 * overrides its place.
 */

export interface SavedMapping {
  /** 6 for an IPv6 pinhole; absent (files written before pinholes were recorded) or 4 for a NAT mapping. */
  family?: AddressFamily
  /** The gateway asked: the IPv6 gateway for a PCP pinhole, the control URL's host for a UPnP one. */
  gateway: string
  method: string
  protocol: string
  internalPort: number
  externalPort: number
  /** For a pinhole, the host's IPv6 address opened. */
  externalAddress?: string
  /** The router's WANIPv6FirewallControl:1 control URL, where known (a UPnP pinhole; a PCP one made with --pinhole-url). */
  controlURL?: string
  /** The UPnP pinhole's UniqueID. */
  uniqueId?: number
  /** Wall-clock ms; entries past it are dropped on load. */
  expiresAt: number | null
  /** The mapping as mappingToJSON wrote it. */
  mapping: unknown
}

/** An entry of the file that is not a record natmapper can use: kept as it is, and said. */
export interface UnreadableEntry {
  index: number
  reason: string
  raw: unknown
}

export interface SavedState {
  entries: SavedMapping[]
  unreadable: UnreadableEntry[]
}

export function stateFile (): string {
  const override = process.env.NATMAPPER_STATE_FILE
  if (override !== undefined && override !== '') return override
  const base = process.platform === 'win32'
    ? process.env.LOCALAPPDATA ?? join(homedir(), 'AppData', 'Local')
    : process.env.XDG_STATE_HOME ?? join(homedir(), '.local', 'state')
  return join(base, 'natmapper', 'mappings.json')
}

export function familyOfRecord (record: Pick<SavedMapping, 'family'>): AddressFamily {
  return record.family === 6 ? 6 : 4
}

/** Why `value` is no record natmapper can use, or undefined when it is one. */
export function recordProblem (value: unknown): string | undefined {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return 'not an object'
  const r = value as Record<string, unknown>
  if (typeof r.gateway !== 'string' || r.gateway === '') return 'no gateway'
  if (typeof r.method !== 'string') return 'no method'
  if (r.protocol !== 'tcp' && r.protocol !== 'udp') return `protocol ${JSON.stringify(r.protocol)}`
  for (const key of ['internalPort', 'externalPort'] as const) {
    const port = r[key]
    if (typeof port !== 'number' || !Number.isInteger(port) || port < 0 || port > 65535) return `${key} ${JSON.stringify(port)}`
  }
  if (r.expiresAt !== null && typeof r.expiresAt !== 'number') return `expiresAt ${JSON.stringify(r.expiresAt)}`
  if (r.family !== undefined && r.family !== 4 && r.family !== 6) return `family ${JSON.stringify(r.family)}`
  if (r.controlURL !== undefined && typeof r.controlURL !== 'string') return 'controlURL not a string'
  if (r.uniqueId !== undefined && typeof r.uniqueId !== 'number') return 'uniqueId not a number'
  if (r.mapping === null || typeof r.mapping !== 'object') return 'no mapping'
  return undefined
}

/**
 * The file's records that have not expired, and the entries that could not be read. A file
 * that is not a JSON list at all is one unreadable entry (index -1), kept by the next write.
 */
export async function loadState (nowMs = Date.now()): Promise<SavedState> {
  const fs = requireBuiltin<typeof import('node:fs')>('node:fs')
  let text: string
  try {
    // Synchronously: a small file, read once by a short-lived command; the promise API's thread
    // pool cost `map --once` more than the read.
    text = fs.readFileSync(stateFile(), 'utf8')
  } catch {
    return { entries: [], unreadable: [] }
  }
  let list: unknown
  try {
    list = JSON.parse(text)
  } catch (err) {
    return { entries: [], unreadable: [{ index: -1, reason: `the file is not JSON (${(err as Error).message})`, raw: text }] }
  }
  if (!Array.isArray(list)) return { entries: [], unreadable: [{ index: -1, reason: 'the file is not a JSON list', raw: text }] }
  const entries: SavedMapping[] = []
  const unreadable: UnreadableEntry[] = []
  list.forEach((value: unknown, index) => {
    const problem = recordProblem(value)
    if (problem !== undefined) unreadable.push({ index, reason: problem, raw: value })
    else if ((value as SavedMapping).expiresAt === null || (value as SavedMapping).expiresAt! > nowMs) entries.push(value as SavedMapping)
  })
  return { entries, unreadable }
}

/** The IPv4 records: `list` and `unmap` do not handle pinholes yet, and must not send them to an IPv4 gateway. */
export async function loadSaved (nowMs = Date.now()): Promise<SavedMapping[]> {
  return (await loadState(nowMs)).entries.filter((r) => familyOfRecord(r) === 4)
}

/** "2 entries of the state file could not be read: ..." for people, or undefined when all could. */
export function unreadableLine (unreadable: readonly UnreadableEntry[]): string | undefined {
  if (unreadable.length === 0) return undefined
  const where = unreadable.map((u) => u.index === -1 ? u.reason : `entry ${u.index} (${u.reason})`).join('; ')
  return `${unreadable.length} entr${unreadable.length === 1 ? 'y' : 'ies'} of the state file ${stateFile()} could not be read and ${unreadable.length === 1 ? 'is' : 'are'} kept as ${unreadable.length === 1 ? 'it is' : 'they are'}: ${where}`
}

/** Writes `list`, with the unreadable entries as they were (a whole unreadable file is set aside next to it first). */
export async function saveAll (list: SavedMapping[], unreadable: readonly UnreadableEntry[] = []): Promise<void> {
  const fs = requireBuiltin<typeof import('node:fs')>('node:fs')
  const file = stateFile()
  fs.mkdirSync(dirname(file), { recursive: true })
  const whole = unreadable.find((u) => u.index === -1)
  // Nobody's records are thrown away: a file natmapper cannot parse may still hold a nonce someone needs.
  if (whole !== undefined) fs.writeFileSync(`${file}.unreadable-${Date.now()}`, String(whole.raw), { mode: 0o600 })
  const kept = unreadable.filter((u) => u.index !== -1).map((u) => u.raw)
  const temporary = `${file}.${process.pid}.tmp`
  fs.writeFileSync(temporary, `${JSON.stringify([...list, ...kept], null, 2)}\n`, { mode: 0o600 })
  fs.renameSync(temporary, file)
}

export type RecordKey = Pick<SavedMapping, 'gateway' | 'protocol' | 'internalPort'> & { family?: AddressFamily | undefined }

/** Same family, gateway, protocol and internal port: the key a router knows a mapping by. */
export function sameMapping (a: RecordKey, b: RecordKey): boolean {
  return familyOfRecord(a) === familyOfRecord(b) && a.gateway === b.gateway && a.protocol === b.protocol && a.internalPort === b.internalPort
}

/** Where a pinhole was made, beyond the gateway's address: what a later delete needs. */
export interface PinholeContext { controlURL?: string | undefined }

/** The record of `mapping`, made on the gateway at `gateway` (family 6: a pinhole). */
export function recordOf (gateway: string, mapping: PortMapping, family: AddressFamily = 4, context: PinholeContext = {}): SavedMapping {
  const json = mappingToJSON(mapping, systemClock.now())
  const uniqueId = (mapping.session as { uniqueId?: unknown } | undefined)?.uniqueId
  return {
    ...(family === 6 ? { family: 6 as const } : {}),
    gateway,
    method: mapping.method,
    protocol: mapping.protocol,
    internalPort: mapping.internalPort,
    externalPort: mapping.externalPort,
    ...(mapping.externalAddress === undefined ? {} : { externalAddress: mapping.externalAddress }),
    ...(family === 6 && context.controlURL !== undefined ? { controlURL: context.controlURL } : {}),
    ...(mapping.method === 'upnp-pinhole' && typeof uniqueId === 'number' ? { uniqueId } : {}),
    expiresAt: (json as { expiresAtMs: number | null }).expiresAtMs,
    mapping: json
  }
}

/** Records these, in place of any earlier record of the same ports. */
export async function rememberRecords (records: SavedMapping[]): Promise<void> {
  if (records.length === 0) return
  const { entries, unreadable } = await loadState()
  const kept = entries.filter((s) => !records.some((r) => sameMapping(s, r)))
  await saveAll([...kept, ...records], unreadable)
}

/** Records these mappings (NAT mappings of `gateway`), in place of any earlier record of the same ports. */
export async function remember (gateway: string, mappings: PortMapping[]): Promise<void> {
  await rememberRecords(mappings.map((m) => recordOf(gateway, m)))
}

/** Drops the records with these keys. */
export async function forgetRecords (keys: readonly RecordKey[]): Promise<void> {
  if (keys.length === 0) return
  const { entries, unreadable } = await loadState()
  const kept = entries.filter((s) => !keys.some((k) => sameMapping(s, k)))
  if (kept.length !== entries.length) await saveAll(kept, unreadable)
}

/** Drops the records of these ports of the IPv4 gateway. */
export async function forget (gateway: string, keys: Array<Pick<SavedMapping, 'protocol' | 'internalPort'>>): Promise<void> {
  await forgetRecords(keys.map((k) => ({ gateway, protocol: k.protocol, internalPort: k.internalPort })))
}
