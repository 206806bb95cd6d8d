import assert from 'node:assert/strict'
import { join } from 'node:path'
import { test } from 'node:test'
import { scratchDir } from '../helpers/app.ts'
import { freePort, runCli, stopOnExit, waitForOk } from '../helpers/process.ts'
import { serviceUrls, useRedisPrefix, whenReachable } from '../helpers/services.ts'

test(
  'the worker and the scheduler serve their own /metrics on METRICS_PORT',
  await whenReachable('redis'),
  async (t) => {
    const { prefix } = await useRedisPrefix(t)
    const env = {
      APP_ENV: 'test',
      APP_NAME: prefix,
      REDIS_URL: serviceUrls.redis,
      DATABASE_URL: `sqlite:${join(scratchDir(), 'jobs.db')}`,
    }
    const migrate = runCli(['migrate', 'up'], env)
    assert.equal(await migrate.exited, 0, migrate.output())
    for (const command of ['worker', 'scheduler']) {
      const port = await freePort()
      const running = runCli([command], { ...env, METRICS_PORT: String(port) })
      t.after(stopOnExit(running))
      await waitForOk(`http://127.0.0.1:${port}/health`, 20_000)
      const metrics = await fetch(`http://127.0.0.1:${port}/metrics`)
      assert.equal(metrics.status, 200)
      assert.match(metrics.headers.get('content-type') ?? '', /text\/plain/)
      const text = await metrics.text()
      assert.match(
        text,
        /^# HELP process_resident_memory_bytes/m,
        `${command} exposes process metrics`,
      )
      assert.match(text, /nodejs_eventloop_lag/, `${command} exposes event-loop delay`)
      running.child.kill('SIGTERM')
      assert.equal(await running.exited, 0, running.output())
    }
  },
)
