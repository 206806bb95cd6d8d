import assert from 'node:assert/strict'
import { test } from 'node:test'
import { createMemoryPubSub, type PubSub, type PubSubMessage } from '../../infra/pubsub/index.ts'
import { openChannelFeed } from './channel-feed.ts'

test('a feed replays the history after its id, then what arrived before start, then live: each once, in order', async () => {
  const pubsub = createMemoryPubSub()
  const ids = []
  for (const data of ['a', 'b', 'c']) ids.push(await pubsub.publish('room', data))
  const feed = await openChannelFeed(pubsub, 'room', { afterId: ids[0] })
  // Published after the subscription and (here) after the history was read: arrives live
  // before start, and must neither be lost nor sent twice.
  await pubsub.publish('room', 'd')
  const got: PubSubMessage[] = []
  feed.start((message) => got.push(message))
  await pubsub.publish('room', 'e')
  assert.deepEqual(
    got.map((message) => message.data),
    ['b', 'c', 'd', 'e'],
  )
  feed.close()
  await pubsub.publish('room', 'f')
  assert.equal(got.length, 4, 'nothing after close')
  feed.close()
})

test('history and live messages that overlap are sent once', async () => {
  const inner = createMemoryPubSub()
  const first = await inner.publish('room', 'a')
  // A pub/sub whose history already holds a message the subscriber also gets live: the overlap
  // a real Redis shows when a publish lands between SUBSCRIBE and XRANGE.
  const racing: PubSub = {
    ...inner,
    async history(channel, afterId) {
      await inner.publish(channel, 'b')
      return inner.history(channel, afterId)
    },
  }
  const got: string[] = []
  const feed = await openChannelFeed(racing, 'room', { afterId: first })
  feed.start((message) => got.push(message.data))
  await inner.publish('room', 'c')
  assert.deepEqual(got, ['b', 'c'])
  feed.close()
})

test("replay 'all' without an id sends the whole history; 'none' only live messages", async () => {
  const pubsub = createMemoryPubSub()
  await pubsub.publish('room', 'old')
  const all: string[] = []
  const none: string[] = []
  const feeds = [
    await openChannelFeed(pubsub, 'room', { replay: 'all' }),
    await openChannelFeed(pubsub, 'room'),
  ]
  feeds[0]?.start((message) => all.push(message.data))
  feeds[1]?.start((message) => none.push(message.data))
  await pubsub.publish('room', 'new')
  assert.deepEqual(all, ['old', 'new'])
  assert.deepEqual(none, ['new'])
  for (const feed of feeds) feed.close()
})

test('a failing history read leaves nothing subscribed', async () => {
  const inner = createMemoryPubSub()
  let active = 0
  const failing: PubSub = {
    ...inner,
    async subscribe(channel, handler) {
      const unsubscribe = await inner.subscribe(channel, handler)
      active += 1
      return () => {
        active -= 1
        unsubscribe()
      }
    },
    async history() {
      throw new Error('Redis is away')
    },
  }
  await assert.rejects(openChannelFeed(failing, 'room', { replay: 'all' }), /Redis is away/)
  assert.equal(active, 0)
})
