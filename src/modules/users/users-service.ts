import { AppError } from '../../shared/errors.ts'
import type { UserPublic } from './users-schemas.ts'

/** A user row as the store returns it. */
export interface UserRecord {
  id: string
  username: string
  password_hash: string
  created_at: string
}

/** The storage the user and auth services need; the users repository provides it. */
export interface UsersStore {
  findById(id: string): Promise<UserRecord | undefined>
  findByUsername(username: string): Promise<UserRecord | undefined>
  /** Resolves to undefined when the username is taken. */
  create(values: { username: string; password_hash: string }): Promise<UserRecord | undefined>
}

export type UsersService = ReturnType<typeof createUsersService>

export function createUsersService({ users }: { users: UsersStore }) {
  return {
    async getById(id: string): Promise<UserPublic> {
      const user = await users.findById(id)
      if (!user) throw new AppError('not_found', 'USERS_NOT_FOUND', 'User not found')
      return toPublicUser(user)
    },
  }
}

/** Exactly the public fields: the hash never leaves this module. */
export function toPublicUser(user: UserRecord): UserPublic {
  return { id: user.id, username: user.username, created_at: user.created_at }
}
