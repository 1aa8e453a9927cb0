// What the IPv6 lab tests share: a listener on the lan host, a connection from wan, miniupnpd's pinhole rules.
import { ipToBytes16 } from '../../src/net/address.js'
import type { Lab, LabHost } from './lab.js'

/** A TCP listener on `address` in `host` that answers `token`; resolves when it listens. */
export async function listen6 (lab: Lab, host: LabHost, address: string, port: number, token: string): Promise<() => void> {
  const script = `require('node:net').createServer((s) => { s.on('error', () => {}); s.end(process.argv[3] + '\\n') }).listen(Number(process.argv[2]), process.argv[1], () => process.stdout.write('ready\\n'))`
  const child = lab.spawn(host, process.execPath, ['-e', script, address, String(port), token])
  await new Promise<void>((resolve, reject) => {
    let out = ''
    child.stdout?.setEncoding('utf8').on('data', (d: string) => { out += d; if (out.includes('ready')) resolve() })
    child.once('exit', (code) => { reject(new Error(`listener exited (${String(code)})`)) })
  })
  return () => { child.kill('SIGKILL') }
}

/** What `wan` gets from a TCP connection to [address]:port: the token, or 'ETIMEDOUT' / the error code. */
export async function connect6 (lab: Lab, address: string, port: number, timeoutMs = 1500): Promise<string> {
  const script = `const s = require('node:net').connect(Number(process.argv[2]), process.argv[1]); let d = ''; s.setEncoding('utf8');
setTimeout(() => { process.stdout.write('ETIMEDOUT'); process.exit(0) }, Number(process.argv[3]));
s.on('data', (x) => { d += x }); s.on('end', () => { process.stdout.write(d.trim()); process.exit(0) }); s.on('error', (e) => { process.stdout.write(e.code || e.message); process.exit(0) })`
  const r = await lab.exec('wan', process.execPath, ['-e', script, address, String(port), String(timeoutMs)], { timeoutMs: timeoutMs + 5000 })
  return r.stdout.trim()
}

/**
 * miniupnpd's pinhole rules: the lines of its forward chain (`upnp_forward_chain=miniupnpd`) that
 * match an IPv6 destination. nft shows them raw, the address as the 16 bytes at offset 24 of the
 * IPv6 header: `iif "w0" th dport 4001 @nh,192,128 0x20010db8000100000000000000000002 @nh,48,8 0x6 accept`.
 */
export async function pinholeRules (lab: Lab): Promise<string[]> {
  const r = await lab.exec('gw', 'nft', ['list', 'chain', 'inet', 'miniupnpd', 'miniupnpd'])
  return r.stdout.split('\n').map((l) => l.trim()).filter((l) => l.includes('@nh,192,128 0x'))
}

/** The rule's form of an address: 32 hex digits. */
export function ruleHex (address: string): string {
  return Array.from(ipToBytes16(address), (b) => b.toString(16).padStart(2, '0')).join('')
}
