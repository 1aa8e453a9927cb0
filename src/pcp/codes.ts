/**
 * PCP constants and code tables (RFC 6887). Complete for the RFC and lossless: a code the RFC
 * does not define still prints, as `UNKNOWN_<n>`.
 */

/** RFC 6887 §7.1: "PCP clients and servers compliant with this document use the value 2." */
export const PCP_VERSION = 2

/**
 * RFC 6887 §19.1: "PCP uses ports 5350 and 5351, previously assigned by IANA to NAT-PMP". Sharing
 * the port is what lets version negotiation (§9, Appendix A) discover a NAT-PMP-only gateway.
 */
export const PCP_SERVER_PORT = 5351

/** RFC 6887 §14.1: a restarted server multicasts unsolicited ANNOUNCE responses to 224.0.0.1:5350 and [ff02::1]:5350. */
export const PCP_CLIENT_PORT = 5350

/** RFC 6887 §7: "with a maximum UDP payload length of 1100 octets". */
export const PCP_MAX_PACKET = 1100

/** RFC 6887 §19.2. */
export const PcpOpcode = { ANNOUNCE: 0, MAP: 1, PEER: 2 } as const

/** RFC 6887 §7.4. */
export const PcpResultCode = {
  SUCCESS: 0,
  UNSUPP_VERSION: 1,
  NOT_AUTHORIZED: 2,
  MALFORMED_REQUEST: 3,
  UNSUPP_OPCODE: 4,
  UNSUPP_OPTION: 5,
  MALFORMED_OPTION: 6,
  NETWORK_FAILURE: 7,
  NO_RESOURCES: 8,
  UNSUPP_PROTOCOL: 9,
  USER_EX_QUOTA: 10,
  CANNOT_PROVIDE_EXTERNAL: 11,
  ADDRESS_MISMATCH: 12,
  EXCESSIVE_REMOTE_PEERS: 13
} as const

const resultNames = new Map<number, string>(Object.entries(PcpResultCode).map(([name, code]) => [code, name]))

/** 'NOT_AUTHORIZED' for 2; an undefined code keeps its number: 'UNKNOWN_14'. */
export function pcpResultName (code: number): string {
  return resultNames.get(code) ?? `UNKNOWN_${code}`
}

/**
 * RFC 6887 §7.4 classifies each error as 'long lifetime' or 'short lifetime' ("It is RECOMMENDED
 * that short lifetime errors use a 30-second lifetime and long lifetime errors use a 30-minute
 * lifetime"). The short ones are transient conditions worth retrying after the reply's
 * lifetime: NETWORK_FAILURE, NO_RESOURCES and USER_EX_QUOTA. (CANNOT_PROVIDE_EXTERNAL is
 * neither: "The error lifetime depends on the reason for the failure.")
 */
export function isShortLifetimeError (code: number): boolean {
  return code === PcpResultCode.NETWORK_FAILURE || code === PcpResultCode.NO_RESOURCES || code === PcpResultCode.USER_EX_QUOTA
}

/** RFC 6887 §13 (THIRD_PARTY §13.1, PREFER_FAILURE §13.2, FILTER §13.3). */
export const PcpOptionCode = { THIRD_PARTY: 1, PREFER_FAILURE: 2, FILTER: 3 } as const

/**
 * The MAP Protocol field takes IANA protocol numbers (RFC 6887 §11.1: "6 (TCP) ... 17 (UDP)";
 * 0 means all protocols).
 */
export const IanaProtocol = { tcp: 6, udp: 17 } as const
