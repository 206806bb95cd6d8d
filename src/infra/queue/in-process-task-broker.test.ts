import { createInProcessTaskBroker } from './index.ts'
import { taskQueueContract } from './task-queue-contract.ts'

taskQueueContract(
  'in-process',
  async (t, options) => {
    const broker = await createInProcessTaskBroker({ ...options, logger: silentLogger })
    t.after(() => broker.close())
    return broker
  },
  { skip: false },
)

const silentLogger = { info() {}, warn() {}, error() {} }
