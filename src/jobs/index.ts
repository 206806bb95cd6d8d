import type { AnyTaskDefinition } from '../infra/queue/index.ts'
import { numberSquare, numberSum } from './number-tasks.ts'

export {
  type BackgroundWork,
  createBackgroundWork,
  type RunningWorker,
  type Sweeper,
  scheduleTable,
  TEST_SCHEDULE_ID,
  type WorkerHooks,
} from './background-work.ts'
export {
  type NumberSumPayload,
  NumberSumPayloadSchema,
  numberSquare,
  numberSum,
  oneTo,
} from './number-tasks.ts'
export { schedules } from './schedules.ts'

/**
 * The tasks that need nothing but their payload. Tasks of modules with dependencies (orders)
 * are built by the container with their services and added to the worker's list next to these.
 */
export const standaloneTasks: readonly AnyTaskDefinition[] = [numberSum, numberSquare]
