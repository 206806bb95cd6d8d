import assert from 'node:assert/strict'
import { describe, type TestContext, test } from 'node:test'
import { numberSquare, numberSum } from '../../jobs/number-tasks.ts'
import {
  call,
  chain,
  chord,
  defineTask,
  group,
  PermanentTaskError,
  type TaskBroker,
  type TaskContext,
  type TaskWorkerOptions,
  waitForTask,
} from './index.ts'

/**
 * The behaviour both task brokers promise, run against each (in-process and BullMQ). Workers
 * run in the test process, so handlers can report to the test through plain variables.
 */
export type BrokerFactory = (
  t: TestContext,
  options: { resultTtlMs: number },
) => Promise<TaskBroker>

/** A handler that waits until the test opens its gate, to hold a task in `running`. */
class Gates {
  readonly #waiting = new Map<string, () => void>()
  readonly #entered = new Map<string, () => void>()
  readonly #enteredPromises = new Map<string, Promise<void>>()

  /** Resolves when a task has reached the gate named `key`. */
  reached(key: string): Promise<void> {
    let promise = this.#enteredPromises.get(key)
    if (!promise) {
      promise = new Promise<void>((resolve) => this.#entered.set(key, resolve))
      this.#enteredPromises.set(key, promise)
    }
    return promise
  }

  async pass(key: string, signal: AbortSignal): Promise<void> {
    void this.reached(key)
    this.#entered.get(key)?.()
    await new Promise<void>((resolve) => {
      this.#waiting.set(key, resolve)
      signal.addEventListener('abort', () => resolve(), { once: true })
    })
  }

  open(key: string): void {
    this.#waiting.get(key)?.()
  }
}

function testTasks() {
  const log: string[] = []
  const tries: Array<{ id: string; attempt: number; at: number }> = []
  const gates = new Gates()
  let running = 0
  let maxRunning = 0
  const tasks = {
    record: defineTask({
      name: 'test.record',
      handler: (label: string) => {
        log.push(label)
        return label
      },
    }),
    echo: defineTask({ name: 'test.echo', handler: (value: string) => value }),
    collect: defineTask({
      name: 'test.collect',
      handler: (values: unknown[]) => {
        log.push('collect')
        return values
      },
    }),
    slowEcho: defineTask({
      name: 'test.slow-echo',
      handler: async ({ ms, value }: { ms: number; value: string }) => {
        await new Promise((resolve) => setTimeout(resolve, ms))
        return value
      },
    }),
    gate: defineTask({
      name: 'test.gate',
      handler: async (key: string, context: TaskContext) => {
        running++
        maxRunning = Math.max(maxRunning, running)
        try {
          await gates.pass(key, context.signal)
          return context.signal.aborted ? 'aborted' : key
        } finally {
          running--
        }
      },
    }),
    fail: defineTask({
      name: 'test.fail',
      handler: (message: string, context: TaskContext): never => {
        tries.push({ id: context.id, attempt: context.attempt, at: Date.now() })
        throw new Error(`${message} on try ${context.attempt}`)
      },
    }),
    flaky: defineTask({
      name: 'test.flaky',
      handler: (failures: number, context: TaskContext) => {
        tries.push({ id: context.id, attempt: context.attempt, at: Date.now() })
        if (context.attempt <= failures) throw new Error(`flaky on try ${context.attempt}`)
        return context.attempt
      },
    }),
    refuse: defineTask({
      name: 'test.refuse',
      handler: (): never => {
        throw new PermanentTaskError('bad input')
      },
    }),
  }
  const all = [...Object.values(tasks), numberSum, numberSquare]
  return {
    tasks,
    all,
    log,
    tries,
    gates,
    maxRunning: () => maxRunning,
  }
}

async function until(check: () => Promise<boolean> | boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`)
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
}

/** Registers the contract tests for one implementation. */
export function taskQueueContract(
  name: string,
  makeBroker: BrokerFactory,
  options: { skip: string | false },
): void {
  describe(`${name} task queue`, { skip: options.skip }, () => {
    const setup = async (
      t: TestContext,
      workerOptions: Partial<TaskWorkerOptions> = {},
      resultTtlMs = 60_000,
    ) => {
      const broker = await makeBroker(t, { resultTtlMs })
      const fixtures = testTasks()
      const worker = broker.createWorker({ tasks: fixtures.all, ...workerOptions })
      return { broker, worker, ...fixtures }
    }

    test('a submitted task runs and its status carries the typed result', async (t) => {
      const { broker, worker } = await setup(t)
      await worker.start()
      const handle = await broker.submit(numberSum, [1, 2, 3.5])
      const status = await waitForTask(broker, handle)
      const result: number | undefined = status.result
      assert.deepEqual(status, {
        id: handle.id,
        name: 'tasks.number-sum',
        state: 'succeeded',
        result: 6.5,
        attempts: 1,
      })
      assert.equal(result, 6.5)
    })

    test('status moves from queued to running to succeeded; an unknown id has none', async (t) => {
      const { broker, worker, tasks, gates } = await setup(t)
      const handle = await broker.submit(tasks.gate, 'g1')
      assert.deepEqual(await broker.status(handle), {
        id: handle.id,
        name: 'test.gate',
        state: 'queued',
        attempts: 0,
      })
      await worker.start()
      await gates.reached('g1')
      assert.equal((await broker.status(handle))?.state, 'running')
      assert.equal((await broker.status(handle))?.attempts, 1)
      gates.open('g1')
      assert.equal((await waitForTask(broker, handle)).result, 'g1')
      assert.equal(await broker.status('no-such-task'), undefined)
    })

    test('a delayed task waits for its delay', async (t) => {
      const { broker, worker, tasks, log } = await setup(t)
      await worker.start()
      const submittedAt = Date.now()
      const handle = await broker.submit(tasks.record, 'late', { delayMs: 400 })
      await new Promise((resolve) => setTimeout(resolve, 200))
      assert.equal((await broker.status(handle))?.state, 'queued')
      assert.deepEqual(log, [])
      await waitForTask(broker, handle)
      assert.ok(Date.now() - submittedAt >= 400)
    })

    test('tasks without a priority go first, then by priority, in submission order', async (t) => {
      const { broker, worker, tasks, log } = await setup(t, { concurrency: 1 })
      const handles = [
        await broker.submit(tasks.record, 'p3', { priority: 3 }),
        await broker.submit(tasks.record, 'p1', { priority: 1 }),
        await broker.submit(tasks.record, 'none-a'),
        await broker.submit(tasks.record, 'p2', { priority: 2 }),
        await broker.submit(tasks.record, 'p1-later', { priority: 1 }),
        await broker.submit(tasks.record, 'none-b'),
      ]
      await worker.start()
      for (const handle of handles) await waitForTask(broker, handle)
      assert.deepEqual(log, ['none-a', 'none-b', 'p1', 'p1-later', 'p2', 'p3'])
    })

    test('a failing task is retried with exponential backoff, then fails', async (t) => {
      const { broker, worker, tasks, tries } = await setup(t)
      await worker.start()
      const handle = await broker.submit(tasks.fail, 'boom', {
        attempts: 3,
        backoff: { type: 'exponential', delayMs: 100 },
      })
      const status = await waitForTask(broker, handle)
      assert.deepEqual(status, {
        id: handle.id,
        name: 'test.fail',
        state: 'failed',
        error: 'boom on try 3',
        attempts: 3,
      })
      const [first, second, third] = tries.map((entry) => entry.at)
      assert.equal(tries.length, 3)
      assert.ok((second as number) - (first as number) >= 95, 'first wait is about 100 ms')
      assert.ok((third as number) - (second as number) >= 195, 'second wait is about 200 ms')
    })

    test('a flaky task succeeds on a later try and reports its attempts', async (t) => {
      const { broker, worker, tasks } = await setup(t)
      await worker.start()
      const handle = await broker.submit(tasks.flaky, 2, { attempts: 5 })
      assert.deepEqual(await waitForTask(broker, handle), {
        id: handle.id,
        name: 'test.flaky',
        state: 'succeeded',
        result: 3,
        attempts: 3,
      })
    })

    test('a permanent failure, or a task this worker does not know, is not retried', async (t) => {
      const { broker, worker, tasks } = await setup(t)
      await worker.start()
      const refused = await broker.submit(tasks.refuse, undefined, { attempts: 5 })
      const unknown = await broker.submit({ name: 'test.unknown' }, {}, { attempts: 5 })
      assert.deepEqual(await waitForTask(broker, refused), {
        id: refused.id,
        name: 'test.refuse',
        state: 'failed',
        error: 'bad input',
        attempts: 1,
      })
      const status = await waitForTask(broker, unknown)
      assert.equal(status.attempts, 1)
      assert.match(status.error ?? '', /no handler for task test\.unknown/)
    })

    test('submitting the same id twice runs the task once', async (t) => {
      const { broker, worker, tasks, log } = await setup(t)
      const first = await broker.submit(tasks.record, 'first', { id: 'order-42' })
      const again = await broker.submit(tasks.record, 'second', { id: 'order-42' })
      assert.equal(first.id, 'order-42')
      assert.equal(again.id, 'order-42')
      await worker.start()
      assert.equal((await waitForTask(broker, first)).result, 'first')
      await broker.submit(tasks.record, 'third', { id: 'order-42' })
      await new Promise((resolve) => setTimeout(resolve, 100))
      assert.deepEqual(log, ['first'])
      assert.equal((await broker.status('order-42'))?.result, 'first')
    })

    test('ids and options are checked before anything is stored', async (t) => {
      const { broker, tasks } = await setup(t)
      await assert.rejects(broker.submit(tasks.record, 'x', { id: 'a:b' }), {
        code: 'TASKS_INVALID_ID',
      })
      await assert.rejects(broker.submit(tasks.record, 'x', { id: '123' }), {
        code: 'TASKS_INVALID_ID',
      })
      await assert.rejects(broker.submit(tasks.record, 'x', { attempts: 0 }), TypeError)
      await assert.rejects(broker.submit(tasks.record, 'x', { priority: 1.5 }), TypeError)
    })

    test('finished tasks are forgotten once the result time is over', async (t) => {
      const { broker, worker, tasks } = await setup(t, {}, 600)
      await worker.start()
      const done = await broker.submit(tasks.record, 'kept for a while')
      const failed = await broker.submit(tasks.fail, 'boom')
      assert.equal((await waitForTask(broker, done)).state, 'succeeded')
      assert.equal((await waitForTask(broker, failed)).state, 'failed')
      await new Promise((resolve) => setTimeout(resolve, 700))
      assert.equal(await broker.status(done), undefined)
      assert.equal(await broker.status(failed), undefined)
    })

    test('a chain feeds each result to the next task; its id reports the last result', async (t) => {
      const { broker, worker } = await setup(t)
      await worker.start()
      const workflow = chain(call(numberSum, [1, 2, 3]))
        .pipe(numberSquare)
        .pipe(numberSquare)
      const handle = await broker.submitWorkflow(workflow)
      const status = await waitForTask(broker, handle)
      const result: number | undefined = status.result
      assert.equal(status.state, 'succeeded')
      assert.equal(result, 1296)
      assert.equal(status.name, 'tasks.number-square')
    })

    test('a group runs in parallel and collects results in order, not finishing order', async (t) => {
      const { broker, worker, tasks } = await setup(t)
      await worker.start()
      const workflow = group([
        call(tasks.slowEcho, { ms: 150, value: 'slow first' }),
        call(numberSum, [3, 4]),
        call(tasks.echo, 'fast'),
      ])
      const status = await waitForTask(broker, await broker.submitWorkflow(workflow))
      const result: [string, number, string] | undefined = status.result
      assert.deepEqual(result, ['slow first', 7, 'fast'])
    })

    test('a chord passes every result of its group to the callback', async (t) => {
      const { broker, worker } = await setup(t)
      await worker.start()
      const members = [1, 2, 3, 4].map((n) => call(numberSum, [n, n]))
      const handle = await broker.submitWorkflow(chord(members, numberSum), { id: 'chord-1' })
      assert.equal(handle.id, 'chord-1')
      assert.deepEqual(await waitForTask(broker, handle), {
        id: 'chord-1',
        name: 'tasks.number-sum',
        state: 'succeeded',
        result: 20,
        attempts: 1,
      })
    })

    test('a failure inside the group fails the chord, naming the step', async (t) => {
      const { broker, worker, tasks, log } = await setup(t)
      await worker.start()
      const workflow = chord([call(numberSum, [1]), call(tasks.fail, 'boom')], tasks.collect)
      const status = await waitForTask(broker, await broker.submitWorkflow(workflow))
      assert.equal(status.state, 'failed')
      assert.match(status.error ?? '', /^step \S+\.1 \(test\.fail\) failed: boom on try 1$/)
      assert.deepEqual(log, [], 'the callback never ran')
    })

    test('a failing step stops the chain; later steps never run', async (t) => {
      const { broker, worker, tasks, log } = await setup(t)
      await worker.start()
      const workflow = chain(call(tasks.fail, 'early')).pipe(tasks.record).pipe(tasks.record)
      const status = await waitForTask(broker, await broker.submitWorkflow(workflow))
      assert.equal(status.state, 'failed')
      assert.match(status.error ?? '', /^step \S+\.0 \(test\.fail\) failed: early on try 1$/)
      assert.deepEqual(log, [])
    })

    test('a workflow step is retried like a task', async (t) => {
      const { broker, worker, tasks } = await setup(t)
      await worker.start()
      const workflow = chord([call(tasks.flaky, 1, { attempts: 2 })], numberSum)
      assert.equal((await waitForTask(broker, await broker.submitWorkflow(workflow))).result, 2)
    })

    test('submitting a workflow with the same id twice runs it once', async (t) => {
      const { broker, worker, tasks, log } = await setup(t)
      const workflow = group([call(tasks.record, 'a'), call(tasks.record, 'b')])
      await broker.submitWorkflow(workflow, { id: 'wf-once' })
      await broker.submitWorkflow(workflow, { id: 'wf-once' })
      await worker.start()
      assert.deepEqual((await waitForTask(broker, 'wf-once')).result, ['a', 'b'])
      await broker.submitWorkflow(workflow, { id: 'wf-once' })
      await new Promise((resolve) => setTimeout(resolve, 100))
      assert.deepEqual(log.sort(), ['a', 'b'])
    })

    test('a worker runs at most its concurrency at once', async (t) => {
      const { broker, worker, tasks, gates, maxRunning } = await setup(t, { concurrency: 2 })
      await worker.start()
      const keys = ['c1', 'c2', 'c3', 'c4', 'c5']
      const handles = await Promise.all(keys.map((key) => broker.submit(tasks.gate, key)))
      await Promise.all([gates.reached('c1'), gates.reached('c2')])
      await new Promise((resolve) => setTimeout(resolve, 100))
      const states = await Promise.all(handles.map(async (h) => (await broker.status(h))?.state))
      assert.equal(states.filter((state) => state === 'running').length, 2)
      for (const key of keys) gates.open(key)
      await until(async () => {
        for (const key of keys) gates.open(key)
        const all = await Promise.all(handles.map((h) => broker.status(h)))
        return all.every((status) => status?.state === 'succeeded')
      })
      assert.equal(maxRunning(), 2)
    })

    test('onStart runs before the first task; close waits for running tasks, then onStop', async (t) => {
      const events: string[] = []
      const { broker, worker, tasks, gates } = await setup(t, {
        onStart: async () => {
          await new Promise((resolve) => setTimeout(resolve, 20))
          events.push('start')
        },
        onStop: () => {
          events.push('stop')
        },
      })
      const handle = await broker.submit(tasks.gate, 'drain')
      await worker.start()
      await gates.reached('drain')
      events.push('task running')
      let isClosed = false
      const closing = worker.close().then(() => {
        isClosed = true
      })
      await new Promise((resolve) => setTimeout(resolve, 150))
      assert.equal(isClosed, false, 'close waits for the running task')
      gates.open('drain')
      await closing
      assert.deepEqual(events, ['start', 'task running', 'stop'])
      const status = await broker.status(handle)
      assert.equal(status?.state, 'succeeded')
      assert.equal(status?.result, 'drain')
    })

    test('past the grace period close aborts the running task and still calls onStop', async (t) => {
      let isStopped = false
      const { broker, worker, tasks, gates } = await setup(t, {
        graceMs: 200,
        onStop: () => {
          isStopped = true
        },
      })
      await broker.submit(tasks.gate, 'stuck')
      await worker.start()
      await gates.reached('stuck')
      const startedAt = Date.now()
      await worker.close()
      const tookMs = Date.now() - startedAt
      assert.ok(tookMs >= 190 && tookMs < 2000, `close took ${tookMs} ms`)
      assert.equal(isStopped, true)
    })
  })
}
