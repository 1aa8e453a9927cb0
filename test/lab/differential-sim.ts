/**
 * The simulators' side of the differential suite (differential.test.ts), run in the lab's gw
 * namespace on an address of their own beside miniupnpd's: a SimulatedIgd on a fixed HTTP port
 * and a SimulatedPmpGateway on port 5351, both reporting the lab's external address, so that the
 * lan host reaches both routers from the same source addresses. argv: the address, the HTTP
 * port, the external address, the options as JSON. Commands on stdin, one JSON line each:
 * `table` (both mapping tables), `reset` (empty tables, a new epoch). Not a test file.
 */
import { createInterface } from 'node:readline'
import { systemClock } from '../../src/clock.js'
import { SimulatedIgd, SimulatedPmpGateway } from '../../src/testing/index.js'

const [address, httpPort, externalAddress, optionsJson] = process.argv.slice(2)
const options = JSON.parse(optionsJson ?? '{}') as { igdVersion?: 1 | 2 }
const igd = await SimulatedIgd.start({ address: address!, httpPort: Number(httpPort), externalAddress: externalAddress!, ...(options.igdVersion === undefined ? {} : { igdVersion: options.igdVersion }) })
const pmp = await SimulatedPmpGateway.start({ address: address!, port: 5351, externalAddress: externalAddress! })

function write (value: unknown): void {
  process.stdout.write(`${JSON.stringify(value)}\n`)
}

createInterface({ input: process.stdin }).on('line', (line) => {
  const command = JSON.parse(line) as { id: number, op: 'table' | 'reset' }
  if (command.op === 'reset') {
    igd.dropMappings()
    pmp.restart()
    write({ id: command.id })
  } else {
    const now = systemClock.now()
    write({
      id: command.id,
      igd: igd.mappings().map((m) => ({ ...m, remainingSeconds: m.leaseSeconds === 0 ? 0 : Math.round((m.expiresAtMs - now) / 1000) })),
      pmp: pmp.mappings().map((m) => ({ ...m, remainingSeconds: Math.round((m.expiresAtMs - now) / 1000) }))
    })
  }
})
write({ ready: true, descriptionUrl: igd.descriptionUrl })
