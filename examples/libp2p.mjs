#!/usr/bin/env node
// A js-libp2p node whose ports natmapper keeps mapped on the router (Node >= 22, as js-libp2p 3).
//
//   node examples/libp2p.mjs              the real router: the default route's gateway
//   node examples/libp2p.mjs --simulated  natmapper/testing's simulated PCP router on loopback
//
// Prints the public address the node announces, then stops after a few seconds (or Ctrl-C),
// deleting its mappings. Needs the packages libp2p, @libp2p/tcp, @chainsafe/libp2p-noise and
// @chainsafe/libp2p-yamux (this repository has them as devDependencies).
import { createLibp2p } from 'libp2p'
import { tcp } from '@libp2p/tcp'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { natmapperNat } from 'natmapper/libp2p'
import { SimulatedPmpGateway } from 'natmapper/testing'

const simulated = process.argv.includes('--simulated')
const router = simulated ? await SimulatedPmpGateway.start({ externalAddress: '11.0.0.1' }) : undefined

const node = await createLibp2p({
  addresses: { listen: [simulated ? '/ip4/127.0.0.1/tcp/0' : '/ip4/0.0.0.0/tcp/0'] },
  transports: [tcp()],
  connectionEncrypters: [noise()],
  streamMuxers: [yamux()],
  services: {
    // was: nat: uPnPNAT({ autoConfirmAddress: true }) from '@libp2p/upnp-nat'
    nat: natmapperNat({
      autoConfirmAddress: true, // no @libp2p/autonat in this example: trust the router's word
      ...(router === undefined ? {} : { gateway: router.address, natmapper: { port: router.port, announcements: false, ssdpTarget: false, ssdpListen: false } })
    })
  }
})

const isPublic = (ma) => !/^\/ip4\/(127\.|10\.|192\.168\.|172\.(1[6-9]|2\d|3[01])\.)/.test(ma.toString())
const found = new Promise((resolve) => {
  const check = () => { const ma = node.getMultiaddrs().find(isPublic); if (ma !== undefined) resolve(ma) }
  node.addEventListener('self:peer:update', check)
  check()
})
let timer
const timeout = new Promise((resolve) => { timer = setTimeout(resolve, simulated ? 5000 : 15_000, undefined) })
const address = await Promise.race([found, timeout])
clearTimeout(timer)
console.log(address === undefined ? `no public address (${node.services.nat.nat?.notPublicReason ?? 'no router answered'})` : `reachable at ${address}`)
console.log(`mapped on the router: ${node.services.nat.nat?.mappings().map((m) => `${m.protocol} ${m.internalPort} -> ${m.externalPort} (${m.method})`).join(', ') ?? 'nothing'}`)

await node.stop() // deletes every mapping
if (router !== undefined) {
  console.log(`router table after stop: ${router.mappings().length} mappings`)
  await router.close()
}
