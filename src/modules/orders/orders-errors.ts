import { AppError } from '../../shared/errors.ts'

/** Unknown order, or another user's: the answer is the same, so ids reveal nothing. */
export const orderNotFound = () => new AppError('not_found', 'ORDERS_NOT_FOUND', 'Order not found')

export const orderItemNotFound = () =>
  new AppError('not_found', 'ORDERS_ITEM_NOT_FOUND', 'The item to order does not exist')

export const idempotencyKeyReused = () =>
  new AppError(
    'conflict',
    'ORDERS_IDEMPOTENCY_KEY_REUSED',
    'This Idempotency-Key was already used for a different order',
  )
