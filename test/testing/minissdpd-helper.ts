/**
 * Run by real-clients.test.ts inside a network namespace of its own (`unshare -rn`): a
 * SimulatedIgd with a minissdpd socket, and `upnpc -p <socket>` adding a mapping through it.
 * Prints one JSON line: upnpc's output, whether the socket was asked, the M-SEARCHes seen, the
 * mappings made. argv: upnpc's path, the socket path. Not a test file.
 */
import { execFile } from 'node:child_process'
import { SimulatedIgd } from '../../src/testing/index.js'

const [upnpc, socket] = process.argv.slice(2) as [string, string]
const igd = await SimulatedIgd.start({ minissdpdSocket: socket })
const result = await new Promise<{ code: number | null, stdout: string, stderr: string }>((resolve) => {
  execFile(upnpc, ['-p', socket, '-a', '127.0.0.1', '7005', '7005', 'TCP', '600'], { timeout: 10_000, encoding: 'utf8' }, (err, stdout, stderr) => {
    resolve({ code: err === null ? 0 : typeof err.code === 'number' ? err.code : null, stdout, stderr })
  })
})
process.stdout.write(JSON.stringify({ upnpc: result, ssdpSearches: igd.count('ssdp'), mappings: igd.mappings().length }) + '\n')
await igd.close()
