export { createTaskBroker, type TaskBrokerOptions } from './create-task-broker.ts'
export { type CronExpression, parseCron } from './cron.ts'
export {
  createInProcessTaskBroker,
  DEFAULT_RESULT_TTL_MS,
  type InProcessTaskBrokerOptions,
} from './in-process-task-broker.ts'
export {
  defineSchedule,
  type Schedule,
  type ScheduleInfo,
  type Scheduler,
} from './schedule.ts'
export {
  type AnyTaskDefinition,
  type Backoff,
  defineTask,
  PermanentTaskError,
  type StepOptions,
  type SubmitOptions,
  type TaskContext,
  type TaskDefinition,
  type TaskRef,
  taskRef,
} from './task.ts'
export type {
  TaskBroker,
  TaskHandle,
  TaskLogger,
  TaskQueue,
  TaskState,
  TaskStatus,
  TaskWorker,
  TaskWorkerOptions,
} from './task-queue.ts'
export { waitForTask } from './wait-for-task.ts'
export {
  type Chain,
  COLLECT_RESULTS_TASK,
  call,
  chain,
  chord,
  group,
  type TaskCall,
  type Workflow,
} from './workflow.ts'
