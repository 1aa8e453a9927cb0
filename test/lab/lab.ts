/**
 * The real-router lab: miniupnpd (UPnP IGD + NAT-PMP + PCP) inside Linux network namespaces.
 *
 * Topology (one set per lab, with a unique prefix `nm` + 5 base36 characters, e.g. `nmk3x9q`):
 *
 *     <p>-lan                 <p>-gw (miniupnpd)                 <p>-wan
 *     192.168.77.2/24 ── <p>-l0 ═ <p>-l1 ── 192.168.77.1/24
 *                             11.0.0.1/24 ── <p>-w0 ═ <p>-w1 ── 11.0.0.2/24
 *
 * The lan host routes everything via the gateway (so SSDP multicast and gateway:5351 work), the gateway
 * forwards and masquerades towards wan, and miniupnpd DNATs mapped ports from its WAN side to lan. The WAN
 * side uses a public-looking address in 11.0.0.0/8 because miniupnpd 2.3.1 refuses to map behind a reserved
 * one; `reservedExternalAddress` gives it 100.64.0.1 instead, which is what a double NAT (CGNAT) looks like.
 * The veth pairs are created directly inside the namespaces: nothing is linked to the host's network, so no
 * packet sent in the lab leaves the machine.
 *
 * Usage (run as root, see `labPreflight` for what else is needed):
 *
 *     await requireLab()
 *     await withLab({ natpmp: true }, async (lab) => {
 *       const r = await lab.exec('lan', 'natpmpc', ['-g', lab.gatewayLanAddress, '-a', '7001', '7001', 'tcp', '60'])
 *       const listener = await lab.listen('lan', 7001)
 *       assert.equal(await lab.connect('wan', lab.externalAddress, 7001), listener.token)
 *     })
 *
 * Cleanup: `close()` kills every process the lab started and deletes its namespaces (and with them the veths).
 * Each lab writes `/tmp/natmapper-lab/<prefix>.owner.json` (owner pid and its start time) before it creates
 * anything; every `startLab` first deletes the namespaces, processes and files of labs whose owner is gone, so
 * a crashed or killed run is cleaned by the next one. A process `exit` handler also cleans synchronously.
 *
 * Facts about miniupnpd 2.3.1 (Debian's miniupnpd-nftables) this relies on:
 * - It needs a non-reserved WAN address, else it logs "Reserved / private IP address ... Port forwarding is
 *   impossible" and refuses every mapping (NAT-PMP answers NETWORK_FAILURE, UPnP returns an empty address).
 * - Its nftables chains must exist before it starts and be named in its config (Debian's nft_init.sh is broken;
 *   with the default names it fails with `send_batch failed`). This file creates them.
 * - `-d` keeps it in the foreground and logs one line per request on stderr ("NAT-PMP request received",
 *   "PCP request received", "HTTP REQUEST from", "SSDP M-SEARCH from"), which `countRequests` counts.
 * - Its DNAT rules stay in nftables after it exits (SIGTERM), so a "reboot" flushes the chains by hand.
 * - `enable_natpmp` switches NAT-PMP and PCP together; `http_port=0` picks a new free port at every start.
 * - It also sends every log line to syslog. With no /dev/log (this machine runs no syslog daemon) glibc
 *   falls back to writing the line to /dev/console, which took 2.5–3 ms a line here: a PCP MAP, which logs
 *   several, then took 13–60 ms instead of 2–5, and the lab wrote to the machine's console. A real router
 *   hands the line to its syslog daemon, so the router runs with /dev/null bound over /dev/console, in
 *   the private mount namespace `ip netns exec` gives it; stderr keeps the whole log.
 */
import { spawn as spawnProcess, spawnSync } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import { randomBytes, randomUUID } from 'node:crypto'
import { existsSync, readFileSync, readdirSync, rmSync } from 'node:fs'
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises'
import { delimiter, join } from 'node:path'

/** gw2 and wan2 exist only with `secondRouter`. */
export type LabHost = 'lan' | 'gw' | 'wan' | 'gw2' | 'wan2'
/** The namespaces of a lab: gw2 and wan2 only with `secondRouter`. */
export type LabNamespaces = Readonly<Record<'lan' | 'gw' | 'wan', string> & Partial<Record<'gw2' | 'wan2', string>>>
export type LabProtocol = 'tcp' | 'udp'

export interface LabOptions {
  /**
   * Run miniupnpd on the gateway. Default true. `false` builds the same namespaces, addresses,
   * forwarding and nftables chains but starts no daemon: the test runs its own program in `gw`
   * (test/lab/hostile.test.ts runs a hostile responder there). `startRouter`/`restartRouter`
   * then refuse; `rules()` and everything else work as usual.
   */
  router?: boolean
  /** Serve UPnP IGD (HTTP + SSDP). Default true. */
  upnp?: boolean
  /** Serve NAT-PMP and PCP (one switch in miniupnpd: `enable_natpmp`). Default true. */
  natpmp?: boolean
  /** Serve an IGDv1 description (`force_igd_desc_v1`). Default false (IGDv2). */
  igdV1?: boolean
  /** Give the gateway's WAN side a reserved address (true: 100.64.0.1/24, or the address to use). */
  reservedExternalAddress?: boolean | string
  /** PCP lifetime clamp, seconds (`min_lifetime` / `max_lifetime`). */
  minLifetime?: number
  maxLifetime?: number
  /** UPnP HTTP port. Default 0: miniupnpd picks a free port at every start. */
  httpPort?: number
  /** Clients may only map to their own address. Default true, as in miniupnpd and most routers. */
  secureMode?: boolean
  /** How long miniupnpd may take to say it is listening. Default 5000 ms. */
  startTimeoutMs?: number
  /**
   * IPv6 too (documentation prefix 2001:db8::/32, inside the namespaces only; see LAB_IPV6):
   * forwarding on, miniupnpd's ipv6_listening_ip, the forward chain (an inet table, so it
   * filters IPv6 as well: inbound new connections dropped unless a pinhole lets them in) and
   * masquerade for IPv4 only. Default false.
   */
  ipv6?: boolean
  /**
   * A second router on a second interface of lan (a host on two networks):
   *
   *     <p>-lan <p>-l2 192.168.78.2/24 ══ <p>-m1 192.168.78.1/24  <p>-gw2 (miniupnpd)
   *                                       <p>-m0 11.0.1.1/24 ══ <p>-n1 11.0.1.2/24  <p>-wan2
   *
   * lan gets a second default route, via 192.168.78.1 on <p>-l2 with metric 100 (the first has
   * metric 0, so the system's default stays the first router), and what leaves from 192.168.78.2
   * goes by the second router (a source rule), as a host on two networks must have it for
   * connections to its mapped ports to work. miniupnpd runs there with UPnP,
   * NAT-PMP and PCP, and the first router's other options but its own addresses; see `second`.
   */
  secondRouter?: boolean
}

/** The second router of a lab built with `secondRouter` (hosts gw2 and wan2). */
export interface SecondRouter {
  readonly interfaces: Readonly<{ lan: string, gwLan: string, gwWan: string, wan: string }>
  readonly lanSubnet: string
  readonly clientAddress: string
  readonly gatewayLanAddress: string
  readonly externalAddress: string
  readonly outsideAddress: string
  routerLog: () => string
  countRequests: () => RequestCounts
  rules: () => Promise<RouterRules>
}

/** The IPv6 addresses of a lab built with `ipv6: true`; lan has two, to show which one a request comes from. */
export const LAB_IPV6 = {
  client: '2001:db8:1::2',
  secondClient: '2001:db8:1::3',
  gatewayLan: '2001:db8:1::1',
  gatewayWan: '2001:db8:2::1',
  outside: '2001:db8:2::2'
} as const

export interface ExecOptions {
  /** Kill the process (SIGKILL) after this long. Default 10000 ms. */
  timeoutMs?: number
  /** Written to stdin, which is then closed. */
  input?: string
  env?: NodeJS.ProcessEnv
  cwd?: string
}

export interface ExecResult {
  stdout: string
  stderr: string
  /** Exit code, or null when the process was killed by a signal (see `timedOut`). */
  code: number | null
  signal: NodeJS.Signals | null
  timedOut: boolean
  durationMs: number
}

export interface SpawnOptions {
  env?: NodeJS.ProcessEnv
  cwd?: string
  /** Give the child a writable stdin (default: ignored). */
  stdin?: boolean
  /**
   * Start the child as the leader of its own process group, so that `process.kill(-child.pid,
   * 'SIGINT')` reaches it and its children together, as Ctrl-C in a terminal does.
   */
  processGroup?: boolean
}

/** One DNAT rule of miniupnpd's `prerouting_miniupnpd` chain: one port mapping. */
export interface DnatRule {
  protocol: LabProtocol | 'unknown'
  externalPort: number
  internalAddress: string
  internalPort: number
  /** Set when the mapping is restricted to one remote host. */
  remoteHost?: string
  line: string
}

export interface RouterRules {
  /** `nft list chain inet miniupnpd prerouting_miniupnpd` in the gateway. */
  text: string
  dnat: DnatRule[]
}

export interface RequestCounts {
  natpmp: number
  pcp: number
  http: number
  ssdp: number
}

export interface LabListener {
  host: LabHost
  port: number
  protocol: LabProtocol | 'both'
  /** What the listener answers to every TCP connection and UDP datagram. */
  token: string
  /** `tcp 11.0.0.2:40000` / `udp ...`: who reached it so far. */
  peers: string[]
  close: () => Promise<void>
}

export interface ConnectOptions {
  protocol?: LabProtocol
  timeoutMs?: number
}

export interface Lab {
  readonly prefix: string
  readonly namespaces: LabNamespaces
  readonly interfaces: Readonly<{ lan: string, gwLan: string, gwWan: string, wan: string }>
  readonly lanSubnet: string
  readonly clientAddress: string
  readonly gatewayLanAddress: string
  readonly gatewayWanAddress: string
  /** The address mappings are reachable at from wan (the gateway's WAN address). */
  readonly externalAddress: string
  readonly outsideAddress: string
  /** The HTTP port miniupnpd listens on now (undefined when UPnP is off or the router is stopped). */
  readonly httpPort: number | undefined
  /** `http://<gateway>:<httpPort>/rootDesc.xml` (undefined when UPnP is off or the router is stopped). */
  readonly descriptionUrl: string | undefined
  readonly options: Readonly<LabOptions>
  /** The second router, with `secondRouter`; undefined otherwise. */
  readonly second: SecondRouter | undefined
  /** Runs `ip netns exec <ns> cmd ...args` and collects its output; never throws for a non-zero exit. */
  exec: (host: LabHost, cmd: string, args?: string[], options?: ExecOptions) => Promise<ExecResult>
  /** Starts `ip netns exec <ns> cmd ...args` (ip execs cmd, so signals sent to the child reach cmd itself). */
  spawn: (host: LabHost, cmd: string, args?: string[], options?: SpawnOptions) => ChildProcess
  /** miniupnpd's stderr since the lab started, across restarts. */
  routerLog: () => string
  /** Requests miniupnpd logged in `log` (default: the whole log). Slice `routerLog()` to count a window. */
  countRequests: (log?: string) => RequestCounts
  /** Waits until the router log, from character `from`, matches `pattern`; returns the match. */
  waitForLog: (pattern: RegExp, options?: { from?: number, timeoutMs?: number }) => Promise<RegExpMatchArray>
  rules: () => Promise<RouterRules>
  /** Stops miniupnpd; by default also flushes its chains as a power cycle would. */
  stopRouter: (options?: { flush?: boolean }) => Promise<void>
  startRouter: (options?: { httpPort?: number }) => Promise<void>
  /** A reboot: stop, flush the three miniupnpd chains, start again (optionally on another HTTP port). */
  restartRouter: (options?: { httpPort?: number }) => Promise<void>
  /** A listener in `host` answering `token` on TCP and/or UDP `port`. */
  listen: (host: LabHost, port: number, protocol?: LabProtocol | 'both') => Promise<LabListener>
  /** Connects from `fromHost` and returns what the peer answered (trimmed); rejects on refusal or timeout. */
  connect: (fromHost: LabHost, address: string, port: number, options?: ConnectOptions) => Promise<string>
  /** Kills everything the lab started and deletes its namespaces. Idempotent. */
  close: () => Promise<void>
}

const LAB_ROOT = '/tmp/natmapper-lab'
const PREFIX_PATTERN = /^(nm[0-9a-z]{5})-(lan|gw|wan|gw2|wan2|probe)$/
const OWNER_SUFFIX = '.owner.json'
const SBIN_DIRS = ['/usr/local/sbin', '/usr/sbin', '/sbin']
const TOOLS = ['ip', 'nft', 'sysctl', 'mount', 'miniupnpd', 'upnpc', 'natpmpc']
const NFT_CHAINS = ['prerouting_miniupnpd', 'postrouting_miniupnpd', 'miniupnpd']

const LAN = { subnet: '192.168.77.0/24', client: '192.168.77.2', gateway: '192.168.77.1' }
const PUBLIC_WAN = { gateway: '11.0.0.1', outside: '11.0.0.2' }
const RESERVED_WAN = { gateway: '100.64.0.1', outside: '100.64.0.2' }
const SECOND = { subnet: '192.168.78.0/24', client: '192.168.78.2', gateway: '192.168.78.1', wanGateway: '11.0.1.1', outside: '11.0.1.2' }

const toolEnv: NodeJS.ProcessEnv = {
  ...process.env,
  PATH: [...(process.env.PATH ?? '/usr/bin:/bin').split(delimiter), ...SBIN_DIRS].join(delimiter)
}

// ---------------------------------------------------------------------------------------------------------
// Processes

interface Running {
  child: ChildProcess
  exited: Promise<void>
}

function track (child: ChildProcess): Running {
  const exited = new Promise<void>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve()
    child.once('exit', () => resolve())
    child.once('error', () => resolve())
  })
  return { child, exited }
}

function run (cmd: string, args: string[], options: ExecOptions = {}, onSpawn?: (r: Running) => void): Promise<ExecResult> {
  const started = performance.now()
  return new Promise((resolve) => {
    const child = spawnProcess(cmd, args, {
      env: options.env ?? toolEnv,
      cwd: options.cwd,
      stdio: ['pipe', 'pipe', 'pipe']
    })
    onSpawn?.(track(child))
    let stdout = ''
    let stderr = ''
    let timedOut = false
    child.stdout.setEncoding('utf8').on('data', (d: string) => { stdout += d })
    child.stderr.setEncoding('utf8').on('data', (d: string) => { stderr += d })
    child.stdin.on('error', () => {})
    child.stdin.end(options.input ?? '')
    const timer = setTimeout(() => {
      timedOut = true
      child.kill('SIGKILL')
    }, options.timeoutMs ?? 10_000)
    const finish = (code: number | null, signal: NodeJS.Signals | null, extra = ''): void => {
      clearTimeout(timer)
      resolve({ stdout, stderr: stderr + extra, code, signal, timedOut, durationMs: performance.now() - started })
    }
    child.once('error', (err) => finish(127, null, String(err)))
    child.once('close', (code, signal) => finish(code, signal))
  })
}

async function must (cmd: string, args: string[], options?: ExecOptions): Promise<string> {
  const r = await run(cmd, args, options)
  if (r.code !== 0) {
    throw new Error(`lab: \`${cmd} ${args.join(' ')}\` failed (${r.timedOut ? 'timed out' : `code ${String(r.code)}`}): ${r.stderr.trim()}`)
  }
  return r.stdout
}

async function waitFor<T> (probe: () => T | undefined | false, timeoutMs: number, what: string | (() => string)): Promise<T> {
  const deadline = performance.now() + timeoutMs
  for (;;) {
    const value = probe()
    if (value !== undefined && value !== false) return value
    if (performance.now() > deadline) {
      throw new Error(`lab: timed out after ${timeoutMs} ms waiting for ${typeof what === 'string' ? what : what()}`)
    }
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
}

async function stopProcess (r: Running, graceMs = 2000): Promise<void> {
  if (r.child.exitCode !== null || r.child.signalCode !== null) return
  r.child.kill('SIGTERM')
  const timer = setTimeout(() => r.child.kill('SIGKILL'), graceMs)
  await r.exited
  clearTimeout(timer)
}

// ---------------------------------------------------------------------------------------------------------
// Preconditions

function findTool (name: string): string | undefined {
  for (const dir of (toolEnv.PATH ?? '').split(delimiter)) {
    if (dir !== '' && existsSync(join(dir, name))) return join(dir, name)
  }
  return undefined
}

let preflight: Promise<string[]> | undefined

/** Why the lab cannot run here; empty when it can. Probes namespace and nftables support once per process. */
export function labPreflight (): Promise<string[]> {
  preflight ??= (async () => {
    const reasons: string[] = []
    if (process.platform !== 'linux') reasons.push(`not Linux (platform ${process.platform})`)
    if (process.getuid?.() !== 0) reasons.push('not running as root (network namespaces and nftables need root)')
    const missing = TOOLS.filter((t) => findTool(t) === undefined)
    if (missing.length > 0) {
      reasons.push(`missing commands: ${missing.join(', ')} ` +
        '(Debian/Ubuntu packages: iproute2 nftables procps mount miniupnpd-nftables miniupnpc natpmpc)')
    }
    if (reasons.length > 0) return reasons
    // Probe: can we create a namespace and a nat chain in it?
    const prefix = newPrefix()
    const ns = `${prefix}-probe`
    try {
      await claimPrefix(prefix)
      await must('ip', ['netns', 'add', ns])
      await must('ip', ['netns', 'exec', ns, 'nft', '-f', '-'], {
        input: 'table inet probe {\n  chain p {\n    type nat hook prerouting priority -100;\n  }\n}\n'
      })
    } catch (err) {
      reasons.push(`network namespaces or nftables not permitted: ${(err as Error).message}`)
    } finally {
      await run('ip', ['netns', 'del', ns])
      await releasePrefix(prefix)
    }
    return reasons
  })()
  return preflight
}

/**
 * The guard every lab test file calls first. The lab never skips: when it cannot run, the test fails and says
 * why (in CI and elsewhere alike), so a green run always means miniupnpd was really exercised.
 */
export async function requireLab (t?: { diagnostic: (message: string) => void }): Promise<void> {
  const reasons = await labPreflight()
  if (reasons.length === 0) return
  const list = reasons.map((r) => `  - ${r}`).join('\n')
  const message = process.env.CI === 'true'
    ? `the real-router lab cannot run in CI; the CI job must provide it:\n${list}`
    : `the real-router lab cannot run here:\n${list}\n` +
      'Run `npm run test:lab` as root on Linux with the packages iproute2 nftables miniupnpd-nftables ' +
      'miniupnpc natpmpc installed (apt-get install -y ...). Lab tests never skip.'
  t?.diagnostic(message)
  throw new Error(message)
}

// ---------------------------------------------------------------------------------------------------------
// Ownership and cleanup of leftovers

function newPrefix (): string {
  let s = ''
  for (const b of randomBytes(5)) s += (b % 36).toString(36)
  return `nm${s}`
}

function processStartTime (pid: number | 'self'): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19]
  } catch {
    return undefined
  }
}

async function claimPrefix (prefix: string): Promise<void> {
  await mkdir(LAB_ROOT, { recursive: true })
  const file = join(LAB_ROOT, prefix + OWNER_SUFFIX)
  const owner = { pid: process.pid, startTime: processStartTime('self'), created: new Date().toISOString() }
  await writeFile(file + '.tmp', JSON.stringify(owner) + '\n')
  await rename(file + '.tmp', file)
}

async function releasePrefix (prefix: string): Promise<void> {
  await rm(join(LAB_ROOT, prefix), { recursive: true, force: true })
  await rm(join(LAB_ROOT, prefix + OWNER_SUFFIX), { force: true })
}

async function ownerAlive (prefix: string): Promise<boolean> {
  let owner: { pid?: unknown, startTime?: unknown }
  try {
    owner = JSON.parse(await readFile(join(LAB_ROOT, prefix + OWNER_SUFFIX), 'utf8')) as typeof owner
  } catch {
    return false
  }
  if (typeof owner.pid !== 'number') return false
  const startTime = processStartTime(owner.pid)
  return startTime !== undefined && startTime === owner.startTime
}

function namespacePids (ns: string): number[] {
  const r = spawnSync('ip', ['netns', 'pids', ns], { env: toolEnv, encoding: 'utf8' })
  return (r.stdout ?? '').split(/\s+/).filter((s) => /^\d+$/.test(s)).map(Number)
}

/** Deletes namespaces, processes and files of labs whose owning process is gone. */
export async function cleanStaleLabs (): Promise<string[]> {
  const listed = (await run('ip', ['netns', 'list'])).stdout.split('\n').map((l) => l.split(' ')[0] ?? '')
  const namespaces = listed.filter((n) => PREFIX_PATTERN.test(n))
  const prefixes = new Set(namespaces.map((n) => n.slice(0, 7)))
  let entries: string[] = []
  try { entries = readdirSync(LAB_ROOT) } catch {}
  for (const e of entries) {
    const m = /^(nm[0-9a-z]{5})/.exec(e)
    if (m?.[1] !== undefined) prefixes.add(m[1])
  }
  const cleaned: string[] = []
  for (const prefix of prefixes) {
    if (await ownerAlive(prefix)) continue
    for (const ns of namespaces.filter((n) => n.startsWith(prefix + '-'))) {
      // Processes a crashed lab left in its own namespaces (miniupnpd, listeners, a CLI under test).
      for (const pid of namespacePids(ns)) {
        try { process.kill(pid, 'SIGKILL') } catch {}
      }
      await run('ip', ['netns', 'del', ns])
    }
    await releasePrefix(prefix)
    cleaned.push(prefix)
  }
  return cleaned
}

const openLabs = new Set<LabImpl>()
let exitHookInstalled = false

function installExitHook (): void {
  if (exitHookInstalled) return
  exitHookInstalled = true
  process.once('exit', () => {
    for (const lab of openLabs) lab.closeSync()
  })
}

// ---------------------------------------------------------------------------------------------------------
// Scripts run with `node -e` inside the namespaces (CommonJS; arguments after the script are argv[1..]).

const LISTENER_SCRIPT = `
const net = require('node:net'), dgram = require('node:dgram')
const [port, proto, token] = process.argv.slice(1)
let pending = 0
const ready = () => { if (--pending === 0) process.stdout.write('ready\\n') }
if (proto !== 'udp') {
  pending++
  net.createServer((s) => {
    process.stdout.write('tcp ' + s.remoteAddress + ':' + s.remotePort + '\\n')
    s.on('error', () => {})
    s.end(token + '\\n')
  }).listen(Number(port), '0.0.0.0', ready)
}
if (proto !== 'tcp') {
  pending++
  const u = dgram.createSocket('udp4')
  u.on('message', (m, r) => {
    process.stdout.write('udp ' + r.address + ':' + r.port + '\\n')
    u.send(token + '\\n', r.port, r.address)
  })
  u.bind(Number(port), '0.0.0.0', ready)
}
`

const CONNECT_SCRIPT = `
const net = require('node:net'), dgram = require('node:dgram')
const [address, port, proto, timeoutMs] = process.argv.slice(1)
const fail = (why) => { process.stderr.write(why); process.exit(2) }
setTimeout(() => fail('ETIMEDOUT'), Number(timeoutMs))
if (proto === 'tcp') {
  let data = ''
  const s = net.connect(Number(port), address)
  s.setEncoding('utf8')
  s.on('data', (d) => { data += d })
  s.on('end', () => { process.stdout.write(data); process.exit(0) })
  s.on('error', (e) => fail(e.code || e.message))
} else {
  const u = dgram.createSocket('udp4')
  u.on('message', (m) => { process.stdout.write(m); process.exit(0) })
  u.on('error', (e) => fail(e.code || e.message))
  const send = () => u.send('natmapper-lab?', Number(port), address)
  send()
  setInterval(send, 200)
}
`

// ---------------------------------------------------------------------------------------------------------
// The lab

function parseRules (text: string): DnatRule[] {
  const rules: DnatRule[] = []
  for (const raw of text.split('\n')) {
    const line = raw.trim()
    const to = /\bdnat (?:ip )?to ([\d.]+):(\d+)/.exec(line)
    const dport = /\bdport (\d+)/.exec(line)
    if (to === null || dport === null) continue
    // miniupnpd 2.3.1 matches the protocol as a raw IPv4 header byte: `@nh,72,8 0x6` (TCP) / `0x11` (UDP).
    const raw8 = /@nh,72,8 0x([0-9a-f]+)\b/.exec(line)?.[1]
    const named = /\b(?:l4proto|protocol) (tcp|udp)\b/.exec(line)?.[1] ?? /\b(tcp|udp) dport\b/.exec(line)?.[1]
    const protocol = raw8 === '6' ? 'tcp' : raw8 === '11' ? 'udp' : named === 'tcp' || named === 'udp' ? named : 'unknown'
    const remote = /\bip saddr ([\d.]+)/.exec(line)?.[1]
    rules.push({
      protocol,
      externalPort: Number(dport[1]),
      internalAddress: to[1] ?? '',
      internalPort: Number(to[2]),
      ...(remote !== undefined ? { remoteHost: remote } : {}),
      line
    })
  }
  return rules
}

function countIn (log: string, pattern: RegExp): number {
  return log.match(pattern)?.length ?? 0
}

class LabImpl implements Lab {
  readonly prefix: string
  readonly namespaces: LabNamespaces
  readonly interfaces: Readonly<{ lan: string, gwLan: string, gwWan: string, wan: string }>
  readonly lanSubnet = LAN.subnet
  readonly clientAddress = LAN.client
  readonly gatewayLanAddress = LAN.gateway
  readonly gatewayWanAddress: string
  readonly externalAddress: string
  readonly outsideAddress: string
  readonly options: Readonly<LabOptions>
  readonly second: SecondRouter | undefined
  readonly dir: string
  httpPort: number | undefined
  private readonly running = new Set<Running>()
  private router: Running | undefined
  private log = ''
  private configuredHttpPort: number
  private readonly uuid = randomUUID()
  private created = false
  private closing: Promise<void> | undefined
  private secondLog = ''

  constructor (prefix: string, options: LabOptions) {
    this.prefix = prefix
    this.options = { ...options }
    this.namespaces = options.secondRouter === true
      ? { lan: `${prefix}-lan`, gw: `${prefix}-gw`, wan: `${prefix}-wan`, gw2: `${prefix}-gw2`, wan2: `${prefix}-wan2` }
      : { lan: `${prefix}-lan`, gw: `${prefix}-gw`, wan: `${prefix}-wan` }
    this.interfaces = { lan: `${prefix}-l0`, gwLan: `${prefix}-l1`, gwWan: `${prefix}-w0`, wan: `${prefix}-w1` }
    const reserved = options.reservedExternalAddress
    if (typeof reserved === 'string') {
      const octets = reserved.split('.')
      octets[3] = octets[3] === '2' ? '1' : '2'
      this.gatewayWanAddress = reserved
      this.outsideAddress = octets.join('.')
    } else {
      const wan = reserved === true ? RESERVED_WAN : PUBLIC_WAN
      this.gatewayWanAddress = wan.gateway
      this.outsideAddress = wan.outside
    }
    this.externalAddress = this.gatewayWanAddress
    this.configuredHttpPort = options.httpPort ?? 0
    this.dir = join(LAB_ROOT, prefix)
    this.second = options.secondRouter === true
      ? {
          interfaces: { lan: `${prefix}-l2`, gwLan: `${prefix}-m1`, gwWan: `${prefix}-m0`, wan: `${prefix}-n1` },
          lanSubnet: SECOND.subnet,
          clientAddress: SECOND.client,
          gatewayLanAddress: SECOND.gateway,
          externalAddress: SECOND.wanGateway,
          outsideAddress: SECOND.outside,
          routerLog: () => this.secondLog,
          countRequests: () => this.countRequests(this.secondLog),
          rules: async () => await this.rulesIn('gw2')
        }
      : undefined
  }

  get descriptionUrl (): string | undefined {
    return this.httpPort === undefined ? undefined : `http://${this.gatewayLanAddress}:${this.httpPort}/rootDesc.xml`
  }

  async setUp (): Promise<void> {
    const { lan, gw, wan } = this.namespaces
    const i = this.interfaces
    await mkdir(this.dir, { recursive: true })
    this.created = true
    for (const ns of [lan, gw, wan]) {
      await must('ip', ['netns', 'add', ns])
      await must('ip', ['-n', ns, 'link', 'set', 'lo', 'up'])
    }
    // Each pair is born inside the namespaces: no end ever exists in the host's namespace.
    await must('ip', ['-n', lan, 'link', 'add', i.lan, 'type', 'veth', 'peer', 'name', i.gwLan, 'netns', gw])
    await must('ip', ['-n', gw, 'link', 'add', i.gwWan, 'type', 'veth', 'peer', 'name', i.wan, 'netns', wan])
    const batch = async (ns: string, lines: string[]): Promise<void> => {
      await must('ip', ['-n', ns, '-batch', '-'], { input: lines.join('\n') + '\n' })
    }
    await batch(lan, [
      `addr add ${this.clientAddress}/24 dev ${i.lan}`,
      `link set ${i.lan} up`,
      `route add default via ${this.gatewayLanAddress}`
    ])
    await batch(gw, [
      `addr add ${this.gatewayLanAddress}/24 dev ${i.gwLan}`,
      `link set ${i.gwLan} up`,
      `addr add ${this.gatewayWanAddress}/24 dev ${i.gwWan}`,
      `link set ${i.gwWan} up`,
      `route add default via ${this.outsideAddress}`
    ])
    await batch(wan, [
      `addr add ${this.outsideAddress}/24 dev ${i.wan}`,
      `link set ${i.wan} up`
    ])
    await must('ip', ['netns', 'exec', gw, 'sysctl', '-qw', 'net.ipv4.ip_forward=1'])
    if (this.options.ipv6 === true) await this.setUpIpv6()
    // Each run of a client in a test or benchmark is a first contact, as on a home network. The
    // kernel's ICMP rate limit (one error a second per host after a burst of six) would otherwise
    // turn "port unreachable" into silence after a few runs in a row from the same lan host.
    await must('ip', ['netns', 'exec', gw, 'sysctl', '-qw', 'net.ipv4.icmp_ratelimit=0'])
    // The layout LAB.md describes; miniupnpd only adds rules to the three empty chains.
    await must('ip', ['netns', 'exec', gw, 'nft', '-f', '-'], {
      input: `table inet miniupnpd {
  chain forward {
    type filter hook forward priority 0; policy drop;
    ct state established,related accept
    iifname "${i.gwLan}" accept
    jump miniupnpd
  }
  chain miniupnpd {
  }
  chain prerouting {
    type nat hook prerouting priority -100; policy accept;
    jump prerouting_miniupnpd
  }
  chain postrouting {
    type nat hook postrouting priority 100; policy accept;
    jump postrouting_miniupnpd
    oifname "${i.gwWan}"${this.options.ipv6 === true ? ' meta nfproto ipv4' : ''} masquerade
  }
  chain prerouting_miniupnpd {
  }
  chain postrouting_miniupnpd {
  }
}
`
    })
    if (this.options.router !== false) await this.startRouter()
    if (this.second !== undefined) await this.setUpSecond(this.second)
  }

  /** The second router's namespaces, links and routes, and its miniupnpd (see LabOptions.secondRouter). */
  private async setUpSecond (second: SecondRouter): Promise<void> {
    const { lan } = this.namespaces
    const gw2 = this.namespace('gw2')
    const wan2 = this.namespace('wan2')
    const i = second.interfaces
    for (const ns of [gw2, wan2]) {
      await must('ip', ['netns', 'add', ns])
      await must('ip', ['-n', ns, 'link', 'set', 'lo', 'up'])
    }
    await must('ip', ['-n', lan, 'link', 'add', i.lan, 'type', 'veth', 'peer', 'name', i.gwLan, 'netns', gw2])
    await must('ip', ['-n', gw2, 'link', 'add', i.gwWan, 'type', 'veth', 'peer', 'name', i.wan, 'netns', wan2])
    const lines: Array<[string, string[]]> = [
      // Replies from the second address leave by the second router (source routing, table 78), or a
      // connection from its WAN would be answered through the first router and never complete.
      [lan, [`addr add ${second.clientAddress}/24 dev ${i.lan}`, `link set ${i.lan} up`, `route add default via ${second.gatewayLanAddress} dev ${i.lan} metric 100`,
        `route add default via ${second.gatewayLanAddress} dev ${i.lan} table 78`, `rule add from ${second.clientAddress} table 78`]],
      [gw2, [`addr add ${second.gatewayLanAddress}/24 dev ${i.gwLan}`, `link set ${i.gwLan} up`, `addr add ${second.externalAddress}/24 dev ${i.gwWan}`, `link set ${i.gwWan} up`, `route add default via ${second.outsideAddress}`]],
      [wan2, [`addr add ${second.outsideAddress}/24 dev ${i.wan}`, `link set ${i.wan} up`]]
    ]
    for (const [ns, batch] of lines) await must('ip', ['-n', ns, '-batch', '-'], { input: batch.join('\n') + '\n' })
    for (const setting of ['net.ipv4.ip_forward=1', 'net.ipv4.icmp_ratelimit=0']) await must('ip', ['netns', 'exec', gw2, 'sysctl', '-qw', setting])
    // The first router's layout with this router's interface names: one layout for both.
    const layout = (await must('ip', ['netns', 'exec', this.namespaces.gw, 'nft', 'list', 'table', 'inet', 'miniupnpd']))
      .replaceAll(`"${this.interfaces.gwLan}"`, `"${i.gwLan}"`).replaceAll(`"${this.interfaces.gwWan}"`, `"${i.gwWan}"`)
    await must('ip', ['netns', 'exec', gw2, 'nft', '-f', '-'], { input: layout })
    const configFile = join(this.dir, 'miniupnpd2.conf')
    await writeFile(configFile, this.config({ gwLan: i.gwLan, gwWan: i.gwWan, lanSubnet: second.lanSubnet, uuid: randomUUID(), httpPort: 0, upnp: true, natpmp: true }))
    const router = this.start('gw2', 'sh', ['-c', 'mount --bind /dev/null /dev/console && exec miniupnpd "$@"', 'sh', '-f', configFile, '-d', '-P', join(this.dir, 'miniupnpd2.pid')])
    const append = (d: string): void => { this.secondLog += d }
    router.child.stdout?.setEncoding('utf8').on('data', append)
    router.child.stderr?.setEncoding('utf8').on('data', append)
    let exited = false
    void router.exited.then(() => { exited = true })
    await waitFor(() => {
      if (exited) throw new Error(`lab: the second miniupnpd exited at start:\n${this.secondLog}`)
      return /HTTP listening on port \d+/.test(this.secondLog) && /Listening for NAT-PMP\/PCP traffic/.test(this.secondLog)
    }, this.options.startTimeoutMs ?? 5000, () => `the second miniupnpd to listen; its log:\n${this.secondLog}`)
  }

  /** Addresses (nodad: usable at once), routes and forwarding for `ipv6: true`. */
  private async setUpIpv6 (): Promise<void> {
    const { lan, gw, wan } = this.namespaces
    const i = this.interfaces
    const v6 = LAB_IPV6
    const batch = async (ns: string, lines: string[]): Promise<void> => {
      await must('ip', ['-n', ns, '-batch', '-'], { input: lines.join('\n') + '\n' })
    }
    await batch(lan, [`addr add ${v6.client}/64 dev ${i.lan} nodad`, `addr add ${v6.secondClient}/64 dev ${i.lan} nodad`, `route add ::/0 via ${v6.gatewayLan}`])
    await batch(gw, [`addr add ${v6.gatewayLan}/64 dev ${i.gwLan} nodad`, `addr add ${v6.gatewayWan}/64 dev ${i.gwWan} nodad`, `route add ::/0 via ${v6.outside}`])
    await batch(wan, [`addr add ${v6.outside}/64 dev ${i.wan} nodad`, `route add ::/0 via ${v6.gatewayWan}`])
    await must('ip', ['netns', 'exec', gw, 'sysctl', '-qw', 'net.ipv6.conf.all.forwarding=1'])
  }

  /** miniupnpd's configuration: the first router's unless `side` (the second router's) says otherwise. */
  private config (side?: { gwLan: string, gwWan: string, lanSubnet: string, uuid: string, httpPort: number, upnp: boolean, natpmp: boolean }): string {
    const o = this.options
    const yes = (b: boolean): string => b ? 'yes' : 'no'
    const lines = [
      `ext_ifname=${side?.gwWan ?? this.interfaces.gwWan}`,
      `listening_ip=${side?.gwLan ?? this.interfaces.gwLan}`,
      `http_port=${side?.httpPort ?? this.configuredHttpPort}`,
      `enable_upnp=${yes(side?.upnp ?? o.upnp ?? true)}`,
      `enable_natpmp=${yes(side?.natpmp ?? o.natpmp ?? true)}`,
      `secure_mode=${yes(o.secureMode ?? true)}`,
      `uuid=${side?.uuid ?? this.uuid}`,
      'upnp_table_name=miniupnpd',
      'upnp_nat_table_name=miniupnpd',
      'upnp_forward_chain=miniupnpd',
      'upnp_nat_chain=prerouting_miniupnpd',
      'upnp_nat_postrouting_chain=postrouting_miniupnpd'
    ]
    if (o.igdV1 === true) lines.push('force_igd_desc_v1=yes')
    if (o.ipv6 === true && side === undefined) lines.push(`ipv6_listening_ip=${LAB_IPV6.gatewayLan}`)
    if (o.minLifetime !== undefined) lines.push(`min_lifetime=${o.minLifetime}`)
    if (o.maxLifetime !== undefined) lines.push(`max_lifetime=${o.maxLifetime}`)
    lines.push(`allow 1024-65535 ${side?.lanSubnet ?? this.lanSubnet} 1024-65535`, 'deny 0-65535 0.0.0.0/0 0-65535')
    return lines.join('\n') + '\n'
  }

  async startRouter (options: { httpPort?: number } = {}): Promise<void> {
    if (this.router !== undefined) throw new Error('lab: the router is already running')
    if (this.closing !== undefined) throw new Error('lab: closed')
    if (this.options.router === false) throw new Error('lab: built with router: false; run your own program in gw instead')
    const upnp = this.options.upnp ?? true
    const natpmp = this.options.natpmp ?? true
    if (!upnp && !natpmp) throw new Error('lab: at least one of upnp and natpmp must be on')
    if (options.httpPort !== undefined) this.configuredHttpPort = options.httpPort
    const configFile = join(this.dir, 'miniupnpd.conf')
    await writeFile(configFile, this.config())
    const from = this.log.length
    // `exec`, so that the signals stopRouter sends reach miniupnpd itself (LAB.md).
    const router = this.start('gw', 'sh', ['-c', 'mount --bind /dev/null /dev/console && exec miniupnpd "$@"', 'sh', '-f', configFile, '-d', '-P', join(this.dir, 'miniupnpd.pid')])
    this.router = router
    const append = (d: string): void => { this.log += d }
    router.child.stdout?.setEncoding('utf8').on('data', append)
    router.child.stderr?.setEncoding('utf8').on('data', append)
    let exited = false
    void router.exited.then(() => { exited = true })
    const http = /HTTP listening on port (\d+)/
    const pmp = /Listening for NAT-PMP\/PCP traffic/
    try {
      await waitFor(() => {
        if (exited) throw new Error(`lab: miniupnpd exited at start:\n${this.log.slice(from)}`)
        const tail = this.log.slice(from)
        return (!upnp || http.test(tail)) && (!natpmp || pmp.test(tail))
      }, this.options.startTimeoutMs ?? 5000, () => `miniupnpd to listen; its log:\n${this.log.slice(from)}`)
    } catch (err) {
      await this.stopRouter({ flush: false })
      throw err
    }
    const port = http.exec(this.log.slice(from))?.[1]
    this.httpPort = upnp && port !== undefined ? Number(port) : undefined
  }

  async stopRouter (options: { flush?: boolean } = {}): Promise<void> {
    const router = this.router
    this.router = undefined
    this.httpPort = undefined
    if (router !== undefined) await stopProcess(router)
    if (options.flush ?? true) {
      // miniupnpd leaves its rules in nftables when it exits; a real reboot loses them.
      const input = NFT_CHAINS.map((c) => `flush chain inet miniupnpd ${c}`).join('\n') + '\n'
      await must('ip', ['netns', 'exec', this.namespaces.gw, 'nft', '-f', '-'], { input })
    }
  }

  async restartRouter (options: { httpPort?: number } = {}): Promise<void> {
    await this.stopRouter({ flush: true })
    await this.startRouter(options)
  }

  exec (host: LabHost, cmd: string, args: string[] = [], options: ExecOptions = {}): Promise<ExecResult> {
    if (this.closing !== undefined) return Promise.reject(new Error('lab: closed'))
    return run('ip', ['netns', 'exec', this.namespace(host), cmd, ...args], options, (r) => this.adopt(r))
  }

  spawn (host: LabHost, cmd: string, args: string[] = [], options: SpawnOptions = {}): ChildProcess {
    return this.start(host, cmd, args, options).child
  }

  private start (host: LabHost, cmd: string, args: string[], options: SpawnOptions = {}): Running {
    if (this.closing !== undefined) throw new Error('lab: closed')
    const child = spawnProcess('ip', ['netns', 'exec', this.namespace(host), cmd, ...args], {
      env: options.env ?? toolEnv,
      cwd: options.cwd,
      stdio: [options.stdin === true ? 'pipe' : 'ignore', 'pipe', 'pipe'],
      detached: options.processGroup === true
    })
    const r = track(child)
    this.adopt(r)
    return r
  }

  private namespace (host: LabHost): string {
    const ns = this.namespaces[host]
    if (ns === undefined) throw new Error(`lab: no host ${host} (it needs the secondRouter option)`)
    return ns
  }

  private adopt (r: Running): void {
    this.running.add(r)
    void r.exited.then(() => this.running.delete(r))
  }

  routerLog (): string {
    return this.log
  }

  countRequests (log = this.log): RequestCounts {
    return {
      natpmp: countIn(log, /NAT-PMP request received/g),
      pcp: countIn(log, /PCP request received/g),
      http: countIn(log, /HTTP REQUEST from/g),
      ssdp: countIn(log, /SSDP M-SEARCH from/g)
    }
  }

  async waitForLog (pattern: RegExp, options: { from?: number, timeoutMs?: number } = {}): Promise<RegExpMatchArray> {
    return await waitFor(() => this.log.slice(options.from ?? 0).match(pattern) ?? undefined,
      options.timeoutMs ?? 5000, `${String(pattern)} in the router log`)
  }

  async rules (): Promise<RouterRules> {
    return await this.rulesIn('gw')
  }

  private async rulesIn (host: 'gw' | 'gw2'): Promise<RouterRules> {
    const r = await this.exec(host, 'nft', ['list', 'chain', 'inet', 'miniupnpd', 'prerouting_miniupnpd'])
    if (r.code !== 0) throw new Error(`lab: nft list failed: ${r.stderr}`)
    return { text: r.stdout, dnat: parseRules(r.stdout) }
  }

  async listen (host: LabHost, port: number, protocol: LabProtocol | 'both' = 'tcp'): Promise<LabListener> {
    const token = `natmapper-lab:${host}:${port}:${randomBytes(4).toString('hex')}`
    const running = this.start(host, process.execPath, ['-e', LISTENER_SCRIPT, String(port), protocol, token])
    const child = running.child
    const peers: string[] = []
    let out = ''
    let err = ''
    let ready = false
    let exited = false
    child.stdout?.setEncoding('utf8').on('data', (d: string) => {
      out += d
      const lines = out.split('\n')
      out = lines.pop() ?? ''
      for (const line of lines) {
        if (line === 'ready') ready = true
        else if (line !== '') peers.push(line)
      }
    })
    child.stderr?.setEncoding('utf8').on('data', (d: string) => { err += d })
    child.once('exit', () => { exited = true })
    await waitFor(() => {
      if (exited) throw new Error(`lab: listener on ${host}:${port}/${protocol} exited: ${err}`)
      return ready
    }, 5000, `a listener on ${host}:${port}/${protocol}`)
    return {
      host,
      port,
      protocol,
      token,
      peers,
      close: async () => { await stopProcess(running) }
    }
  }

  async connect (fromHost: LabHost, address: string, port: number, options: ConnectOptions = {}): Promise<string> {
    const timeoutMs = options.timeoutMs ?? 3000
    const protocol = options.protocol ?? 'tcp'
    const r = await this.exec(fromHost, process.execPath,
      ['-e', CONNECT_SCRIPT, address, String(port), protocol, String(timeoutMs)], { timeoutMs: timeoutMs + 5000 })
    if (r.code !== 0) {
      throw new Error(`lab: ${protocol} connect from ${fromHost} to ${address}:${port} failed: ${r.stderr.trim() || `code ${String(r.code)}`}`)
    }
    return r.stdout.trim()
  }

  close (): Promise<void> {
    this.closing ??= this.doClose()
    return this.closing
  }

  private async doClose (): Promise<void> {
    openLabs.delete(this)
    this.router = undefined
    await Promise.all([...this.running].map(async (r) => await stopProcess(r, 1000)))
    if (this.created) {
      for (const ns of Object.values(this.namespaces)) {
        for (const pid of namespacePids(ns)) {
          try { process.kill(pid, 'SIGKILL') } catch {}
        }
      }
      // Deleting a namespace destroys the veth ends in it, and with them their peers.
      await Promise.all(Object.values(this.namespaces).map(async (ns) => await run('ip', ['netns', 'del', ns])))
    }
    await releasePrefix(this.prefix)
  }

  /** Last-resort cleanup from a process `exit` handler (no event loop left). */
  closeSync (): void {
    for (const r of this.running) r.child.kill('SIGKILL')
    for (const ns of Object.values(this.namespaces)) spawnSync('ip', ['netns', 'del', ns], { env: toolEnv, stdio: 'ignore' })
    rmSync(this.dir, { recursive: true, force: true })
    rmSync(join(LAB_ROOT, this.prefix + OWNER_SUFFIX), { force: true })
  }
}

/** Builds a lab (namespaces, veths, nftables, miniupnpd) and waits until miniupnpd listens. */
export async function startLab (options: LabOptions = {}): Promise<Lab> {
  const reasons = await labPreflight()
  if (reasons.length > 0) throw new Error(`the real-router lab cannot run here:\n${reasons.map((r) => `  - ${r}`).join('\n')}`)
  await cleanStaleLabs()
  const prefix = newPrefix()
  await claimPrefix(prefix)
  const lab = new LabImpl(prefix, options)
  openLabs.add(lab)
  installExitHook()
  try {
    await lab.setUp()
  } catch (err) {
    await lab.close()
    throw err
  }
  return lab
}

/** Lines of the router log worth reading when a test fails (without miniupnpd's per-rule debug noise). */
export function routerLogSummary (lab: Lab, maxLines = 60): string {
  const lines = lab.routerLog().split('\n')
    .filter((l) => !/table_cb\(|is not a IGD pinhole/.test(l))
  return lines.slice(-maxLines).join('\n')
}

/** Runs `fn` with a fresh lab and always closes it; on failure prints the end of the router log. */
export async function withLab<T> (options: LabOptions, fn: (lab: Lab) => Promise<T>): Promise<T> {
  const lab = await startLab(options)
  try {
    return await fn(lab)
  } catch (err) {
    console.error(`--- miniupnpd log (${lab.prefix}, end) ---\n${routerLogSummary(lab)}\n---`)
    throw err
  } finally {
    await lab.close()
  }
}
