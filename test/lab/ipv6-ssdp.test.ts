// Does miniupnpd 2.3.1 with ipv6_listening_ip answer SSDP over IPv6? The library's SsdpSearch in
// the lan namespace sends M-SEARCH to [ff02::c]:1900 out of the lan interface, and unicast to the
// router's LAN address. Seen: unicast is answered (LOCATION http://[2001:db8:1::1]:port/), the
// group never: minissdp.c binds its IPv6 SSDP socket to ipv6_listening_ip (`ss`: [2001:db8:1::1]
// %l1:1900; it joins ff02::c, ff05::c, ff0e::c), where the kernel delivers no datagram sent to a
// group; IPv4 binds INADDR_ANY. Still so on miniupnp master (minissdp.c: sin6_addr = ipv6_bind_addr).
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { fileURLToPath } from 'node:url'
import { checkUpnpUrl } from '../../src/upnp/guard.js'
import { LAB_IPV6, requireLab, withLab, type Lab } from './lab.js'

const driverPath = fileURLToPath(new URL('./ipv6-ssdp-driver.js', import.meta.url))

interface Result { received: number, answers: Array<{ from: string, location: string, st: string, ms: number }>, warnings: string[] }

async function search (lab: Lab, mode: 'multicast' | 'unicast'): Promise<Result> {
  const r = await lab.exec('lan', process.execPath, [driverPath, LAB_IPV6.gatewayLan, `::%${lab.interfaces.lan}`, mode], { timeoutMs: 15_000 })
  const line = r.stdout.trim().split('\n').at(-1) ?? ''
  try {
    return JSON.parse(line) as Result
  } catch {
    throw new Error(`ipv6-ssdp-driver gave no JSON (code ${String(r.code)}): ${r.stdout}${r.stderr}`)
  }
}

test('IPv6 lab: miniupnpd 2.3.1 answers a unicast M-SEARCH to its IPv6 LAN address, not one to [ff02::c]:1900; its LOCATION passes the guard', { timeout: 120_000 }, async (t) => {
  await requireLab(t)
  await withLab({ ipv6: true }, async (lab) => {
    const multicast = await search(lab, 'multicast')
    const unicast = await search(lab, 'unicast')
    console.log(`# ff02::c: ${JSON.stringify(multicast)}`)
    console.log(`# unicast [${LAB_IPV6.gatewayLan}]:1900: ${JSON.stringify(unicast)}`)
    assert.equal(multicast.received, 0, 'miniupnpd 2.3.1 with ipv6_listening_ip does not hear [ff02::c]:1900 (its socket is bound to that address); if it answers now, the lab or miniupnpd changed')
    assert.equal(unicast.answers.length, 1, 'unicast to its LAN address is answered')
    assert.equal(unicast.answers[0]!.from, LAB_IPV6.gatewayLan)
    const answers = [...multicast.answers, ...unicast.answers]
    const policy = { gateway: LAB_IPV6.gatewayLan, prefixes6: [{ address: LAB_IPV6.client, prefixLength: 64 }] }
    for (const a of answers) assert.ok(checkUpnpUrl(a.location, policy), a.location)
  })
})
