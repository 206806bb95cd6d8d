export { type CreatePubSubOptions, createPubSub } from './create-pubsub.ts'
export { createMemoryPubSub, type MemoryPubSubOptions } from './memory-pubsub.ts'
export {
  compareEventIds,
  type HandlerErrorReporter,
  isEventId,
  type MessageHandler,
  PUBSUB_DEFAULTS,
  type PubSub,
  type PubSubMessage,
  type Unsubscribe,
} from './pubsub.ts'
export { createRedisPubSub, type RedisPubSubOptions } from './redis-pubsub.ts'
