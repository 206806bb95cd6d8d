import Type from 'typebox'
import { TimestampSchema } from '../../http/schemas.ts'
import { NumberSumPayloadSchema } from '../../jobs/index.ts'

export const NumberSumCreateSchema = Type.Object(
  { numbers: NumberSumPayloadSchema },
  { additionalProperties: false },
)
export type NumberSumCreate = Type.Static<typeof NumberSumCreateSchema>

// The union members below leave additionalProperties open on purpose: with Ajv's
// removeAdditional, a closed member would strip the fields of the members tried after it.
const SumCall = Type.Object(
  { task: Type.Literal('tasks.number-sum'), payload: NumberSumPayloadSchema },
  { description: 'Adds a list of numbers' },
)
const SquareCall = Type.Object(
  { task: Type.Literal('tasks.number-square'), payload: Type.Number() },
  { description: 'Squares a number' },
)
const Call = Type.Union([SumCall, SquareCall])
const Calls = Type.Array(Call, { minItems: 1, maxItems: 100 })

/** A workflow of the number tasks, as Celery's canvas has them: chain, group or chord. */
export const WorkflowCreateSchema = Type.Union(
  [
    Type.Object(
      {
        kind: Type.Literal('chain'),
        first: Call,
        steps: Type.Array(Type.Literal('tasks.number-square'), { minItems: 1, maxItems: 100 }),
      },
      { description: 'Runs `first`, then each task of `steps` on the result before it' },
    ),
    Type.Object(
      { kind: Type.Literal('group'), calls: Calls },
      { description: 'Runs the calls in parallel; the result is the list of their results' },
    ),
    Type.Object(
      { kind: Type.Literal('chord'), calls: Calls, callback: Type.Literal('tasks.number-sum') },
      { description: 'Runs the calls in parallel, then `callback` on the list of results' },
    ),
  ],
  {
    examples: [
      {
        kind: 'chain',
        first: { task: 'tasks.number-sum', payload: [1, 2] },
        steps: ['tasks.number-square'],
      },
    ],
  },
)
export type WorkflowCreate = Type.Static<typeof WorkflowCreateSchema>

export const TaskSubmittedSchema = Type.Object(
  { task_id: Type.String() },
  { description: 'The task was queued; follow it at GET /api/tasks/{task_id}' },
)
export type TaskSubmitted = Type.Static<typeof TaskSubmittedSchema>

export const TaskIdParamsSchema = Type.Object({
  task_id: Type.String({ pattern: '^[A-Za-z0-9._-]{1,100}$' }),
})

export const TaskStatusPublicSchema = Type.Object(
  {
    id: Type.String(),
    state: Type.Union(
      [
        Type.Literal('queued'),
        Type.Literal('running'),
        Type.Literal('succeeded'),
        Type.Literal('failed'),
      ],
      { description: 'queued (waiting, delayed or retrying), running, succeeded or failed' },
    ),
    result: Type.Optional(Type.Unknown({ description: 'the result, once succeeded' })),
    error: Type.Optional(Type.String({ description: 'why it failed, once failed' })),
  },
  { description: 'Where a task or workflow is' },
)
export type TaskStatusPublic = Type.Static<typeof TaskStatusPublicSchema>

export const ScheduleListSchema = Type.Object(
  {
    schedules: Type.Array(
      Type.Object({
        id: Type.String(),
        task: Type.String(),
        every_ms: Type.Optional(Type.Integer()),
        cron: Type.Optional(Type.String({ description: 'UTC' })),
        next_run_at: Type.Union([TimestampSchema, Type.Null()], {
          description: 'null until a scheduler has registered it (distributed mode)',
        }),
      }),
    ),
  },
  { description: 'The schedule table with each next run' },
)
export type ScheduleList = Type.Static<typeof ScheduleListSchema>
