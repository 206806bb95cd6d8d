import assert from 'node:assert/strict'
import { test } from 'node:test'
import { testConfig } from '../../test/helpers/app.ts'
import { serviceUrls, useRedisPrefix, whenReachable } from '../../test/helpers/services.ts'
import { parseSnowflake } from '../shared/ids/index.ts'
import { createContainer } from './index.ts'

test(
  'replicas without a pinned worker id lease distinct ones through Redis',
  await whenReachable('redis'),
  async (t) => {
    const { prefix: name } = await useRedisPrefix(t)
    // Deployment pods: a random suffix, here all digits, which must not be read as an ordinal.
    const config = testConfig({
      APP_NAME: name,
      REDIS_URL: serviceUrls.redis,
      POD_NAME: 'api-7d9f8c6b5-24567',
    })
    const replicas = []
    // One after another: three containers in one process would contend for the SQLite file's
    // start-up migration, which separate processes (real replicas) queue for instead.
    for (let i = 0; i < 3; i++) {
      const replica = await createContainer(config)
      t.after(() => replica.close())
      replicas.push(replica)
    }
    const workerIds = replicas.map((replica) => parseSnowflake(replica.ids.nextId()).workerId)
    assert.equal(new Set(workerIds).size, 3, `worker ids ${workerIds.join(', ')}`)
  },
)
