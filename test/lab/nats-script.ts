/**
 * discoverNATs inside the lab's lan namespace: prints one JSON line with what it found and the
 * mapping of `port`/tcp it made on each NAT, waits for a line on stdin, closes every NAT and
 * prints what close() left. Run by test/lab/interfaces.test.ts; not a test file itself.
 */
import { createInterface } from 'node:readline'
import { discoverNATs } from '../../src/nat/discover-nats.js'

const port = Number(process.argv[2])
const found = await discoverNATs({ announcements: false, ssdpListen: false })
const nats = await Promise.all(found.nats.map(async ({ interface: name, localAddress, nat }) => {
  await nat.addMapping('tcp', port)
  return { interface: name, localAddress, gateway: nat.gatewayAddress, method: nat.method, mapping: nat.getMapping('tcp', port) }
}))
const failures = found.failures.map((f) => ({ interface: f.interface, gateway: f.gateway ?? null, error: f.error.message }))
process.stdout.write(`${JSON.stringify({ nats, failures })}\n`)
const lines = createInterface({ input: process.stdin })
for await (const _ of lines) break
const left = await found.close()
process.stdout.write(`${JSON.stringify({ left: left.length })}\n`)
process.exit(0)
