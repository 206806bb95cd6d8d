import type { UsersRepository } from '../users/users-repository.ts'
import { toPublicUser, type UsersService } from '../users/users-service.ts'
import type { UsersDirectory } from './users-grpc-service.ts'

/** The gRPC UserService's reads, on the users module: public fields only, keyset pages by id. */
export function createUsersDirectory(deps: {
  users: Pick<UsersRepository, 'list'>
  service: Pick<UsersService, 'getById'>
}): UsersDirectory {
  return {
    getById: (id) => deps.service.getById(id),
    async listAfter(afterId, limit) {
      const rows = await deps.users.list({
        where: afterId === undefined ? {} : { id: { gt: afterId } },
        orderBy: [['id', 'asc']],
        limit,
      })
      return rows.map(toPublicUser)
    },
  }
}
