import assert from 'node:assert/strict'
import { join } from 'node:path'
import { test } from 'node:test'
import { scratchDir } from '../helpers/app.ts'
import { freePort, runCli, stopOnExit, waitForOk } from '../helpers/process.ts'
import { serviceUrls, useRedisPrefix, whenReachable } from '../helpers/services.ts'

test(
  'past the limit requests get 429 with Retry-After, counted across two processes sharing Redis',
  await whenReachable('redis'),
  async (t) => {
    const { prefix: name } = await useRedisPrefix(t)
    const env = {
      APP_ENV: 'test',
      APP_NAME: name,
      REDIS_URL: serviceUrls.redis,
      DATABASE_URL: `sqlite:${join(scratchDir(), 'shared.db')}`,
      RATE_LIMIT_PER_MINUTE: '10',
      LOAD_SHED_MAX_EVENT_LOOP_DELAY_MS: '0',
      LOG_LEVEL: 'warn',
    }
    const ports = [await freePort(), await freePort()]
    const servers = ports.map((port) => runCli(['serve'], { ...env, PORT: String(port) }))
    for (const server of servers) t.after(stopOnExit(server))
    for (const port of ports) await waitForOk(`http://127.0.0.1:${port}/health`, 20_000)

    const statuses: number[] = []
    let limited: Response | undefined
    for (let i = 0; i < 14; i++) {
      const port = ports[i % 2]
      const response = await fetch(`http://127.0.0.1:${port}/api/items`)
      statuses.push(response.status)
      if (response.status === 429 && !limited) limited = response
      else await response.arrayBuffer()
    }
    assert.deepEqual(
      statuses.slice(0, 10),
      Array(10).fill(200),
      'ten requests pass, alternating servers',
    )
    assert.deepEqual(
      statuses.slice(10),
      Array(4).fill(429),
      'the eleventh is over the shared limit',
    )
    assert.ok(limited)
    assert.match(limited.headers.get('retry-after') ?? '', /^\d+$/)
    assert.equal(limited.headers.get('ratelimit-limit'), '10')
    const body = (await limited.json()) as { code: string; detail: string }
    assert.equal(body.code, 'RATE_LIMITED')
    assert.match(body.detail, /Rate limit exceeded/)
    assert.equal(
      (await fetch(`http://127.0.0.1:${ports[0]}/health`)).status,
      200,
      'probes are never limited',
    )

    for (const server of servers) server.child.kill('SIGTERM')
    assert.deepEqual(await Promise.all(servers.map((server) => server.exited)), [0, 0])
  },
)
