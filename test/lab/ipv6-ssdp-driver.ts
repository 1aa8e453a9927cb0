// Runs in the lab's lan namespace: one SSDP search over IPv6 with the library's SsdpSearch
// (argv: gateway, multicast interface, 'multicast' | 'unicast'), then prints every answer as JSON.
import { SsdpSearch } from '../../src/upnp/ssdp.js'
import { DeviceType } from '../../src/upnp/codes.js'

const [gateway = '', multicastInterface = '', mode = 'multicast'] = process.argv.slice(2)
const search = await SsdpSearch.start({
  gateway: mode === 'unicast' ? gateway : undefined,
  multicast: mode === 'unicast' ? false : { address: 'ff02::c', port: 1900 },
  multicastInterface: mode === 'unicast' ? undefined : multicastInterface,
  bindAddress: '::',
  schedule: [{ atMs: 0, searchTargets: [DeviceType.InternetGatewayDevice1] }, { atMs: 1000, searchTargets: [DeviceType.InternetGatewayDevice1] }]
})
const warnings: string[] = []
search.on('warning', (err) => warnings.push(err.message))
setTimeout(() => {
  search.close()
  process.stdout.write(JSON.stringify({
    received: search.received,
    answers: search.answers.map((a) => ({ from: a.from.address, location: a.response.location, st: a.response.st, ms: Math.round(a.elapsedMs) })),
    warnings
  }) + '\n')
}, 2500)
