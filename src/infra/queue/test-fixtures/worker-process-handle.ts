import { type ChildProcess, spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { redisUrl } from './redis-test-space.ts'

const WORKER = fileURLToPath(new URL('./worker-process.ts', import.meta.url))

/** Starts the fixture worker in a child process; resolves once it takes tasks. */
export async function startWorkerProcess(env: Record<string, string>): Promise<ChildProcess> {
  const child = spawn(process.execPath, [WORKER], {
    env: { PATH: process.env.PATH ?? '', REDIS_URL: redisUrl, ...env },
    stdio: ['ignore', 'pipe', 'inherit'],
  })
  let output = ''
  await new Promise<void>((resolve, reject) => {
    child.stdout?.on('data', (chunk: Buffer) => {
      output += chunk.toString()
      if (output.includes('ready\n')) resolve()
    })
    child.once('exit', (code) => reject(new Error(`worker exited with ${code} before ready`)))
  })
  return child
}
