/**
 * NAT-PMP constants and code tables (RFC 6886). The tables are complete for the RFC and lossless:
 * a code the RFC does not define still prints, as `UNKNOWN_<n>`, so it can be logged and reported.
 */

/**
 * RFC 6886 §3: NAT-PMP is version 0, and a gateway answers any other version with result 1
 * (Unsupported Version). PCP (RFC 6887) is version 2 on the same port; version 1 is never used.
 */
export const NATPMP_VERSION = 0

/** RFC 6886 §3.1: requests go to port 5351 of the gateway. */
export const NATPMP_SERVER_PORT = 5351

/**
 * RFC 6886 §3.2.1: address announcements go to 224.0.0.1:5350. Earlier drafts used 5351 for
 * both directions, and miniupnpd still sends each announcement to both ports.
 */
export const NATPMP_CLIENT_PORT = 5350

/** RFC 6886 §3.2 and §3.3. A response's opcode is 128 + the request's. */
export const NatPmpOpcode = { EXTERNAL_ADDRESS: 0, MAP_UDP: 1, MAP_TCP: 2 } as const

/** RFC 6886 §3.5 "Result Codes". */
export const NatPmpResultCode = {
  SUCCESS: 0,
  UNSUPPORTED_VERSION: 1,
  NOT_AUTHORIZED: 2,
  NETWORK_FAILURE: 3,
  OUT_OF_RESOURCES: 4,
  UNSUPPORTED_OPCODE: 5
} as const

const resultNames = new Map<number, string>(Object.entries(NatPmpResultCode).map(([name, code]) => [code, name]))

/**
 * 'NOT_AUTHORIZED' for 2. RFC 6886 §3.5: "Clients MUST be able to properly handle result codes
 * not defined in this document", so an undefined code keeps its number: 'UNKNOWN_9'.
 */
export function natPmpResultName (code: number): string {
  return resultNames.get(code) ?? `UNKNOWN_${code}`
}
