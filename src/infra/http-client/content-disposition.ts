/**
 * The file name a server suggests in Content-Disposition (RFC 6266), preferring the RFC 8187
 * `filename*` form (charset'language'percent-encoded) over plain `filename`. The name comes
 * from a remote server, so it is reduced to a bare, safe file name: no directories, no control
 * characters, no "." or "..".
 */
export function filenameFromContentDisposition(header: string | undefined): string | undefined {
  if (!header) return undefined
  const params = parseParameters(header)
  const extended = params.get('filename*')
  const decoded = extended === undefined ? undefined : decodeExtValue(extended)
  const name = decoded ?? params.get('filename')
  return name === undefined ? undefined : safeFilename(name)
}

/** Reduces an untrusted name to its last path segment without control characters. */
export function safeFilename(name: string): string | undefined {
  // Backslashes too: a Windows path sent by a server must not become a directory here.
  const last = name.split(/[/\\]/).pop() ?? ''
  // biome-ignore lint/suspicious/noControlCharactersInRegex: stripping them is the point
  const cleaned = last.replace(/[\u0000-\u001f\u007f]/g, '').trim()
  if (cleaned === '' || cleaned === '.' || cleaned === '..') return undefined
  return cleaned.length > 255 ? cleaned.slice(0, 255) : cleaned
}

const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+/

/** Parameters after the disposition type, names lower-cased; the first of a repeated name wins. */
function parseParameters(header: string): Map<string, string> {
  const params = new Map<string, string>()
  let rest = header.trim()
  const type = TOKEN.exec(rest)
  if (!type) return params
  rest = rest.slice(type[0].length)
  while (true) {
    rest = rest.trimStart()
    if (!rest.startsWith(';')) break
    rest = rest.slice(1).trimStart()
    const name = TOKEN.exec(rest)
    if (!name) break
    rest = rest.slice(name[0].length).trimStart()
    if (!rest.startsWith('=')) break
    rest = rest.slice(1).trimStart()
    let value: string
    if (rest.startsWith('"')) {
      const quoted = readQuoted(rest)
      if (!quoted) break
      value = quoted.value
      rest = rest.slice(quoted.length)
    } else {
      // Lenient: many servers send unquoted names with spaces or UTF-8; take up to the next ";".
      const end = rest.indexOf(';')
      value = (end === -1 ? rest : rest.slice(0, end)).trim()
      rest = end === -1 ? '' : rest.slice(end)
    }
    const key = name[0].toLowerCase()
    if (!params.has(key)) params.set(key, value)
  }
  return params
}

function readQuoted(text: string): { value: string; length: number } | undefined {
  let value = ''
  for (let index = 1; index < text.length; index++) {
    const char = text[index]
    if (char === '\\' && index + 1 < text.length) {
      value += text[index + 1]
      index++
    } else if (char === '"') {
      return { value, length: index + 1 }
    } else {
      value += char
    }
  }
  return undefined
}

/** RFC 8187 ext-value: charset "'" [language] "'" value-chars (percent-encoded). */
function decodeExtValue(text: string): string | undefined {
  const match = /^([\w!#$%&+^`{}~-]+)'[\w-]*'(.*)$/.exec(text)
  if (!match) return undefined
  const charset = (match[1] as string).toLowerCase()
  const encoded = match[2] as string
  const bytes: number[] = []
  for (let index = 0; index < encoded.length; index++) {
    const char = encoded.charCodeAt(index)
    if (char === 0x25) {
      const hex = encoded.slice(index + 1, index + 3)
      if (!/^[0-9A-Fa-f]{2}$/.test(hex)) return undefined
      bytes.push(Number.parseInt(hex, 16))
      index += 2
    } else if (char < 0x80) {
      bytes.push(char)
    } else {
      return undefined
    }
  }
  const buffer = Buffer.from(bytes)
  if (charset === 'utf-8') {
    try {
      return new TextDecoder('utf-8', { fatal: true }).decode(buffer)
    } catch {
      return undefined
    }
  }
  if (charset === 'iso-8859-1') return buffer.toString('latin1')
  return undefined
}
