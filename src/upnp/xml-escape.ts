import { UsageError } from '../errors.js'

/**
 * Escapes text for element content. CR becomes &#13; so it survives XML line-end normalisation;
 * characters XML 1.0 cannot carry at all are refused rather than silently dropped.
 */
export function escapeXml (text: string): string {
  let out = ''
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i)
    if (c >= 0xd800 && c <= 0xdbff) {
      const next = text.charCodeAt(i + 1)
      if (next >= 0xdc00 && next <= 0xdfff) {
        out += text[i]! + text[i + 1]!
        i++
        continue
      }
    }
    if ((c < 0x20 && c !== 0x09 && c !== 0x0a && c !== 0x0d) || (c >= 0xd800 && c <= 0xdfff) || c === 0xfffe || c === 0xffff) {
      throw new UsageError(`text has a character XML 1.0 cannot carry (U+${c.toString(16).padStart(4, '0')}): ${JSON.stringify(text.slice(0, 80))}`)
    }
    switch (c) {
      case 0x26: out += '&amp;'; break
      case 0x3c: out += '&lt;'; break
      case 0x3e: out += '&gt;'; break
      case 0x22: out += '&quot;'; break
      case 0x27: out += '&apos;'; break
      case 0x0d: out += '&#13;'; break
      default: out += text[i]!
    }
  }
  return out
}
