import { escapeXml } from './xml-escape.js'

/**
 * The most bytes of a mapping description that routers keep, counted as sent: XML-escaped,
 * UTF-8. miniupnpd up to 2.3.10 reads an entry's description back into `char desc[64]` with
 * strncpy (upnpsoap.c GetSpecificPortMappingEntry and GetGenericPortMappingEntry,
 * netfilter_nft/nftnlrdr.c get_redirect_rule_by_index), so one of 64 bytes or more comes back
 * cut there with stack bytes after it (seen in the lab: `&am` then garbage, and `natmapper list`
 * failed on it); its pf backend keeps 63 bytes in the rule label (pf/obsdrdr.c,
 * PF_RULE_LABEL_SIZE). It stores the text as it arrived, entities and all (upnpreplyparse.c
 * decodes none), so the limit holds for the escaped form. 2.3.11 raised it to 1024 on
 * netfilter only (miniupnp commit b393e45).
 */
export const MAX_MAPPING_DESCRIPTION_BYTES = 63

/**
 * `text` cut to what routers keep (MAX_MAPPING_DESCRIPTION_BYTES once escaped), on a code
 * point: never inside a UTF-8 sequence, a surrogate pair or an entity such as `&amp;`. A
 * character XML cannot carry is a UsageError, as escapeXml has it.
 */
export function capDescription (text: string): string {
  let bytes = 0
  let end = 0
  for (const char of text) {
    const escaped = escapeXml(char)
    const size = escaped === char ? utf8Length(char.codePointAt(0)!) : escaped.length
    if (bytes + size > MAX_MAPPING_DESCRIPTION_BYTES) break
    bytes += size
    end += char.length
  }
  return text.slice(0, end)
}

function utf8Length (codePoint: number): number {
  return codePoint < 0x80 ? 1 : codePoint < 0x800 ? 2 : codePoint < 0x10000 ? 3 : 4
}
