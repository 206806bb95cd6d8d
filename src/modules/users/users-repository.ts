import { isUniqueViolation } from '../../infra/db/errors.ts'
import {
  createRepository,
  type Repository,
  type RepositoryDeps,
  type Row,
  runInTransaction,
} from '../../infra/db/repository.ts'
import type { UsersTable } from '../../infra/db/schema.ts'

export type UserRow = Row<UsersTable>

export interface UsersRepository extends Omit<Repository<UsersTable>, 'transaction'> {
  /** The live user with this exact (case-sensitive) username. */
  findByUsername(username: string): Promise<UserRow | undefined>
  /** Creates a user; resolves to undefined when the username is taken (even by a deleted user). */
  create(
    values: { username: string; password_hash: string },
    actorId?: string | null,
  ): Promise<UserRow | undefined>
  transaction<R>(fn: (users: UsersRepository) => Promise<R>): Promise<R>
}

/** Users: the accounts that log in. */
export function createUsersRepository(deps: RepositoryDeps): UsersRepository {
  const base = createRepository('users', deps)
  return {
    ...base,

    async findByUsername(username) {
      const [user] = await base.list({ where: { username }, limit: 1 })
      return user
    },

    async create(values, actorId = null) {
      try {
        return await base.insert(
          { username: values.username, password_hash: values.password_hash },
          actorId,
        )
      } catch (error) {
        // The unique index decides a race between two sign-ups with the same name.
        if (isUniqueViolation(error)) return undefined
        throw error
      }
    },

    transaction: (fn) =>
      runInTransaction(deps.db, (trx) => fn(createUsersRepository({ ...deps, db: trx }))),
  }
}
