/**
 * Server epoch validation: has the gateway lost its mapping state since the last reply?
 *
 * Every PCP reply carries the server's Epoch Time and every NAT-PMP reply its Seconds Since
 * Start of Epoch; a gateway resets the count when it reboots or loses its mappings (RFC 6887
 * §8.5, RFC 6886 §3.6), and a client that notices renews everything at once. Pure: the caller
 * passes both clocks' readings and keeps the previous sample.
 */

export interface EpochSample { serverEpochSeconds: number, clientTimeMs: number }

/**
 * True when `current` is consistent with `previous` (the server did not lose state). The first
 * sample (previous undefined) is valid.
 *
 * RFC 6887 §8.5, "using integer arithmetic":
 *
 *   o  If this is the first PCP response the client has received from this PCP server, the
 *      Epoch Time value is treated as necessarily valid, otherwise
 *      *  If the current PCP server Epoch time (curr_server_time) is less than the previously
 *         received PCP server Epoch time (prev_server_time) by more than one second, then the
 *         client treats the Epoch time as obviously invalid (time should not go backwards).
 *         The server Epoch time apparently going backwards by *up to* one second is not deemed
 *         invalid, so that minor packet reordering [...] does not trigger a cascade of
 *         unnecessary mapping renewals. [...]
 *         +  client_delta = curr_client_time - prev_client_time;
 *         +  server_delta = curr_server_time - prev_server_time;
 *         +  If client_delta+2 < server_delta - server_delta/16
 *            or server_delta+2 < client_delta - client_delta/16,
 *            then the client treats the Epoch Time value as invalid,
 *            else the client treats the Epoch Time value as valid.
 *
 * The "+2" absorbs each clock's one-second quantization, the "/16" cheap clocks drifting up to
 * 6.25% apart. Two points of interpretation:
 *
 * - client_delta is in whole seconds, the elapsed milliseconds rounded down (quantization under
 *   one second, which the "+2" covers).
 * - The deltas are signed here. The RFC notes its formulas were "constructed to allow
 *   client_delta and server_delta to be computed as unsigned integer values", but with unsigned
 *   arithmetic the tolerated one-second step backwards (server_delta = -1) wraps to 2^32 - 1 and
 *   fails the next test, contradicting the sentence before it. Signed arithmetic keeps both
 *   sentences true; `/16` truncates toward zero as C's integer division does.
 *
 * The RFC calls a client clock that runs backwards "a client bug" whose handling "is
 * implementation specific"; the formula is applied as is, which flags all but small reversals.
 *
 * For NAT-PMP, RFC 6886 §3.6 states its own test: invalid when the new value is more than 2 s
 * below previous + 7/8 of the client's elapsed time. The two agree on a real reboot (the epoch
 * restarting from zero well below where it should be) and differ only at the margins: the §8.5
 * test also flags a server clock running more than 1/16 fast, and with whole-second deltas it
 * tolerates a second or two more when the samples are only a few seconds apart. A false alarm
 * costs one early renewal per mapping; a missed reboot is caught at the next renewal.
 */
export function isEpochValid (previous: EpochSample | undefined, current: EpochSample): boolean {
  if (previous === undefined) return true
  const serverDelta = current.serverEpochSeconds - previous.serverEpochSeconds
  if (serverDelta < -1) return false
  const clientDelta = Math.floor((current.clientTimeMs - previous.clientTimeMs) / 1000)
  const invalid = clientDelta + 2 < serverDelta - Math.trunc(serverDelta / 16) ||
    serverDelta + 2 < clientDelta - Math.trunc(clientDelta / 16)
  return !invalid
}
