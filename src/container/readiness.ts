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
          checks[name] = `failing: ${(error as Error).message || 'no answer'}`
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
