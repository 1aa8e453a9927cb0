import { FirewallDisabledError, GatewayRefusedError, InboundPinholeNotAllowedError, NoResponseError } from '../errors.js'

/** Retry and pacing waits of the NAT manager: after failed requests, between rediscoveries, between re-mappings after resets. */

/** Retry waits after a failed request (the NAT manager's), before the mapping's own renewal time applies. */
const RETRY_BASE_MS = 5_000
const RETRY_MAX_MS = 5 * 60_000
/**
 * After "connection refused" the first retry comes soon (rediscovery may have found the gateway
 * meanwhile), then they back off like any other failure: a gateway that is gone for good must
 * not get a request per mapping every second (quirk 41: tailscale#4237, #1001).
 */
const REFUSED_RETRY_BASE_MS = 1_000
/**
 * A refusal that means "not for this host" (PCP and NAT-PMP NOT_AUTHORIZED, UPnP 606: a
 * FRITZ!Box without "permit independent port sharing", miniupnpd's deny rules; quirk 23,
 * tailscale#13145) is a setting on the router, not a passing state: retried rarely, and said
 * once (see NAT.refusal), not at every retry.
 */
const DISABLED_RETRY_BASE_MS = 15 * 60_000
const DISABLED_RETRY_MAX_MS = 4 * 3600_000
/**
 * A refusal that carries its own lifetime (PCP NO_RESOURCES and friends, RFC 6887 §7.4) is
 * retried after it; a refused connection soon, since rediscovery may have found the gateway;
 * anything else backs off exponentially. `failures` counts this one (1 for the first).
 */
export function retryDelayMs (failures: number, error: Error): number {
  const backOff = (baseMs: number, maxMs: number): number => Math.min(baseMs * 2 ** Math.min(failures - 1, 30), maxMs)
  const lifetimeMs = error instanceof GatewayRefusedError && error.lifetimeSeconds !== undefined ? error.lifetimeSeconds * 1000 : 0
  if (isNotAuthorized(error)) return Math.max(lifetimeMs, backOff(DISABLED_RETRY_BASE_MS, DISABLED_RETRY_MAX_MS))
  // RFC 6887 §7.4: a short-lifetime error (NO_RESOURCES, NETWORK_FAILURE, USER_EX_QUOTA) holds
  // for the lifetime in the reply; asking again sooner only gets the same answer (quirk 25).
  if (lifetimeMs > 0) return lifetimeMs
  if (error instanceof NoResponseError) return backOff(REFUSED_RETRY_BASE_MS, RETRY_MAX_MS)
  return backOff(RETRY_BASE_MS, RETRY_MAX_MS)
}

/**
 * PCP and NAT-PMP NOT_AUTHORIZED (2; RFC 6887 §7.4 lists it among the long-lifetime errors),
 * UPnP 606 Action not authorized, IPv6 firewall 702/703: the router will not map for this host until someone changes
 * its settings (quirk 23).
 */
export function isNotAuthorized (error: Error): boolean {
  if (!(error instanceof GatewayRefusedError)) return false
  // An IPv6 firewall that is off or lets no pinholes in (702, 703) is as much the router's setting.
  if (error instanceof FirewallDisabledError || error instanceof InboundPinholeNotAllowedError) return true
  return error.protocol === 'upnp' ? error.resultCode === 606 : error.resultCode === 2
}

/** Rediscoveries at most this often, doubling while they keep failing, up to the maximum (quirk 41). */
const REDISCOVERY_MIN_INTERVAL_MS = 15_000
const REDISCOVERY_MAX_INTERVAL_MS = 30 * 60_000
/**
 * Re-mappings after a reset (an epoch that went backwards, an announcement, SSDP alive) at most
 * this often, doubling while they come in a row: a gateway whose epoch is frozen, or a LAN host
 * that spoofs announcements, would otherwise have every mapping made again every few seconds.
 */
const RECOVERY_MIN_INTERVAL_MS = 30_000
const RECOVERY_MAX_INTERVAL_MS = 30 * 60_000

/** How long after the previous rediscovery the next may start, after `failures` failed ones in a row. */
export function rediscoveryIntervalMs (failures: number): number {
  return Math.min(REDISCOVERY_MIN_INTERVAL_MS * 2 ** Math.min(failures, 30), REDISCOVERY_MAX_INTERVAL_MS)
}

/** How long a re-mapping after a reset must wait so that resets in a row re-map at a falling pace. */
export function recoveryHoldMs (lastRecoveryMs: number | undefined, streak: number, nowMs: number): number {
  const sinceLastMs = lastRecoveryMs === undefined ? Infinity : nowMs - lastRecoveryMs
  const intervalMs = Math.min(RECOVERY_MIN_INTERVAL_MS * 2 ** Math.min(streak, 30), RECOVERY_MAX_INTERVAL_MS)
  return Math.max(0, intervalMs - sinceLastMs)
}

/** The streak after a re-mapping fired at `firedMs`: it starts over after a long quiet spell. */
export function nextRecoveryStreak (lastRecoveryMs: number | undefined, streak: number, firedMs: number): number {
  const gapMs = lastRecoveryMs === undefined ? Infinity : firedMs - lastRecoveryMs
  return gapMs < 2 * RECOVERY_MAX_INTERVAL_MS ? streak + 1 : 0
}
