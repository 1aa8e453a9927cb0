/**
 * natmapper: keep ports reachable from the internet behind a NAT router.
 */
export * from './errors.js'
export type { Clock, TimerHandle } from './clock.js'
export { systemClock } from './clock.js'
export type { Gateway, PortMapping, MapRequest, CallOptions, TransportProtocol, MappingMethod } from './gateway.js'
