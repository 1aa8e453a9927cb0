// The differential conformance suite: every case of differential-cases.ts is sent, byte for byte
// and from the same lan addresses, to miniupnpd 2.3.1 (the lab's gateway) and to natmapper/testing's
// SimulatedIgd and SimulatedPmpGateway (run in the gateway's namespace on an address of their own);
// the answers and the mapping tables afterwards must agree once what is meant to differ (epochs,
// uptimes, counters, UUIDs, a second of lease) is normalized. Each router starts every case empty.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import type { ChildProcess } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { encodeSoapRequest } from '../../src/upnp/soap.js'
import { differentialCases, type Case, type ServiceKey, type Step } from './differential-cases.js'
import { requireLab, withLab, type Lab } from './lab.js'

const clientScript = fileURLToPath(new URL('./differential-client.js', import.meta.url))
const simScript = fileURLToPath(new URL('./differential-sim.js', import.meta.url))
const SIM_ADDRESS = '192.168.77.3'
const OTHER_CLIENT = '192.168.77.4'
const MINIUPNPD_HTTP_PORT = 5000
const SIM_HTTP_PORT = 5001

/** One JSON line per command and per answer, matched by id. */
class LineChannel {
  #next = 0
  #pending = new Map<number, (value: Record<string, unknown>) => void>()
  #buffer = ''
  #stderr = ''
  readonly ready: Promise<Record<string, unknown>>

  constructor (readonly child: ChildProcess, what: string) {
    let markReady: (value: Record<string, unknown>) => void = () => {}
    this.ready = new Promise((resolve, reject) => {
      markReady = resolve
      child.once('exit', (code) => { reject(new Error(`${what} exited (${String(code)}): ${this.#stderr}`)) })
    })
    child.stderr?.setEncoding('utf8').on('data', (d: string) => { this.#stderr += d })
    child.stdout?.setEncoding('utf8').on('data', (d: string) => {
      this.#buffer += d
      const lines = this.#buffer.split('\n')
      this.#buffer = lines.pop() ?? ''
      for (const line of lines) {
        if (line.trim() === '') continue
        const value = JSON.parse(line) as Record<string, unknown>
        if (value.ready === true) markReady(value)
        else this.#pending.get(value.id as number)?.(value)
      }
    })
  }

  async send (command: Record<string, unknown>): Promise<Record<string, unknown>> {
    const id = this.#next++
    return await new Promise((resolve) => {
      this.#pending.set(id, resolve)
      this.child.stdin?.write(`${JSON.stringify({ id, ...command })}\n`)
    })
  }
}

const SERVICE_TYPES: Record<ServiceKey, string> = {
  ip: 'urn:schemas-upnp-org:service:WANIPConnection:2',
  cfg: 'urn:schemas-upnp-org:service:WANCommonInterfaceConfig:1',
  l3f: 'urn:schemas-upnp-org:service:Layer3Forwarding:1'
}

interface Router {
  name: 'miniupnpd' | 'simulator'
  host: string
  httpPort: number
  /** controlURL and SCPDURL per service, from the router's own description. */
  services: Partial<Record<ServiceKey, { control: string, scpd: string }>>
  reset: () => Promise<void>
  /** Its mapping table, normalized, sorted. */
  table: () => Promise<string[]>
}

function servicesOf (description: string): Router['services'] {
  const services: Router['services'] = {}
  for (const block of description.match(/<service>[\s\S]*?<\/service>/g) ?? []) {
    const type = /<serviceType>([^<]*)<\/serviceType>/.exec(block)?.[1] ?? ''
    const key = (Object.keys(SERVICE_TYPES) as ServiceKey[]).find((k) => type.startsWith(SERVICE_TYPES[k].slice(0, -1)))
    if (key === undefined) continue
    services[key] = { control: /<controlURL>([^<]*)<\/controlURL>/.exec(block)?.[1] ?? '', scpd: /<SCPDURL>([^<]*)<\/SCPDURL>/.exec(block)?.[1] ?? '' }
  }
  return services
}

const roundLease = (value: string | number): string => {
  const n = Number(value)
  return Number.isFinite(n) && n > 0 ? `~${Math.round(n / 10) * 10}` : String(value)
}

/** The arguments of a SOAP answer, with what is meant to differ between two routers replaced. */
function normalizeArgs (inner: string, randomPort: boolean): Record<string, string> {
  const args: Record<string, string> = {}
  for (const m of inner.matchAll(/<([A-Za-z][\w]*)>([\s\S]*?)<\/\1>/g)) {
    const [, name = '', raw = ''] = m
    let value = raw
    if (name === 'NewUptime' && /^\d+$/.test(value)) value = '<uptime>'
    if (/^NewTotal/.test(name) && /^\d+$/.test(value)) value = '<counter>'
    if (/BitRate$/.test(name) && /^\d+$/.test(value)) value = '<bitrate>'
    if (name === 'NewLeaseDuration') value = roundLease(value)
    if (name === 'NewDefaultConnectionService') value = value.replace(/uuid:[^:]+/, 'uuid:<uuid>')
    if (name === 'NewReservedPort' && randomPort && Number(value) >= 1024) value = '<a port>'
    if (name === 'NewPortListing') value = listingOf(value)
    args[name] = value
  }
  return args
}

function listingOf (cdata: string): string {
  return [...cdata.matchAll(/<p:PortMappingEntry>([\s\S]*?)<\/p:PortMappingEntry>/g)].map(([, entry = '']) =>
    [...entry.matchAll(/<p:(\w+)>([^<]*)<\/p:\1>/g)].map(([, k = '', v = '']) => `${k}=${k === 'NewLeaseTime' ? roundLease(v) : v}`).join(' ')).join(' | ') || '(empty)'
}

/** A PCP or NAT-PMP answer with its epoch zeroed (RFC 6886 §3.2 bytes 4-7, RFC 6887 §7.2 bytes 8-11). */
function normalizeDatagram (hex: string): string {
  const b = Buffer.from(hex, 'hex')
  if (b[0] === 0 && b.length <= 16) b.fill(0, 4, 8)
  else if (b.length >= 12) b.fill(0, 8, 12)
  return `${b.length} bytes: ${b.toString('hex')}`
}

function tableEntry (e: { protocol: string, externalPort: number | string, client: string, internalPort: number, kind: string, lease: number, remoteHost?: string }, randomPort: boolean): string {
  // A case with randomPort holds only the entries its wildcards made: a drawn port may be any, 7xxx included.
  const port = randomPort ? '<a port>' : String(e.externalPort)
  return `${e.protocol.toUpperCase()} ${port}${e.remoteHost !== undefined && e.remoteHost !== '' ? ` from ${e.remoteHost}` : ''} -> ${e.client}:${e.internalPort} ${e.kind} lease ${roundLease(e.lease)}`
}

const kindOf = (description: string): string =>
  description.startsWith('NAT-PMP') ? 'natpmp' : description.startsWith('PCP MAP') ? 'pcp' : `upnp "${description}"`

async function runStep (client: LineChannel, router: Router, step: Step, c: Case, lab: Lab): Promise<unknown> {
  const from = 'from' in step && step.from === 'other' ? OTHER_CLIENT : lab.clientAddress
  if ('udp' in step) {
    const r = await client.send({ op: 'udp', host: router.host, port: 5351, from, hex: step.udp, ...(step.waitMs === undefined ? {} : { waitMs: step.waitMs }) })
    return (r.answers as string[]).map(normalizeDatagram)
  }
  if ('get' in step) {
    const [, key] = step.get.split(':') as [string, ServiceKey | undefined]
    const path = key === undefined ? '/rootDesc.xml' : router.services[key]?.scpd
    if (path === undefined) return `no ${key ?? ''} service in the description`
    const r = await client.send({ op: 'http', host: router.host, port: router.httpPort, from, method: 'GET', path })
    if (key === undefined) return { status: r.status, services: servicesOf(r.body as string) }
    const actions = [...(r.body as string).matchAll(/<action>\s*<name>(\w+)<\/name>/g)].map(([, name]) => name).sort()
    return { status: r.status, actions }
  }
  const key = step.service ?? 'ip'
  const path = router.services[key]?.control
  if (path === undefined) return `no ${key} service in the description`
  const request = encodeSoapRequest(SERVICE_TYPES[key], step.soap, step.args ?? [])
  const r = await client.send({
    op: 'http', host: router.host, port: router.httpPort, from, method: 'POST', path, body: request.body,
    headers: Object.entries(request.headers)
  })
  if (typeof r.error === 'string') return { error: r.error }
  const body = r.body as string
  const fault = /<errorCode>(\d+)<\/errorCode>/.exec(body)?.[1]
  if (fault !== undefined) return { status: r.status, fault: Number(fault) }
  const response = /<(\w+:)?(\w+Response)\b[^>]*?(\/?)>([\s\S]*?)(<\/\1?\2>|$)/.exec(body)
  return { status: r.status, response: response?.[2] ?? `(none: ${body.slice(0, 80)})`, args: normalizeArgs(response?.[4] ?? '', c.randomPort === true) }
}

async function runCase (client: LineChannel, router: Router, c: Case, lab: Lab): Promise<{ answers: unknown[], table: string[] }> {
  await router.reset()
  const answers: unknown[] = []
  for (const step of c.steps) answers.push(await runStep(client, router, step, c, lab))
  return { answers, table: await router.table() }
}

/** miniupnpd's table as GetGenericPortMappingEntry lists it: every mapping, whichever protocol made it. */
async function listedTable (client: LineChannel, router: Router, lab: Lab, randomPort: boolean): Promise<string[]> {
  const entries: string[] = []
  for (let index = 0; index < 100; index++) {
    const request = encodeSoapRequest(SERVICE_TYPES.ip, 'GetGenericPortMappingEntry', [['NewPortMappingIndex', String(index)]])
    const r = await client.send({ op: 'http', host: router.host, port: router.httpPort, from: lab.clientAddress, method: 'POST', path: router.services.ip?.control, body: request.body, headers: Object.entries(request.headers) })
    const body = r.body as string
    if (r.status !== 200) break
    const v = (name: string): string => new RegExp(`<${name}>([^<]*)</${name}>`).exec(body)?.[1] ?? ''
    entries.push(tableEntry({ protocol: v('NewProtocol'), externalPort: v('NewExternalPort'), client: v('NewInternalClient'), internalPort: Number(v('NewInternalPort')), kind: kindOf(v('NewPortMappingDescription')), lease: Number(v('NewLeaseDuration')), remoteHost: v('NewRemoteHost') }, randomPort))
  }
  return entries.sort()
}

interface SimTable {
  igd: Array<{ protocol: string, externalPort: number, internalClient: string, internalPort: number, description: string, remainingSeconds: number, remoteHost?: string }>
  pmp: Array<{ protocol: string, externalPort: number, clientAddress: string, internalPort: number, via: string, remainingSeconds: number }>
}

test('differential: miniupnpd 2.3.1 and natmapper/testing answer every case alike (IGD v2, NAT-PMP, PCP)', { timeout: 600_000 }, async (t) => {
  await requireLab(t)
  await withLab({ httpPort: MINIUPNPD_HTTP_PORT }, async (lab) => {
    const must = async (host: 'gw' | 'lan', args: string[]): Promise<void> => {
      const r = await lab.exec(host, 'ip', args)
      assert.equal(r.code, 0, `ip ${args.join(' ')}: ${r.stderr}`)
    }
    await must('gw', ['addr', 'add', `${SIM_ADDRESS}/24`, 'dev', lab.interfaces.gwLan])
    await must('lan', ['addr', 'add', `${OTHER_CLIENT}/24`, 'dev', lab.interfaces.lan])
    const sim = new LineChannel(lab.spawn('gw', process.execPath, [simScript, SIM_ADDRESS, String(SIM_HTTP_PORT), lab.externalAddress, '{}'], { stdin: true }), 'the simulators')
    const client = new LineChannel(lab.spawn('lan', process.execPath, [clientScript], { stdin: true }), 'the lan client')
    await Promise.all([sim.ready, client.ready])

    const description = async (host: string, port: number): Promise<Router['services']> =>
      servicesOf((await client.send({ op: 'http', host, port, from: lab.clientAddress, method: 'GET', path: '/rootDesc.xml' })).body as string)
    let randomPort = false
    const miniupnpd: Router = {
      name: 'miniupnpd',
      host: lab.gatewayLanAddress,
      httpPort: MINIUPNPD_HTTP_PORT,
      services: await description(lab.gatewayLanAddress, MINIUPNPD_HTTP_PORT),
      reset: async () => { await lab.restartRouter() },
      table: async () => await listedTable(client, miniupnpd, lab, randomPort)
    }
    const simulator: Router = {
      name: 'simulator',
      host: SIM_ADDRESS,
      httpPort: SIM_HTTP_PORT,
      services: await description(SIM_ADDRESS, SIM_HTTP_PORT),
      reset: async () => { await sim.send({ op: 'reset' }) },
      table: async () => {
        const r = await sim.send({ op: 'table' }) as unknown as SimTable
        return [
          ...r.igd.map((m) => tableEntry({ protocol: m.protocol, externalPort: m.externalPort, client: m.internalClient, internalPort: m.internalPort, kind: kindOf(m.description), lease: m.remainingSeconds, ...(m.remoteHost === undefined ? {} : { remoteHost: m.remoteHost }) }, randomPort)),
          ...r.pmp.map((m) => tableEntry({ protocol: m.protocol, externalPort: m.externalPort, client: m.clientAddress, internalPort: m.internalPort, kind: m.via, lease: m.remainingSeconds }, randomPort))
        ].sort()
      }
    }

    const differences: string[] = []
    const stillDeliberate: string[] = []
    const cases = differentialCases({ client: lab.clientAddress, other: OTHER_CLIENT })
    for (const c of cases) {
      randomPort = c.randomPort === true
      const real = await runCase(client, miniupnpd, c, lab)
      const simulated = await runCase(client, simulator, c, lab)
      const same = JSON.stringify(real) === JSON.stringify(simulated)
      if (c.deliberate !== undefined) {
        if (same) stillDeliberate.push(`${c.name}: listed as deliberate (${c.deliberate}) but the simulator now answers as miniupnpd; take it off the list`)
        continue
      }
      if (!same) {
        const lines = [`--- ${c.name}`]
        real.answers.forEach((answer, i) => {
          const s = JSON.stringify(simulated.answers[i])
          if (JSON.stringify(answer) !== s) lines.push(`  step ${i + 1} ${JSON.stringify(c.steps[i]).slice(0, 160)}\n    miniupnpd: ${JSON.stringify(answer)}\n    simulator: ${s}`)
        })
        if (JSON.stringify(real.table) !== JSON.stringify(simulated.table)) lines.push(`  table\n    miniupnpd: ${JSON.stringify(real.table)}\n    simulator: ${JSON.stringify(simulated.table)}`)
        differences.push(lines.join('\n'))
      }
    }
    t.diagnostic(`${cases.length} cases, ${cases.reduce((n, c) => n + c.steps.length, 0)} steps; ${differences.length} differ; ${cases.filter((c) => c.deliberate !== undefined).length} deliberate`)
    assert.deepEqual(stillDeliberate, [])
    assert.equal(differences.length, 0, `the simulators differ from miniupnpd in ${differences.length} case(s):\n${differences.join('\n')}`)
  })
})
