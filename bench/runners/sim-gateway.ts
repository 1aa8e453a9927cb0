/**
 * natmapper/testing's SimulatedPmpGateway (NAT-PMP + PCP) in a process of its own, so that its
 * work is not counted in the client's time. Binds --address:--port (default 127.0.0.1:5351, on the
 * loopback of whatever namespace it runs in), prints `ready`, answers `count` with the requests it
 * received and the mappings it holds, and exits on `exit`.
 */
import { SimulatedPmpGateway } from '../../src/testing/index.js'
import { command, fatal, parseArgs, send } from './io.js'

const args = parseArgs(process.argv.slice(2))

try {
  const gateway = await SimulatedPmpGateway.start({ address: args.address ?? '127.0.0.1', port: Number(args.port ?? 5351) })
  send({ type: 'ready', address: gateway.address, port: gateway.port })
  for (;;) {
    const line = await command()
    if (line === 'exit') break
    send({ type: 'count', requests: gateway.requestCount, pcp: gateway.countRequests('pcp'), natpmp: gateway.countRequests('natpmp'), mappings: gateway.mappings().length })
  }
  await gateway.close()
} catch (err) {
  fatal(err)
}
process.exit(0)
