import type { SigningKey } from '../../shared/hmac-signing.ts'

/**
 * INTERNAL_HMAC_KEYS "keyid:secret,keyid2:secret2" → the keys, in order. The first signs our
 * own calls; all of them verify incoming ones, so a new key can be rolled out (added second
 * everywhere, then moved first) without a moment where calls fail.
 */
export function parseSigningKeys(spec: string): SigningKey[] {
  return spec
    .split(',')
    .filter((entry) => entry.trim() !== '')
    .map((entry) => {
      const at = entry.indexOf(':')
      return { keyId: entry.slice(0, at).trim(), secret: entry.slice(at + 1).trim() }
    })
}
