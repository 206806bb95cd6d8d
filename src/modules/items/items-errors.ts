import { AppError } from '../../shared/errors.ts'

export const itemNotFound = () => new AppError('not_found', 'ITEMS_NOT_FOUND', 'Item not found')

export const itemForbidden = () =>
  new AppError('forbidden', 'ITEMS_FORBIDDEN', 'Only the creator of an item may change it')
