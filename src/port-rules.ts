/**
 * Why a router refuses a low internal port, in plain words, for the refusal's message. Facts,
 * not guesses: miniupnpd's sample rules, which its configuration advises keeping, are
 * `allow 1024-65535 <lan> 1024-65535` then `deny 0-65535 0.0.0.0/0 0-65535` (miniupnpd.conf),
 * and a request outside them is answered PCP/NAT-PMP NOT_AUTHORIZED, UPnP 606 on IGD v2 (718
 * without IGD_V2) or 728 to AddAnyPortMapping (pcpserver.c, natpmp.c, upnpsoap.c); TP-Link
 * refuses low ports too (tailscale PR #7457). Seen in the lab: `natmapper map 80 --once`.
 */
export const LOWEST_COMMONLY_PERMITTED_PORT = 1024

/** The explanation for a refusal of `internalPort`, or undefined when the port is not a low one. */
export function lowPortHint (internalPort: number): string | undefined {
  if (internalPort >= LOWEST_COMMONLY_PERMITTED_PORT) return undefined
  return `internal port ${internalPort} is outside what the router permits: many routers allow only ports ` +
    `${LOWEST_COMMONLY_PERMITTED_PORT}-65535 (miniupnpd's default rules); use an internal port from ${LOWEST_COMMONLY_PERMITTED_PORT} up`
}
