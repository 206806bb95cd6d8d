import assert from 'node:assert/strict'
import { join } from 'node:path'
import { test } from 'node:test'
import { createContainer } from '../../src/container/index.ts'
import { createGrpcChannelPool } from '../../src/infra/grpc/index.ts'
import { scratchDir, testConfig } from '../helpers/app.ts'
import { freePort, runCli, stopOnExit, waitForOk } from '../helpers/process.ts'

test('`serve` starts the gRPC server with HTTP and closes it on SIGTERM (exit 0)', async (t) => {
  const [httpPort, grpcPort] = [await freePort(), await freePort()]
  const run = runCli(['serve'], {
    APP_ENV: 'test',
    DATABASE_URL: `sqlite:${join(scratchDir(), 'cli.db')}`,
    PORT: String(httpPort),
    GRPC_PORT: String(grpcPort),
  })
  t.after(stopOnExit(run))
  await waitForOk(`http://127.0.0.1:${httpPort}/health`)
  const pool = createGrpcChannelPool({
    targets: { self: `127.0.0.1:${grpcPort}` },
    appId: 'serve-test',
    healthCheckIntervalMs: 0,
  })
  t.after(() => pool.close())
  assert.equal(await pool.checkHealth('self'), 'SERVING')

  run.child.kill('SIGTERM')
  assert.equal(await run.exited, 0, run.output())
  // Logged lines are flushed by the time the process has exited.
  assert.match(run.output(), new RegExp(`gRPC listening on 127\\.0\\.0\\.1:${grpcPort}`))
  assert.equal(await pool.checkHealth('self', { deadlineMs: 300 }), 'UNREACHABLE')
})

test('commands other than serve never open the gRPC port, even with GRPC_PORT set', async (t) => {
  for (const overrides of [{ isMigratingAtStart: false }, { runsEmbeddedWorkers: false }]) {
    const container = await createContainer(testConfig({ GRPC_PORT: '0' }), overrides)
    t.after(() => container.close())
    assert.equal(container.integrations.grpcServer, undefined, JSON.stringify(overrides))
  }
  const serving = await createContainer(testConfig({ GRPC_PORT: '0' }))
  assert.ok(serving.integrations.grpcServer)
  await serving.close()
})
