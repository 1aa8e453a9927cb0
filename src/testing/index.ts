/**
 * Simulated gateways and a fake clock, for testing applications that use natmapper without a
 * real router: point natmapper at `gateway.address` / `gateway.port` (for SimulatedIgd, its
 * `ssdpUnicastTarget` and `ssdpMulticastTarget`; other UPnP clients at its `descriptionUrl`).
 * They answer as miniupnpd 2.3.1 does; docs/testing.md says where they differ on purpose.
 */
export { FakeClock } from './fake-clock.js'
export { SimulatedPmpGateway, type SimulatedPmpGatewayOptions, type SimulatedMapping, type PmpFaults, type ReceivedRequest } from './pmp-gateway.js'
export { SimulatedIgd, type SimulatedIgdOptions, type IgdQuirks, type SimulatedIgdMapping, type IgdRequest } from './igd.js'
