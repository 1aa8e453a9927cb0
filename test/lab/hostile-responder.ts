/**
 * A hostile gateway for the lab (test/lab/hostile.test.ts), run in the gateway namespace in place
 * of miniupnpd:
 *
 *     node hostile-responder.js <lan address> <outside address> <outside port>...
 *
 * - SSDP (0.0.0.0:1900, joined to 239.255.255.250 on the LAN address): every M-SEARCH gets
 *   answers whose LOCATION points at the outside host, at a server here that drips one byte
 *   every half second, at an entity-expansion bomb, at an endless body, at a description whose
 *   control URL is on the outside host, at other schemes and malformed URLs, and then a flood
 *   of 2,000 distinct LOCATIONs at a server that never answers.
 * - NAT-PMP/PCP (LAN address, port 5351): every request gets garbage, replies with the wrong
 *   opcode, a PCP reply with another nonce, truncated replies, and a well-formed reply from
 *   another source port; never a real answer.
 *
 * It prints one JSON line when it is ready ({"ready":true,...}) and one per event ({"event":
 * "http","server":"drip"}, {"event":"ssdp"}, {"event":"pmp"}), so the test can check that
 * natmapper really met each trap. Its only traffic goes back to whoever asked, on the LAN.
 * Not a test file itself.
 */
import { createSocket } from 'node:dgram'
import { createServer, type Socket } from 'node:net'
import { randomBytes } from 'node:crypto'

const [lanAddress = '192.168.77.1', outside = '11.0.0.2', ...outsidePorts] = process.argv.slice(2)
const IGD = 'urn:schemas-upnp-org:device:InternetGatewayDevice:1'

function say (value: Record<string, unknown>): void {
  process.stdout.write(`${JSON.stringify(value)}\n`)
}

function afterRequest (socket: Socket, reply: () => void): void {
  let text = ''
  socket.on('data', (chunk) => {
    if (text.includes('\r\n\r\n')) return
    text += chunk.toString('latin1')
    if (text.includes('\r\n\r\n')) reply()
  })
}

function response (body: string): string {
  return `HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`
}

function entityBomb (): string {
  const levels = ['<!ENTITY lol "lol">']
  for (let i = 1; i <= 9; i++) levels.push(`<!ENTITY lol${i} "${`&lol${i === 1 ? '' : i - 1};`.repeat(10)}">`)
  return `<?xml version="1.0"?><!DOCTYPE root [${levels.join('')}]><root xmlns="urn:schemas-upnp-org:device-1-0"><device><deviceType>${IGD}</deviceType><friendlyName>&lol9;</friendlyName></device></root>`
}

function foreignControlUrl (): string {
  const port = outsidePorts[0] ?? '80'
  return `<?xml version="1.0"?><root xmlns="urn:schemas-upnp-org:device-1-0"><device><deviceType>${IGD}</deviceType><deviceList><device>
<deviceType>urn:schemas-upnp-org:device:WANDevice:1</deviceType><deviceList><device><deviceType>urn:schemas-upnp-org:device:WANConnectionDevice:1</deviceType>
<serviceList><service><serviceType>urn:schemas-upnp-org:service:WANIPConnection:1</serviceType><serviceId>urn:upnp-org:serviceId:WANIPConn1</serviceId>
<controlURL>http://${outside}:${port}/ctl/IPConn</controlURL><eventSubURL>/evt</eventSubURL><SCPDURL>/scpd.xml</SCPDURL></service></serviceList>
</device></deviceList></device></deviceList></device></root>`
}

const behaviours: Record<string, (socket: Socket) => void> = {
  drip: (socket) => {
    afterRequest(socket, () => {
      const bytes = response(entityBomb())
      let i = 0
      const timer = setInterval(() => {
        if (socket.destroyed || i >= bytes.length) clearInterval(timer)
        else socket.write(bytes[i++]!)
      }, 500)
      socket.on('close', () => { clearInterval(timer) })
    })
  },
  bomb: (socket) => { afterRequest(socket, () => { socket.end(response(entityBomb())) }) },
  endless: (socket) => {
    afterRequest(socket, () => {
      socket.write('HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\nTransfer-Encoding: chunked\r\n\r\n')
      const block = Buffer.from('8\r\n<a>xx</a>\r\n'.repeat(2048))
      const pump = (): void => {
        while (!socket.destroyed && socket.write(block)) {}
        if (!socket.destroyed) socket.once('drain', pump)
      }
      pump()
    })
  },
  foreign: (socket) => { afterRequest(socket, () => { socket.end(response(foreignControlUrl())) }) },
  stall: () => {}
}

async function listenTcp (name: string, behave: (socket: Socket) => void): Promise<number> {
  const server = createServer((socket) => {
    say({ event: 'http', server: name })
    socket.on('error', () => {})
    behave(socket)
  })
  await new Promise<void>((resolve) => { server.listen(0, lanAddress, resolve) })
  return (server.address() as { port: number }).port
}

function rawAnswer (location: string, n: number): Buffer {
  return Buffer.from(`HTTP/1.1 200 OK\r\nCACHE-CONTROL: max-age=1800\r\nEXT:\r\nLOCATION: ${location}\r\nSERVER: Hostile/1.0 UPnP/1.1 hostile/1.0\r\nST: ${IGD}\r\nUSN: uuid:hostile-${n}::${IGD}\r\n\r\n`, 'latin1')
}

async function main (): Promise<void> {
  const ports: Record<string, number> = {}
  for (const [name, behave] of Object.entries(behaviours)) ports[name] = await listenTcp(name, behave)
  const here = (name: string, path = '/rootDesc.xml'): string => `http://${lanAddress}:${ports[name]!}${path}`
  const outsidePort = outsidePorts[0] ?? '80'
  let n = 0
  const answers = (): Buffer[] => [
    rawAnswer(`http://${outside}:${outsidePort}/rootDesc.xml`, n++),
    rawAnswer(`http://${outside}/rootDesc.xml`, n++),
    rawAnswer(here('drip'), n++),
    rawAnswer(here('bomb'), n++),
    rawAnswer(here('endless'), n++),
    rawAnswer(here('foreign'), n++),
    rawAnswer(`https://${outside}:${outsidePort}/rootDesc.xml`, n++),
    rawAnswer(`http://admin:admin@${outside}:${outsidePort}/rootDesc.xml`, n++),
    rawAnswer('file:///etc/passwd', n++),
    rawAnswer(`gopher://${outside}:${outsidePort}/`, n++),
    rawAnswer('http://[::1', n++),
    rawAnswer(`http://${outside}:${outsidePort}\\@${lanAddress}/`, n++),
    ...Array.from({ length: 2000 }, (_, i) => rawAnswer(here('stall', `/flood-${i}.xml`), n++))
  ]

  const ssdp = createSocket({ type: 'udp4', reuseAddr: true })
  ssdp.on('error', (err) => { say({ event: 'error', where: 'ssdp', message: err.message }) })
  ssdp.on('message', (message, rinfo) => {
    if (!message.toString('latin1').startsWith('M-SEARCH')) return
    say({ event: 'ssdp', from: rinfo.address })
    for (const datagram of answers()) ssdp.send(datagram, rinfo.port, rinfo.address)
  })
  await new Promise<void>((resolve) => { ssdp.bind(1900, '0.0.0.0', resolve) })
  // On the LAN side: without the interface the group is joined on the default route's (WAN) side (LAB.md).
  ssdp.addMembership('239.255.255.250', lanAddress)

  const pmp = createSocket('udp4')
  const otherPort = createSocket('udp4')
  pmp.on('error', () => {})
  otherPort.on('error', () => {})
  pmp.on('message', (message, rinfo) => {
    say({ event: 'pmp', from: rinfo.address, version: message[0] })
    const reply = (bytes: Uint8Array): void => { pmp.send(bytes, rinfo.port, rinfo.address) }
    reply(randomBytes(1))
    reply(randomBytes(13))
    reply(randomBytes(60))
    reply(Uint8Array.of(0, 0x80 | 0x7f, 0, 0, 0, 0, 0, 1))
    reply(Uint8Array.of(0, 0x82, 0, 0, 0, 0, 0, 1, 0x1b, 0x59, 0x1b, 0x59, 0xff, 0xff, 0xff, 0xff))
    if (message[0] === 2 && message.length >= 24) {
      // A PCP reply to this request but for another nonce, another opcode, truncated.
      const forged = Buffer.from(message)
      forged[1] = forged[1]! | 0x80
      forged[3] = 0
      // A MAP answered for another nonce (an ANNOUNCE has no nonce: echoed, it would be a valid answer).
      if (forged.length >= 36) {
        randomBytes(12).copy(forged, 24)
        reply(forged)
      }
      const wrongOpcode = Buffer.from(forged)
      wrongOpcode[1] = 0x80 | 2
      reply(wrongOpcode)
      reply(forged.subarray(0, 20))
      // Well-formed, but from another port: a connected socket never sees it.
      const genuine = Buffer.from(message)
      genuine[1] = genuine[1]! | 0x80
      otherPort.send(genuine, rinfo.port, rinfo.address)
    }
  })
  await new Promise<void>((resolve) => { pmp.bind(5351, lanAddress, resolve) })
  await new Promise<void>((resolve) => { otherPort.bind(0, lanAddress, resolve) })
  say({ ready: true, ports })
}

main().catch((err: unknown) => {
  say({ event: 'error', message: (err as Error).message })
  process.exit(1)
})
