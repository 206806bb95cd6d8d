import assert from 'node:assert/strict'
import { resolve } from 'node:path'
import { test } from 'node:test'
import {
  type ComposeFile,
  type ComposeService,
  composeDurationMs,
  interpolate,
  loadImageConfig,
  ROOT,
  readYaml,
  SAMPLE_SECRETS,
} from './deploy-files.ts'

const compose = () => readYaml<ComposeFile>('deploy/compose.yaml')
const APP_COMMANDS: Record<string, string[]> = {
  migrate: ['node', 'src/main.ts', 'migrate', 'up'],
  api: ['node', 'src/main.ts', 'serve'],
  worker: ['node', 'src/main.ts', 'worker'],
  scheduler: ['node', 'src/main.ts', 'scheduler'],
}
const VARS = { JWT_SECRET: SAMPLE_SECRETS.JWT_SECRET as string }

function service(name: string): ComposeService {
  const found = compose().services[name]
  assert.ok(found, `compose.yaml has no service ${name}`)
  return found
}

function environment(name: string, vars: Record<string, string> = VARS): Record<string, string> {
  return Object.fromEntries(
    Object.entries(service(name).environment ?? {}).map(([key, value]) => [
      key,
      interpolate(String(value ?? ''), vars),
    ]),
  )
}

test('compose: the servekit services build the one image and run their own commands', () => {
  const { services } = compose()
  const built = Object.keys(services).filter((name) => services[name]?.build !== undefined)
  assert.deepEqual(built.sort(), Object.keys(APP_COMMANDS).sort())
  const images = new Set<string | undefined>()
  for (const [name, command] of Object.entries(APP_COMMANDS)) {
    const { build, image, command: actual } = service(name)
    assert.deepEqual(actual, command, name)
    assert.equal(resolve(ROOT, 'deploy', build?.context ?? '.'), resolve(ROOT), `${name} context`)
    assert.equal(build?.dockerfile, 'deploy/Dockerfile', name)
    images.add(image)
  }
  assert.equal(images.size, 1, 'the servekit services name different images')
})

test('compose: migrate runs once before the API, worker and scheduler start', () => {
  const { services } = compose()
  assert.equal(service('migrate').restart, 'no')
  for (const name of ['api', 'worker', 'scheduler']) {
    assert.equal(
      service(name).depends_on?.migrate?.condition,
      'service_completed_successfully',
      `${name} must wait for migrate to finish`,
    )
  }
  for (const [name, definition] of Object.entries(services)) {
    for (const [dependency, { condition }] of Object.entries(definition.depends_on ?? {})) {
      const target = services[dependency]
      assert.ok(target, `${name} depends on a missing service ${dependency}`)
      if (condition === 'service_healthy') {
        assert.ok(
          target.healthcheck?.test && !target.healthcheck.disable,
          `${name} waits for ${dependency} to be healthy, which has no healthcheck`,
        )
      }
    }
  }
  assert.equal(service('migrate').depends_on?.mariadb?.condition, 'service_healthy')
})

test('compose: MariaDB and Redis have healthchecks; only the API keeps the /health check', () => {
  assert.match(String(service('mariadb').image), /^(mariadb|mysql):/)
  assert.match(String(service('redis').image), /^redis:/)
  for (const name of ['mariadb', 'redis']) {
    assert.ok(service(name).healthcheck?.test, `${name} has no healthcheck`)
  }
  const apiCheck = service('api').healthcheck
  assert.ok(!apiCheck?.disable)
  assert.match(JSON.stringify(apiCheck?.test), /127\.0\.0\.1:8000\/health/)
  // The image's HEALTHCHECK asks /health, which no worker, scheduler or migration serves.
  for (const name of ['migrate', 'worker', 'scheduler']) {
    assert.equal(service(name).healthcheck?.disable, true, `${name} would be marked unhealthy`)
  }
  assert.ok(service('api').ports?.includes('8000:8000'))
})

test('compose: app environments load in prod, distributed, on the compose hosts', () => {
  const hosts = new Set(Object.keys(compose().services))
  const workerIds = new Map<number, string>()
  for (const name of Object.keys(APP_COMMANDS)) {
    const config = loadImageConfig(environment(name))
    assert.equal(config.APP_ENV, 'prod', name)
    assert.equal(config.HOST, '0.0.0.0', name)
    assert.equal(config.PORT, 8000, name)
    assert.ok(hosts.has(new URL(config.DATABASE_URL).hostname), `${name}: DATABASE_URL host`)
    assert.ok(hosts.has(new URL(config.REDIS_URL ?? 'redis://none').hostname), `${name}: REDIS_URL`)
    // Snowflake ids collide when two processes share a worker id.
    assert.ok(config.WORKER_ID !== undefined, `${name}: WORKER_ID`)
    assert.equal(workerIds.get(config.WORKER_ID), undefined, `${name}: WORKER_ID reused`)
    workerIds.set(config.WORKER_ID, name)

    const stopMs = composeDurationMs(service(name).stop_grace_period ?? '10s')
    assert.ok(
      config.SHUTDOWN_DELAY_MS + config.SHUTDOWN_GRACE_MS < stopMs,
      `${name}: docker stop would SIGKILL before the drain ends`,
    )
  }
})

test('compose: JWT_SECRET must come from the caller; there is no default to forget', () => {
  assert.throws(() => environment('api', {}), /JWT_SECRET is required/)
  assert.equal(environment('api').JWT_SECRET, VARS.JWT_SECRET)
  assert.equal(interpolate(`\${A:-x}-\${B}`, {}), 'x-')
  assert.equal(composeDurationMs('1m30s'), 90_000)
})
