import type { TaskHandle, TaskQueue, TaskStatus } from './task-queue.ts'

/**
 * Polls until the task has succeeded or failed and resolves to its final status; rejects after
 * `timeoutMs` or if the task is unknown. For commands and tests: request handlers answer 202
 * and let clients poll instead.
 */
export async function waitForTask<R>(
  queue: Pick<TaskQueue, 'status'>,
  task: TaskHandle<R> | string,
  options: { timeoutMs?: number; pollMs?: number } = {},
): Promise<TaskStatus<R>> {
  const id = typeof task === 'string' ? task : task.id
  const deadline = Date.now() + (options.timeoutMs ?? 10_000)
  for (;;) {
    const status = await queue.status<R>(id)
    if (!status) throw new Error(`task ${id} is unknown`)
    if (status.state === 'succeeded' || status.state === 'failed') return status
    if (Date.now() > deadline)
      throw new Error(`task ${id} still ${status.state} after ${options.timeoutMs ?? 10_000} ms`)
    await new Promise((resolve) => setTimeout(resolve, options.pollMs ?? 20))
  }
}
