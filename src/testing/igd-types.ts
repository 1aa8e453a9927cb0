/**
 * What a test sees of a SimulatedIgd besides the class: its quirk switches (with their
 * defaults), the entries of its mapping table, and its request log. Here, apart from igd.ts, so
 * that its SSDP responder, HTTP server and actions (igd-ssdp.ts, igd-http.ts, igd-actions.ts) can
 * share them without importing igd.ts.
 */

/** Router behaviours a test switches on. Off by default, except those miniupnpd 2.3.1 has (`lowPortsRefused`, `emptyInternalClientFails`). */
export interface IgdQuirks {
  /** Answers multicast M-SEARCH only, never unicast to gateway:1900 (Eero: tailscale#3197). */
  ignoreUnicastSsdp: boolean
  /** Answers nothing over SSDP at all. */
  silentSsdp: boolean
  /** SSDP replies come from an ephemeral port, not the one searched (TP-Link ER605: tailscale#7377, #10771). */
  replyFromEphemeralPort: boolean
  /** The host named in LOCATION, instead of the HTTP server's (a HONOR router says 169.254.x: home-assistant#63745). */
  locationHost: string | undefined
  /** 725 OnlyPermanentLeasesSupported for any lease but 0 (MikroTik: tailscale#9343). */
  onlyPermanentLeases: boolean
  /** 402 InvalidArgs for any lease but 0 (ARRIS NVG578LX: tailscale#15223). */
  invalidArgsOnLease: boolean
  /** Answer 718 ConflictInMappingEntry to this many more AddPortMapping requests. */
  conflictNext: number
  /** 402 unless NewProtocol is exactly "TCP" or "UDP" (TP-Link ER605: tailscale#7377, PR #7458). */
  rejectLowerCaseProtocol: boolean
  /** Two WAN connection services, the first disconnected with no address (MikroTik CHR 7.10: tailscale#8364). */
  firstWanDisconnected: boolean
  /** AddAnyPortMapping is answered by resetting the connection (Ubee EVW32C-0S: miniupnp#528). */
  resetAddAnyPortMapping: boolean
  /** The SOAPAction header must be named and quoted exactly, or a login page comes back (goupnp PR #5, jupnp#120). */
  strictSoapAction: boolean
  /** Bodies sent with chunked transfer encoding (BiPAC 7404VNOX, per miniupnpc's minisoap.c). */
  chunkedResponses: boolean
  /** Refuse external and internal ports below 1024, as miniupnpd's default rules do (606 on v2, 718 on v1; AddAnyPortMapping walks past a low external port, and answers 728 for a low internal one). Default true. */
  lowPortsRefused: boolean
  /** The description names absolute control URLs on this host (a description that points elsewhere: the SSRF case). */
  controlUrlHost: string | undefined
  /** Faults to answer, in order, to the next requests for their action (any UPnP error code). */
  faultNext: Array<{ action: string, code: number }>
  /** GetGenericPortMappingEntry answers 713 even at index 0: listing unsupported (Sagemcom F@st 5684, miniupnp#665). */
  noListing: boolean
  /** A leased add (lease not 0) is answered with success and kept nowhere (old DD-WRT: tailscale#18196, quirk 10). */
  dropLeasedEntries: boolean
  /** Entries are kept, listed and "forwarded" with the external port as the internal one (Orange FunBox6, SoftAtHome: tailscale#14344, quirk 28). */
  listExternalAsInternalPort: boolean
  /** The next request for each action listed is carried out, then the connection reset instead of the answer: a lost reply (quirk 11). */
  applyThenResetNext: string[]
  /** GetStatusInfo says Disconnected although mappings work (a router on :5351: i2pd PR #2092, quirk 19). */
  statusDisconnected: boolean
  /** Every HTTP request is answered after this delay, on the IGD's clock (a slow router; for tests that interrupt a client mid-request). */
  httpDelayMs: number
  /**
   * An add over an existing entry keeps it listed but marks it `stale` (forwarding dead); only a
   * delete and a fresh add make it work (Technicolor CGA4131COM, RDK-B: tailscale#21208, quirk 27).
   */
  staleOnOverwrite: boolean
  /**
   * Descriptions are read back cut after this many bytes of the text as it was sent (escaped,
   * UTF-8), entities and all, so the reply may not be XML: miniupnpd up to 2.3.10 copies them
   * into `char desc[64]` (upnpsoap.c; the lab's 2.3.1 answered `&am` then stack bytes).
   */
  descriptionBytesKept: number | undefined
  /**
   * An AddPortMapping with an empty NewInternalClient fails with 501 ActionFailed: miniupnpd
   * 2.3.1 takes its dual-stack HTTP socket's "::ffff:a.b.c.d" for the client, which no rule
   * accepts (seen in the lab; miniupnp#236 meant it as "the requester"). Default true; false
   * maps to the requester.
   */
  emptyInternalClientFails: boolean
  /** 714 NoSuchEntryInArray for a DeletePortMapping of an entry that is not there, as the spec says (miniupnpd 2.3.1 with nftables answers success). */
  noSuchEntryOnDelete: boolean
  /** An action posted to another service's control URL, or in another service's namespace, gets 401 (libtorrent#6611); miniupnpd finds any action by its name. */
  strictServiceType: boolean
  /**
   * The table holds at most this many entries: an add of a new one beyond it gets 728
   * NoPortMapsAvailable, what the IGD spec gives for a full table (a router out of room).
   */
  maxMappings: number | undefined
  /**
   * A DeletePortMappingRange over more than this many entries kills the router mid-request (the
   * connection reset, nothing deleted): miniupnpd 2.3.1-2.3.3 with nftables overflows a 128-entry
   * array there (nftnlrdr.c get_portmappings_in_range, fixed in a1ade45). The lab's 2.3.1 does it at 200.
   */
  rangeDeleteCrashAbove: number | undefined
  /** WANIPv6FirewallControl: GetFirewallStatus says FirewallEnabled 0 and every other action answers 702 FirewallDisabled (miniupnpd's IPV6FCFWDISABLEDMASK). */
  firewallDisabled: boolean
  /** WANIPv6FirewallControl: InboundPinholeAllowed 0 and 703 InboundPinholeNotAllowed for the pinhole actions (IPV6FCINBOUNDDISALLOWEDMASK). */
  inboundPinholesDisallowed: boolean
  /** GetOutboundPinholeTimeout's answer in seconds (a router that drops idle flows early); undefined: 501 ActionFailed, as miniupnpd 2.3.1 always answers (a TODO in upnpsoap.c). */
  outboundPinholeTimeoutSeconds: number | undefined
  /** Room for this many pinholes; AddPinhole beyond it answers 701 PinholeSpaceExhausted. Default: no limit. */
  maxPinholes: number | undefined
  /** UpdatePinhole of an unknown UniqueID answers 402 InvalidArgs, not 704: what miniupnpd 2.3.1 answers after a restart (lab). */
  unknownPinholeInvalidArgs: boolean
}

/** Every quirk off, except what miniupnpd 2.3.1 does (`lowPortsRefused`, `emptyInternalClientFails`). */
export function defaultIgdQuirks (): IgdQuirks {
  return {
    ignoreUnicastSsdp: false,
    silentSsdp: false,
    replyFromEphemeralPort: false,
    locationHost: undefined,
    onlyPermanentLeases: false,
    invalidArgsOnLease: false,
    conflictNext: 0,
    rejectLowerCaseProtocol: false,
    firstWanDisconnected: false,
    resetAddAnyPortMapping: false,
    strictSoapAction: false,
    chunkedResponses: false,
    lowPortsRefused: true,
    controlUrlHost: undefined,
    faultNext: [],
    noListing: false,
    dropLeasedEntries: false,
    listExternalAsInternalPort: false,
    applyThenResetNext: [],
    statusDisconnected: false,
    httpDelayMs: 0,
    staleOnOverwrite: false,
    descriptionBytesKept: undefined,
    emptyInternalClientFails: true,
    noSuchEntryOnDelete: false,
    strictServiceType: false,
    maxMappings: undefined,
    unknownPinholeInvalidArgs: false,
    rangeDeleteCrashAbove: undefined,
    firewallDisabled: false,
    inboundPinholesDisallowed: false,
    outboundPinholeTimeoutSeconds: undefined,
    maxPinholes: undefined
  }
}

export interface SimulatedIgdMapping {
  externalPort: number
  protocol: 'TCP' | 'UDP'
  internalClient: string
  internalPort: number
  description: string
  /** As granted; 0 = permanent. */
  leaseSeconds: number
  expiresAtMs: number
  enabled: boolean
  /** Listed, but no longer forwarded: re-added over itself on a router with `staleOnOverwrite` (quirk 27). */
  stale?: boolean
}

export interface IgdRequest {
  kind: 'ssdp' | 'http'
  /** For SSDP: which socket it reached. */
  via?: 'unicast' | 'multicast'
  /** The SSDP search target, or the SOAP action ('GET' for a description). */
  what: string
  from: string
  atMs: number
  /** For HTTP: the path asked for (a control URL's, or a document's). */
  path?: string
  /** For SOAP: the service type the action was sent in (its namespace). */
  service?: string
  /** SOAP arguments in order. */
  args?: Array<[string, string]>
  /** The UPnP error code answered, if any. */
  fault?: number
}

/** The table and what the actions read, as they see it at one request (igd-actions.ts). */
export interface IgdState {
  readonly igdVersion: 1 | 2
  readonly externalAddress: string
  readonly quirks: IgdQuirks
  /** In the order made; listed newest first, as miniupnpd's chain is. */
  readonly mappings: Map<string, SimulatedIgdMapping>
  readonly nowMs: number
  /** Seconds since the IGD (re)started, for NewUptime. */
  readonly uptimeSeconds: number
  /** The WAN connection device's UDN, for Layer3Forwarding's default connection service. */
  readonly wanConnectionUdn: string
  /** WANIPv6FirewallControl's pinholes (expired ones purged); undefined when the IGD does not serve the service. */
  readonly pinholes: PinholeTable | undefined
}

/** An IPv6 pinhole, as miniupnpd keeps one (its nftables rule and its UniqueID). */
export interface SimulatedIgdPinhole {
  uniqueId: number
  /** '' for any remote host. */
  remoteHost: string
  /** 0 for any remote port. */
  remotePort: number
  internalClient: string
  internalPort: number
  /** The IANA protocol number: 6 TCP, 17 UDP. */
  protocol: number
  leaseSeconds: number
  expiresAtMs: number
  /** Packets it let through (CheckPinholeWorking, GetPinholePackets); SimulatedIgd.pinholeTraffic() adds to it. */
  packets: number
}

/** The pinholes and the next UniqueID, which miniupnpd counts from 1 and wraps before 65535 (nftpinhole.c next_uid). */
export interface PinholeTable {
  readonly entries: Map<number, SimulatedIgdPinhole>
  nextUid: number
}
