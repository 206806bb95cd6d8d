import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { type Authenticated, principalOf } from '../../http/plugins/authenticate.ts'
import { BEARER, errorResponses } from '../../http/schemas.ts'
import {
  NumberSumCreateSchema,
  ScheduleListSchema,
  TaskIdParamsSchema,
  TaskStatusPublicSchema,
  TaskSubmittedSchema,
  WorkflowCreateSchema,
} from './tasks-schemas.ts'
import type { TasksService } from './tasks-service.ts'

export interface TasksRoutesOptions {
  tasks: TasksService
  /** preHandlers that admit only signed-in users (and apply the per-user rate limit). */
  authenticated: Authenticated
}

/** /api/tasks and /api/schedules: background tasks on demand, their status, the schedule table. */
export const tasksRoutes: FastifyPluginAsyncTypebox<TasksRoutesOptions> = async (
  app,
  { tasks, authenticated },
) => {
  const tags = ['tasks']

  app.post(
    '/api/tasks/number-sum',
    {
      preHandler: authenticated,
      schema: {
        tags,
        summary: 'Add up to 10,000 numbers in the background',
        security: BEARER,
        body: NumberSumCreateSchema,
        response: { 202: TaskSubmittedSchema, ...errorResponses(401, 422) },
      },
    },
    async (request, reply) =>
      reply
        .code(202)
        .send(await tasks.submitNumberSum(request.body.numbers, principalOf(request).userId)),
  )

  app.post(
    '/api/tasks/workflow',
    {
      preHandler: authenticated,
      schema: {
        tags,
        summary: 'Run a chain, a group or a chord of number tasks',
        description:
          'chain: `first`, then each task of `steps` on the result before it; group: the calls in ' +
          'parallel, the result is their results in order; chord: a group, then `callback` on its ' +
          'results. The status of the task id is that of the final result.',
        security: BEARER,
        body: WorkflowCreateSchema,
        response: { 202: TaskSubmittedSchema, ...errorResponses(401, 422) },
      },
    },
    async (request, reply) =>
      reply.code(202).send(await tasks.submitWorkflow(request.body, principalOf(request).userId)),
  )

  app.get(
    '/api/tasks/:task_id',
    {
      preHandler: authenticated,
      schema: {
        tags,
        summary: 'The state of one of your tasks, with its result or error',
        description: 'Finished tasks stay visible for TASK_RESULT_TTL_SECONDS.',
        security: BEARER,
        params: TaskIdParamsSchema,
        response: { 200: TaskStatusPublicSchema, ...errorResponses(401, 404, 422) },
      },
    },
    async (request) => tasks.status(request.params.task_id, principalOf(request).userId),
  )

  app.get(
    '/api/schedules',
    {
      preHandler: authenticated,
      schema: {
        tags,
        summary: 'The registered schedules and their next run',
        security: BEARER,
        response: { 200: ScheduleListSchema, ...errorResponses(401) },
      },
    },
    async () => tasks.listSchedules(),
  )
}
