// SimulatedIgd as a test sees it: fixed ports that survive a restart, every URL its description
// names answering, a table handed out as copies, and a request log that says where each request went.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createSocket } from 'node:dgram'
import { sendHttpRequest } from '../../src/upnp/http.js'
import { encodeSoapRequest, parseSoapFault } from '../../src/upnp/soap.js'
import { SimulatedIgd, SimulatedPmpGateway } from '../../src/testing/index.js'
import { freeUdpPort } from '../helpers/net.js'

async function post (url: string, serviceType: string, action: string, args: Array<[string, string]> = []): Promise<{ status: number, body: string }> {
  const request = encodeSoapRequest(serviceType, action, args)
  const r = await sendHttpRequest({ method: 'POST', url, headers: request.headers, body: request.body, maxBytes: 65536, timeoutMs: 2000 })
  return { status: r.status, body: r.body }
}

test('SimulatedIgd: a fixed httpPort stays across restart({ sameHttpPort }) and the default restart moves it', async (ctx) => {
  const port = await freeUdpPort()
  const igd = await SimulatedIgd.start({ httpPort: port })
  ctx.after(async () => { await igd.close() })
  assert.equal(igd.httpPort, port)
  assert.equal(igd.descriptionUrl, `http://127.0.0.1:${port}/rootDesc.xml`)
  await igd.restart({ sameHttpPort: true })
  assert.equal(igd.httpPort, port)
  assert.equal((await sendHttpRequest({ method: 'GET', url: igd.descriptionUrl, maxBytes: 65536, timeoutMs: 2000 })).status, 200)
  await igd.restart()
  assert.notEqual(igd.httpPort, port)
})

test('SimulatedIgd: a fixed ssdpPort answers a unicast M-SEARCH there', async (ctx) => {
  const port = await freeUdpPort()
  const igd = await SimulatedIgd.start({ address: '127.51.0.3', ssdpPort: port })
  ctx.after(async () => { await igd.close() })
  assert.deepEqual(igd.ssdpUnicastTarget, { address: '127.51.0.3', port })
  const socket = createSocket('udp4')
  ctx.after(() => { socket.close() })
  const answer = new Promise<string>((resolve) => socket.once('message', (m) => { resolve(m.toString()) }))
  socket.send('M-SEARCH * HTTP/1.1\r\nHOST: 239.255.255.250:1900\r\nMAN: "ssdp:discover"\r\nMX: 1\r\nST: urn:schemas-upnp-org:device:InternetGatewayDevice:1\r\n\r\n', port, '127.51.0.3')
  assert.match(await answer, new RegExp(`LOCATION: http://127\\.51\\.0\\.3:${igd.httpPort}/rootDesc\\.xml`, 'i'))
})

test('SimulatedIgd: every SCPD and control URL its description names answers; each request records its path and service', async (ctx) => {
  const igd = await SimulatedIgd.start()
  ctx.after(async () => { await igd.close() })
  const description = (await sendHttpRequest({ method: 'GET', url: igd.descriptionUrl, maxBytes: 65536, timeoutMs: 2000 })).body
  const services = [...description.matchAll(/<serviceType>([^<]+)<\/serviceType>.*?<SCPDURL>([^<]+)<\/SCPDURL><controlURL>([^<]+)<\/controlURL>/g)]
  assert.deepEqual(services.map((s) => s[1]), ['urn:schemas-upnp-org:service:Layer3Forwarding:1', 'urn:schemas-upnp-org:service:WANCommonInterfaceConfig:1', 'urn:schemas-upnp-org:service:WANIPConnection:2', 'urn:schemas-upnp-org:service:WANIPv6FirewallControl:1'])
  const base = `http://127.0.0.1:${igd.httpPort}`
  const first: Record<string, string> = { Layer3Forwarding: 'GetDefaultConnectionService', WANCommonInterfaceConfig: 'GetCommonLinkProperties', WANIPConnection: 'GetStatusInfo', WANIPv6FirewallControl: 'GetFirewallStatus' }
  for (const [, serviceType = '', scpd = '', control = ''] of services) {
    const doc = await sendHttpRequest({ method: 'GET', url: base + scpd, maxBytes: 65536, timeoutMs: 2000 })
    assert.equal(doc.status, 200, scpd)
    const actions = [...doc.body.matchAll(/<action><name>(\w+)<\/name>/g)].map((m) => m[1]!)
    assert.ok(actions.length >= 2, `${scpd} lists its actions`)
    for (const action of actions) {
      // Every action the SCPD lists is implemented: an answer or one of its own faults, never 401.
      const r = await post(base + control, serviceType, action)
      assert.notEqual(parseSoapFault(r.body)?.errorCode, 401, `${serviceType}#${action}`)
    }
    const name = serviceType.split(':')[3]!
    assert.equal((await post(base + control, serviceType, first[name]!)).status, 200)
    assert.deepEqual(igd.requests.at(-1) && { path: igd.requests.at(-1)!.path, service: igd.requests.at(-1)!.service }, { path: control, service: serviceType })
  }
})

test('mappings() of both simulators are copies: changing one changes nothing in the router', async (ctx) => {
  const igd = await SimulatedIgd.start()
  ctx.after(async () => { await igd.close() })
  igd.occupy(7001, 'TCP')
  igd.mappings()[0]!.internalPort = 1
  assert.equal(igd.mappings()[0]!.internalPort, 7001)
  const pmp = await SimulatedPmpGateway.start()
  ctx.after(async () => { await pmp.close() })
  const socket = createSocket('udp4')
  ctx.after(() => { socket.close() })
  const answered = new Promise((resolve) => socket.once('message', resolve))
  socket.send(Uint8Array.of(0, 2, 0, 0, 0x1b, 0x59, 0x1b, 0x59, 0, 0, 0x0e, 0x10), pmp.port, pmp.address)
  await answered
  pmp.mappings()[0]!.externalPort = 1
  assert.equal(pmp.mappings()[0]!.externalPort, 7001)
})
