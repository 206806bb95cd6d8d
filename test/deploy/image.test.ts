import assert from 'node:assert/strict'
import { type ChildProcess, spawn, spawnSync } from 'node:child_process'
import { once } from 'node:events'
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { test } from 'node:test'
import { scratchDir } from '../helpers/app.ts'
import { freePort, waitForOk } from '../helpers/process.ts'
import {
  type DockerInstruction,
  execForm,
  parseDockerfile,
  ROOT,
  readText,
  SAMPLE_SECRETS,
  workloads,
} from './deploy-files.ts'

const instructions = () => parseDockerfile(readText('deploy/Dockerfile'))

/** Build stages in order, each from its FROM line, with its `AS` name. */
function stages(): { name: string | undefined; instructions: DockerInstruction[] }[] {
  const found: { name: string | undefined; instructions: DockerInstruction[] }[] = []
  for (const instruction of instructions()) {
    if (instruction.keyword === 'FROM') {
      found.push({ name: /\sAS\s+(\S+)$/i.exec(instruction.args)?.[1], instructions: [] })
    }
    found.at(-1)?.instructions.push(instruction)
  }
  return found
}

/** The instructions of the last stage: what the image is at run time. */
function finalStage(): DockerInstruction[] {
  return stages().at(-1)?.instructions ?? []
}

function last(keyword: string, stage = finalStage()): DockerInstruction | undefined {
  return stage.findLast((instruction) => instruction.keyword === keyword)
}

/** ENV instructions of the final stage as one map (`ENV A=1 B=2` form). */
function imageEnv(): Record<string, string> {
  const env: Record<string, string> = {}
  for (const { keyword, args } of finalStage()) {
    if (keyword !== 'ENV') continue
    for (const match of args.matchAll(/([A-Z_][A-Z0-9_]*)=("[^"]*"|\S+)/g)) {
      env[match[1] as string] = (match[2] as string).replace(/^"|"$/g, '')
    }
  }
  return env
}

function healthcheckCommand(): string[] {
  const healthcheck = last('HEALTHCHECK')
  assert.ok(healthcheck, 'the image has no HEALTHCHECK')
  const command = execForm(healthcheck.args.replace(/^(--\S+\s+)*CMD\s+/, ''))
  assert.ok(command, 'HEALTHCHECK CMD is not in exec form')
  return command
}

test('Dockerfile: multi-stage, production dependencies installed from the lockfile', () => {
  assert.ok(stages().length >= 2, 'not a multi-stage build')
  const deps = stages().find((stage) => stage.name === 'deps')?.instructions ?? []
  const install = deps.find(
    (instruction) => instruction.keyword === 'RUN' && /\bnpm (ci|install)\b/.test(instruction.args),
  )
  assert.ok(install, 'the deps stage does not install with npm')
  assert.match(install.args, /--omit=dev/)
  const copiesLockfile = deps.some(
    (instruction) =>
      instruction.keyword === 'COPY' &&
      /\bpackage\.json\b/.test(instruction.args) &&
      /\bpackage-lock\.json\b/.test(instruction.args),
  )
  assert.ok(copiesLockfile, 'the install needs package.json and package-lock.json copied first')
  const runtime = finalStage()
  assert.ok(
    runtime.some((i) => i.keyword === 'COPY' && /--from=deps\b.*node_modules/.test(i.args)),
    'the runtime stage does not take node_modules from the deps stage',
  )
  assert.ok(
    !runtime.some((i) => i.keyword === 'RUN' && /\bnpm (ci|install|i)\b/.test(i.args)),
    'the runtime stage installs packages itself',
  )
})

test('Dockerfile: official Node image of the .nvmrc version, glibc as the lockfile needs', () => {
  const nvmrc = readText('.nvmrc').trim().replace(/^v/, '')
  const version = instructions().find(
    (instruction) => instruction.keyword === 'ARG' && instruction.args.startsWith('NODE_VERSION='),
  )
  assert.equal(version?.args, `NODE_VERSION=${nvmrc}`, 'NODE_VERSION differs from .nvmrc')
  for (const from of instructions().filter((instruction) => instruction.keyword === 'FROM')) {
    assert.match(from.args, /^node:\$\{NODE_VERSION\}-[a-z]+-slim\b/, from.args)
    assert.doesNotMatch(from.args, /alpine/, 'musl: no @node-rs/bcrypt binary is locked for it')
  }
  // The lockfile pins the native bcrypt binary for linux x64 glibc; without it, login breaks.
  const lock = JSON.parse(readText('package-lock.json')) as { packages: Record<string, unknown> }
  assert.ok(lock.packages['node_modules/@node-rs/bcrypt-linux-x64-gnu'])
})

test('Dockerfile: non-root user, the one Kubernetes runs as, and production settings', () => {
  const user = last('USER')
  assert.ok(user, 'the image runs as root: no USER')
  const [uid] = user.args.split(':')
  assert.doesNotMatch(String(uid), /^(0|root)$/)
  assert.match(String(uid), /^\d+$/, 'a numeric USER lets runAsNonRoot verify it')
  for (const workload of workloads()) {
    const runAsUser = workload.spec.template.spec.securityContext?.runAsUser
    assert.equal(runAsUser, Number(uid), `${workload.metadata.name} runs as another user`)
  }
  const env = imageEnv()
  assert.equal(env.NODE_ENV, 'production')
  assert.equal(env.APP_ENV, 'prod')
  assert.equal(env.HOST, '0.0.0.0')
})

test('Dockerfile: HEALTHCHECK asks /health; CMD serves in exec form with node as PID 1', () => {
  const healthcheck = healthcheckCommand()
  assert.equal(healthcheck[0], 'node')
  assert.match(healthcheck.join(' '), /\/health\b/)
  assert.equal(last('ENTRYPOINT'), undefined, 'an ENTRYPOINT would prefix every command')
  const cmd = last('CMD')
  assert.deepEqual(execForm(cmd?.args ?? ''), ['node', 'src/main.ts', 'serve'])
  const exposed = last('EXPOSE')
  assert.equal(exposed?.args, imageEnv().PORT)
})

test('.dockerignore lets in only what the image runs: no .git, node_modules, .env or tests', () => {
  const lines = readText('.dockerignore')
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '' && !line.startsWith('#'))
  assert.equal(lines[0], '*', 'not an allow-list')
  const allowed = lines.filter((line) => line.startsWith('!')).map((line) => line.slice(1))
  for (const needed of ['package.json', 'package-lock.json', 'src/', 'migrations/', 'configs/']) {
    assert.ok(allowed.includes(needed), `${needed} is kept out of the build context`)
  }
  for (const forbidden of ['.git', 'node_modules', '.env', 'data', 'test']) {
    assert.ok(
      !allowed.some((path) => path.replace(/\/$/, '') === forbidden),
      `${forbidden} would be sent`,
    )
  }
  assert.ok(lines.includes('**/*.test.ts'), 'tests under src/ would be shipped')
  assert.ok(lines.includes('**/.env'), 'a .env file would be shipped')
  // Every folder the code reads at run time that exists must be allowed in.
  for (const folder of ['templates', 'static', 'proto']) {
    const exists = readdirSync(ROOT).includes(folder)
    if (exists) assert.ok(allowed.includes(`${folder}/`), `${folder}/ is kept out`)
  }
})

/** Processes whose parent is `pid`, from /proc. */
function childrenOf(pid: number): number[] {
  return readdirSync('/proc')
    .filter((entry) => /^\d+$/.test(entry))
    .filter((entry) => {
      try {
        const stat = readFileSync(`/proc/${entry}/stat`, 'utf8')
        return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === pid
      } catch {
        return false
      }
    })
    .map(Number)
}

function runHealthcheck(port: number): number | null {
  const [, ...args] = healthcheckCommand()
  return spawnSync(process.execPath, args, { env: { PORT: String(port) }, timeout: 10_000 }).status
}

const canMakePidNamespace =
  process.platform === 'linux' &&
  spawnSync('unshare', ['--pid', '--fork', 'true'], { stdio: 'ignore' }).status === 0

test('the image command as PID 1: passes the HEALTHCHECK, then exits 0 on SIGTERM', {
  skip: canMakePidNamespace ? false : 'needs unshare(1) and the right to make a PID namespace',
  // PID 1 ignores a signal it has no handler for: a missing handler shows as a timeout.
  timeout: 60_000,
}, async (t) => {
  const [, ...args] = execForm(last('CMD')?.args ?? '') ?? []
  const port = await freePort()
  const env = {
    PATH: process.env.PATH ?? '',
    ...imageEnv(),
    HOST: '127.0.0.1',
    PORT: String(port),
    JWT_SECRET: SAMPLE_SECRETS.JWT_SECRET as string,
    DATABASE_URL: `sqlite:${join(scratchDir(), 'image.db')}`,
    SHUTDOWN_DELAY_MS: '0',
    LOG_LEVEL: 'warn',
  }
  const namespace: ChildProcess = spawn(
    'unshare',
    ['--pid', '--fork', '--kill-child', process.execPath, ...args],
    { cwd: ROOT, env, stdio: ['ignore', 'ignore', 'pipe'] },
  )
  let stderr = ''
  namespace.stderr?.on('data', (chunk: Buffer) => {
    stderr += chunk.toString()
  })
  const exited = once(namespace, 'exit')
  t.after(() => {
    if (namespace.exitCode === null) namespace.kill('SIGKILL')
  })
  await waitForOk(`http://127.0.0.1:${port}/health`, 20_000)

  const [node] = childrenOf(namespace.pid as number)
  assert.ok(node, 'no process inside the namespace')
  const nsPid = /^NSpid:\s+(.*)$/m.exec(readFileSync(`/proc/${node}/status`, 'utf8'))?.[1]
  assert.equal(nsPid?.trim().split(/\s+/).at(-1), '1', 'node is not PID 1 in its namespace')

  assert.equal(runHealthcheck(port), 0, 'HEALTHCHECK fails on a serving container')
  process.kill(node, 'SIGTERM')
  const [code] = await exited
  assert.equal(code, 0, `exit ${code}: ${stderr}`)
  assert.equal(runHealthcheck(port), 1, 'HEALTHCHECK passes with nothing listening')
})
