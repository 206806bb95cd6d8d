/** A dependency whose health decides whether this process should get traffic. */
export interface ReadinessCheck {
  name: string
  check(): Promise<void>
}

export interface ReadinessReport {
  isReady: boolean
  checks: Record<string, 'ok' | 'draining' | string>
}

/** Collects the checks the container registers and answers /ready. */
export class Readiness {
  #checks: ReadinessCheck[] = []
  #isDraining = false
  readonly #timeoutMs: number

  constructor(timeoutMs = 2000) {
    this.#timeoutMs = timeoutMs
  }

  add(check: ReadinessCheck): void {
    this.#checks.push(check)
  }

  /** From now on /ready answers 503, so load balancers stop sending traffic. */
  startDraining(): void {
    this.#isDraining = true
  }

  get isDraining(): boolean {
    return this.#isDraining
  }

  async report(): Promise<ReadinessReport> {
    const checks: ReadinessReport['checks'] = {}
    let isReady = !this.#isDraining
    if (this.#isDraining) checks.server = 'draining'
    await Promise.all(
      this.#checks.map(async ({ name, check }) => {
        try {
          await withTimeout(check(), this.#timeoutMs)
          checks[name] = 'ok'
        } catch (error) {
          isReady = false
          checks[name] = `failing: ${redactSecrets((error as Error)?.message || 'no answer')}`
        }
      }),
    )
    return { isReady, checks }
  }
}

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms)
  })
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer))
}

/**
 * /ready is public: a driver's message may carry a connection string or a password=... pair
 * (a bad DATABASE_URL, a TLS option). Credentials in URLs and key=value secrets are masked, and
 * the text is cut short.
 */
export function redactSecrets(message: string): string {
  const masked = message
    .replace(/(\b[a-z][a-z0-9+.-]*:\/\/)[^\s/@]+@/gi, '$1***@')
    .replace(
      /\b(password|passwd|pwd|secret|token|api[_-]?key)(\s*[=:]\s*)("[^"]*"|'[^']*'|[^\s,;&)]+)/gi,
      '$1$2***',
    )
  return masked.length > 200 ? `${masked.slice(0, 200)}…` : masked
}
