import { randomUUID } from 'node:crypto'
import {
  call,
  chain,
  chord,
  group,
  type Scheduler,
  type TaskCall,
  type TaskQueue,
  type Workflow,
} from '../../infra/queue/index.ts'
import { numberSquare, numberSum } from '../../jobs/index.ts'
import { AppError } from '../../shared/errors.ts'
import type {
  ScheduleList,
  TaskStatusPublic,
  TaskSubmitted,
  WorkflowCreate,
} from './tasks-schemas.ts'

export interface TasksServiceDeps {
  tasks: TaskQueue
  /** Lists the schedule table with each next run. */
  schedules: Pick<Scheduler, 'list'>
}

export type TasksService = ReturnType<typeof createTasksService>

const taskNotFound = () => new AppError('not_found', 'TASKS_NOT_FOUND', 'Task not found')

/**
 * Tasks on demand (Celery's `delay` and canvas). A task's id starts with its submitter's id, so
 * that only they can read it (anyone else gets the not-found of an unknown id) with no table
 * to look that up in.
 */
export function createTasksService({ tasks, schedules }: TasksServiceDeps) {
  const ownPrefix = (userId: string) => `u${userId}-`
  const newId = (userId: string) => `${ownPrefix(userId)}${randomUUID()}`

  return {
    async submitNumberSum(numbers: number[], userId: string): Promise<TaskSubmitted> {
      const handle = await tasks.submit(numberSum, numbers, { id: newId(userId) })
      return { task_id: handle.id }
    },

    async submitWorkflow(spec: WorkflowCreate, userId: string): Promise<TaskSubmitted> {
      const handle = await tasks.submitWorkflow(toWorkflow(spec), { id: newId(userId) })
      return { task_id: handle.id }
    },

    async status(taskId: string, userId: string): Promise<TaskStatusPublic> {
      if (!taskId.startsWith(ownPrefix(userId))) throw taskNotFound()
      const status = await tasks.status(taskId)
      if (!status) throw taskNotFound()
      return {
        id: status.id,
        state: status.state,
        ...(status.state === 'succeeded' ? { result: status.result } : {}),
        ...(status.error !== undefined ? { error: status.error } : {}),
      }
    },

    async listSchedules(): Promise<ScheduleList> {
      const listed = await schedules.list()
      return {
        schedules: listed.map((schedule) => ({
          id: schedule.id,
          task: schedule.task,
          ...(schedule.everyMs !== undefined ? { every_ms: schedule.everyMs } : {}),
          ...(schedule.cron !== undefined ? { cron: schedule.cron } : {}),
          next_run_at: schedule.nextRunAt?.toISOString() ?? null,
        })),
      }
    },
  }
}

type CallSpec = Extract<WorkflowCreate, { kind: 'group' }>['calls'][number]

function toCall(spec: CallSpec): TaskCall<number> {
  return spec.task === 'tasks.number-sum'
    ? call(numberSum, spec.payload)
    : call(numberSquare, spec.payload)
}

/** The request's workflow as the queue takes it; the schema has already fixed its shape. */
function toWorkflow(spec: WorkflowCreate): Workflow<unknown> {
  switch (spec.kind) {
    case 'chain': {
      let built = chain(toCall(spec.first))
      for (const _step of spec.steps) built = built.pipe(numberSquare)
      return built
    }
    case 'group':
      return group(spec.calls.map(toCall))
    case 'chord':
      return chord(spec.calls.map(toCall), numberSum)
  }
}
