import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { ServiceType } from '../../src/upnp/codes.js'
import { encodeSoapFault, encodeSoapResponse, parseSoapRequest } from '../../src/upnp/soap.js'

const FC = ServiceType.WANIPv6FirewallControl1

export interface Seen { action: string, args: Record<string, string>, from: string }

/**
 * A WANIPv6FirewallControl server on ::1 that behaves as miniupnpd 2.3.1's upnpsoap.c: the
 * sender must be the InternalClient (606 otherwise), 704 for an unknown UniqueID, and an AddPinhole
 * of a tuple it holds returns that pinhole's UniqueID (upnp_add_inboundpinhole updates it).
 */
export async function pinholeServer (options: { firewallEnabled?: boolean, inboundAllowed?: boolean, addFault?: number } = {}): Promise<{ server: Server, url: string, seen: Seen[], pinholes: Map<number, Record<string, string>> }> {
  const seen: Seen[] = []
  const pinholes = new Map<number, Record<string, string>>()
  let next = 1
  const server = createServer((req, res) => {
    let body = ''
    req.on('data', (c: Buffer) => { body += c.toString() })
    req.on('end', () => {
      const parsed = parseSoapRequest(body)
      const args = Object.fromEntries(parsed.args)
      const from = req.socket.remoteAddress ?? ''
      seen.push({ action: parsed.action, args, from })
      const reply = (status: number, xml: string): void => { res.writeHead(status, { 'Content-Type': 'text/xml' }).end(xml) }
      const fault = (code: number): void => { reply(500, encodeSoapFault(code)) }
      const ok = (out: Array<[string, string]> = []): void => { reply(200, encodeSoapResponse(FC, parsed.action, out)) }
      switch (parsed.action) {
        case 'GetFirewallStatus': ok([['FirewallEnabled', options.firewallEnabled === false ? '0' : '1'], ['InboundPinholeAllowed', options.inboundAllowed === false ? '0' : '1']]); return
        case 'AddPinhole': {
          if (args.InternalClient !== from) { fault(606); return }
          if (options.addFault !== undefined) { fault(options.addFault); return }
          const held = [...pinholes].find(([, p]) => p.InternalClient === args.InternalClient && p.InternalPort === args.InternalPort && p.Protocol === args.Protocol)
          const id = held?.[0] ?? next++
          pinholes.set(id, args)
          ok([['UniqueID', String(id)]])
          return
        }
        case 'UpdatePinhole': case 'DeletePinhole': {
          const pinhole = pinholes.get(Number(args.UniqueID))
          if (pinhole === undefined) { fault(704); return }
          if (pinhole.InternalClient !== from) { fault(606); return }
          if (parsed.action === 'DeletePinhole') pinholes.delete(Number(args.UniqueID))
          ok()
          return
        }
        case 'CheckPinholeWorking': fault(709); return
        default: fault(401)
      }
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '::1', resolve))
  return { server, url: `http://[::1]:${(server.address() as AddressInfo).port}/ctl/IP6FCtl`, seen, pinholes }
}
