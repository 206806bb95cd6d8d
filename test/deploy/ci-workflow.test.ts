import assert from 'node:assert/strict'
import { test } from 'node:test'
import { readText, readYaml } from './deploy-files.ts'

interface Step {
  uses?: string
  run?: string
  with?: Record<string, string>
}

interface Job {
  services?: Record<string, { image: string; ports?: string[] }>
  env?: Record<string, string>
  steps: Step[]
}

const workflow = () =>
  readYaml<{ on: unknown; jobs: Record<string, Job> }>('.github/workflows/ci.yml')
const runs = (job: Job) => job.steps.flatMap((step) => (step.run ? [step.run] : []))

test('CI workflow: install from the lockfile, lint, type check and tests on the .nvmrc Node', () => {
  const { jobs, on } = workflow()
  assert.ok(on, 'the workflow has no trigger')
  const test = jobs.test
  assert.ok(test, 'no test job')
  const commands = runs(test)
  const order = ['npm install', 'npm run lint', 'npm run typecheck', 'npm test'].map((command) =>
    commands.findIndex((run) => run.startsWith(command)),
  )
  assert.ok(
    order.every((index) => index >= 0),
    `missing a step: ${JSON.stringify(commands)}`,
  )
  assert.deepEqual(
    order,
    [...order].sort((a, b) => a - b),
    'steps out of order',
  )
  const scripts = (JSON.parse(readText('package.json')) as { scripts: Record<string, string> })
    .scripts
  for (const run of commands) {
    for (const [, script] of run.matchAll(/npm run ([\w:-]+)/g)) {
      assert.ok(scripts[script as string], `package.json has no script ${script}`)
    }
  }
  const setupNode = test.steps.find((step) => step.uses?.startsWith('actions/setup-node@'))
  assert.equal(setupNode?.with?.['node-version-file'], '.nvmrc')
})

test('CI workflow: tests run against MariaDB, PostgreSQL and Redis service containers', () => {
  const test = workflow().jobs.test
  assert.ok(test)
  const images = Object.values(test.services ?? {}).map((service) => service.image.split(':')[0])
  assert.deepEqual(images.sort(), ['mariadb', 'postgres', 'redis'])
  // The suites find the services through these variables and fail (not skip) under CI=true.
  const helper = readText('test/helpers/services.ts')
  for (const variable of ['TEST_MYSQL_URL', 'TEST_POSTGRES_URL', 'TEST_REDIS_URL']) {
    assert.ok(helper.includes(variable), `test/helpers/services.ts no longer reads ${variable}`)
    assert.match(String(test.env?.[variable]), /^[a-z]+:\/\/.*@?127\.0\.0\.1:\d+\//, variable)
  }
  assert.equal(test.env?.CI, 'true')
})

test('CI workflow: builds the image from deploy/Dockerfile and smoke-tests it', () => {
  const all = Object.values(workflow().jobs).flatMap(runs).join('\n')
  assert.match(all, /docker build -f deploy\/Dockerfile\b.* \.(\s|$)/)
  assert.match(all, /docker stop\b/)
  assert.match(all, /\.State\.Health\.Status/)
  assert.match(all, /kubectl kustomize deploy\/k8s/)
})
