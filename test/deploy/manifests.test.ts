import assert from 'node:assert/strict'
import { execFileSync, spawnSync } from 'node:child_process'
import { readdirSync } from 'node:fs'
import { test } from 'node:test'
import { ConfigError, ConfigSchema } from '../../src/config/index.ts'
import {
  type ComposeFile,
  type Container,
  containerEnv,
  findObject,
  interpolate,
  K8S_DIR,
  type K8sObject,
  k8sObjects,
  kustomizationResources,
  loadImageConfig,
  PLACEHOLDER_PREFIX,
  parseYamlDocuments,
  readYaml,
  readYamlDocuments,
  SAMPLE_SECRETS,
  secretValues,
  type Workload,
  withSampleSecrets,
  workloads,
  yamlFiles,
} from './deploy-files.ts'

const SCHEMA_KEYS = new Set(Object.keys(ConfigSchema.properties))
/** Keys the schema marks secret: they belong in the Secret and nowhere else. */
const SECRET_KEYS = Object.entries(ConfigSchema.properties)
  .filter(([, schema]) => (schema as { secret?: boolean }).secret === true)
  .map(([key]) => key)
/** What a prod deployment must decide rather than inherit from defaults or configs/. */
const REQUIRED_CONFIGMAP_KEYS = [
  'APP_NAME',
  'APP_ENV',
  'LOG_LEVEL',
  'LOG_FORMAT',
  'HOST',
  'PORT',
  'DB_POOL_SIZE',
  'JWT_ISSUER',
  'JWT_AUDIENCE',
  'SHUTDOWN_DELAY_MS',
  'SHUTDOWN_GRACE_MS',
]
const EXPECTED_COMMANDS: Record<string, string[]> = {
  'Deployment/servekit-api': ['node', 'src/main.ts', 'serve'],
  'Deployment/servekit-worker': ['node', 'src/main.ts', 'worker'],
  'Deployment/servekit-scheduler': ['node', 'src/main.ts', 'scheduler'],
  'Job/servekit-migrate': ['node', 'src/main.ts', 'migrate', 'up'],
}
/** Time left for closing Redis and the database after the HTTP drain, before SIGKILL. */
const CLOSE_MARGIN_MS = 5000

const api = () => findObject<Workload>('Deployment', 'servekit-api')
const apiContainer = (): Container => only(api().spec.template.spec.containers)
const configMap = () =>
  findObject<K8sObject & { data: Record<string, string> }>('ConfigMap', 'servekit-config')

function only<T>(items: T[]): T {
  assert.equal(items.length, 1, 'expected exactly one container')
  return items[0] as T
}

function portNumber(container: Container, port: number | string | undefined): number | undefined {
  if (typeof port === 'number') return port
  return container.ports?.find((candidate) => candidate.name === port)?.containerPort
}

function preStopSeconds(container: Container): number {
  const preStop = container.lifecycle?.preStop
  if (preStop?.sleep) return preStop.sleep.seconds
  const [program, seconds] = preStop?.exec?.command ?? []
  return program === 'sleep' ? Number(seconds) : 0
}

function composeAppServices(): [string, Record<string, string>][] {
  const compose = readYaml<ComposeFile>('deploy/compose.yaml')
  return Object.entries(compose.services)
    .filter(([, service]) => service.build !== undefined)
    .map(([name, service]) => [
      name,
      Object.fromEntries(
        Object.entries(service.environment ?? {}).map(([key, value]) => [
          key,
          interpolate(String(value ?? ''), { JWT_SECRET: SAMPLE_SECRETS.JWT_SECRET as string }),
        ]),
      ),
    ])
}

test('every YAML file under deploy/ and .github/ parses, multi-document files included', () => {
  const files = yamlFiles()
  for (const expected of [
    'deploy/compose.yaml',
    'deploy/k8s/kustomization.yaml',
    'deploy/k8s/api-deployment.yaml',
    '.github/workflows/ci.yml',
  ]) {
    assert.ok(files.includes(expected), `${expected} is missing`)
  }
  for (const file of files) {
    const documents = readYamlDocuments(file)
    assert.ok(documents.length > 0, `${file} holds no document`)
    for (const document of documents) {
      assert.ok(typeof document === 'object' && document !== null, `${file}: not a mapping`)
    }
  }
  // The reader is strict: broken syntax and duplicate keys (an env key set twice) fail.
  assert.throws(() => parseYamlDocuments('a: [1,', 'broken.yaml'), /broken\.yaml/)
  assert.throws(() => parseYamlDocuments('a: 1\na: 2\n', 'dup.yaml'), /unique/)
  assert.equal(parseYamlDocuments('a: 1\n---\nb: 2\n', 'two.yaml').length, 2)
})

test('every Kubernetes object has apiVersion, kind and a unique metadata.name', () => {
  const objects = k8sObjects()
  assert.ok(objects.length >= 9, `only ${objects.length} objects`)
  const seen = new Set<string>()
  for (const { file, object } of objects) {
    assert.match(String(object.apiVersion), /^([a-z0-9.-]+\/)?v\d+((alpha|beta)\d+)?$/, file)
    assert.match(String(object.kind), /^[A-Z][A-Za-z]+$/, file)
    assert.match(String(object.metadata?.name), /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/, file)
    const id = `${object.kind}/${object.metadata.name}`
    assert.ok(!seen.has(id), `${id} is defined twice`)
    seen.add(id)
  }
  for (const kind of [
    'ConfigMap',
    'Secret',
    'Deployment',
    'Job',
    'Service',
    'HorizontalPodAutoscaler',
    'PodDisruptionBudget',
  ]) {
    assert.ok(
      objects.some(({ object }) => object.kind === kind),
      `no ${kind} in deploy/k8s`,
    )
  }
})

test('kustomization.yaml lists every manifest in deploy/k8s and nothing else', () => {
  const onDisk = readdirSync(K8S_DIR)
    .filter((name) => /\.ya?ml$/.test(name) && name !== 'kustomization.yaml')
    .sort()
  assert.deepEqual([...kustomizationResources()].sort(), onDisk)
})

const hasKubectl = spawnSync('kubectl', ['version', '--client'], { stdio: 'ignore' }).status === 0

test('kubectl kustomize builds deploy/k8s, with every workload on the one release image', {
  skip: hasKubectl ? false : 'kubectl is not installed',
}, () => {
  const output = execFileSync('kubectl', ['kustomize', K8S_DIR], { encoding: 'utf8' })
  const built = parseYamlDocuments(output, 'kubectl kustomize') as K8sObject[]
  assert.equal(built.length, k8sObjects().length)
  const { images } = readYaml<{ images: { newName: string; newTag: string }[] }>(
    'deploy/k8s/kustomization.yaml',
  )
  const release = `${images[0]?.newName}:${images[0]?.newTag}`
  const podImages = built
    .filter((object): object is Workload => ['Deployment', 'Job'].includes(object.kind))
    .flatMap((object) => object.spec.template.spec.containers.map((c) => c.image))
  assert.equal(podImages.length, 4)
  assert.deepEqual(new Set(podImages), new Set([release]))
  for (const object of built) {
    assert.equal(object.metadata.labels?.['app.kubernetes.io/part-of'], 'servekit')
  }
})

const MODELS = 'kubernetes-models'
type Model = new (data: unknown) => { validate(): void }
const hasModels = await import(`${MODELS}/v1/ConfigMap`).then(
  () => true,
  () => false,
)

async function modelFor(object: K8sObject): Promise<Model> {
  const module = (await import(`${MODELS}/${object.apiVersion}/${object.kind}`)) as Record<
    string,
    Model
  >
  const model = module[object.kind]
  assert.ok(model, `no model for ${object.apiVersion} ${object.kind}`)
  return model
}

test('every Kubernetes object validates against the Kubernetes API schemas', {
  skip: hasModels
    ? false
    : 'kubernetes-models is not installed: add it as a devDependency (npm install --save-dev kubernetes-models) to check the manifests against the API schemas',
}, async () => {
  for (const { file, object } of k8sObjects()) {
    const Model = await modelFor(object)
    assert.doesNotThrow(() => new Model(object).validate(), `${file}: ${object.kind}`)
  }
  // The validator is live: a port given as a string where an integer belongs is refused.
  const broken = structuredClone(api()) as Workload
  const container = only(broken.spec.template.spec.containers)
  container.ports = [{ name: 'http', containerPort: '8000' as unknown as number }]
  const Model = await modelFor(broken)
  assert.throws(() => new Model(broken).validate(), /containerPort/)
})

test('every env key in compose, the ConfigMap, the Secret and the workloads is a config key', () => {
  const named: [string, string][] = [
    ...Object.keys(configMap().data).map((key): [string, string] => ['ConfigMap', key]),
    ...Object.keys(secretValues('servekit-secrets')).map((key): [string, string] => [
      'Secret',
      key,
    ]),
    ...workloads().flatMap((workload) =>
      workload.spec.template.spec.containers.flatMap((container) =>
        (container.env ?? []).map((variable): [string, string] => [
          `${workload.metadata.name}/${container.name}`,
          variable.name,
        ]),
      ),
    ),
    ...composeAppServices().flatMap(([service, env]) =>
      Object.keys(env).map((key): [string, string] => [`compose ${service}`, key]),
    ),
  ]
  assert.ok(named.length > 40, `only ${named.length} env keys found`)
  const unknown = named.filter(([, key]) => !SCHEMA_KEYS.has(key))
  assert.deepEqual(unknown, [], 'env keys that src/config/config-schema.ts does not define')
})

test('the ConfigMap sets what prod needs, and secret keys live only in the Secret', () => {
  const data = configMap().data
  const missing = REQUIRED_CONFIGMAP_KEYS.filter((key) => data[key] === undefined)
  assert.deepEqual(missing, [], 'keys a prod deployment should set in the ConfigMap')
  assert.equal(data.APP_ENV, 'prod')
  assert.equal(data.LOG_FORMAT, 'json')
  assert.equal(data.HOST, '0.0.0.0')

  assert.ok(SECRET_KEYS.includes('JWT_SECRET') && SECRET_KEYS.includes('DATABASE_URL'))
  const secret = secretValues('servekit-secrets')
  for (const key of ['JWT_SECRET', 'DATABASE_URL', 'REDIS_URL']) {
    assert.ok(secret[key] !== undefined, `the Secret lacks ${key}`)
  }
  for (const key of SECRET_KEYS) {
    assert.equal(data[key], undefined, `${key} is secret but set in the ConfigMap`)
    for (const workload of workloads()) {
      for (const container of workload.spec.template.spec.containers) {
        assert.ok(
          !container.env?.some((variable) => variable.name === key && variable.value !== undefined),
          `${key} is secret but written into ${workload.metadata.name}`,
        )
      }
    }
  }
})

test('each workload environment loads as the image would: prod, distributed, 0.0.0.0:PORT', () => {
  for (const workload of workloads()) {
    for (const container of workload.spec.template.spec.containers) {
      const config = loadImageConfig(withSampleSecrets(containerEnv(container)))
      const where = `${workload.metadata.name}/${container.name}`
      assert.equal(config.APP_ENV, 'prod', where)
      assert.match(config.DATABASE_URL, /^(mysql|mariadb|postgres|postgresql):\/\//, where)
      assert.ok(config.REDIS_URL, `${where}: replicas need Redis for shared state and jobs`)
      assert.equal(config.HOST, '0.0.0.0', where)
      assert.ok(config.POD_NAME, `${where}: POD_NAME is not set`)
    }
  }
})

test('the Secret holds only placeholders, and the config check refuses each one by name', () => {
  const secret = secretValues('servekit-secrets')
  const env = withSampleSecrets(containerEnv(apiContainer()))
  assert.doesNotThrow(() => loadImageConfig(env))
  for (const [key, value] of Object.entries(secret)) {
    assert.ok(value.startsWith(PLACEHOLDER_PREFIX), `${key} is not marked as a placeholder`)
    assert.throws(
      () => loadImageConfig({ ...env, [key]: value }),
      (error: unknown) => error instanceof ConfigError && error.message.startsWith(`${key}=`),
      `a pod left with the placeholder of ${key} would start`,
    )
  }
})

test('API probes: readiness on /ready, liveness and startup on /health, at PORT', () => {
  const container = apiContainer()
  const port = Number(configMap().data.PORT)
  const http = container.ports?.find((candidate) => candidate.name === 'http')
  assert.equal(http?.containerPort, port, 'the container port is not PORT')
  const probes = {
    readinessProbe: '/ready',
    livenessProbe: '/health',
    startupProbe: '/health',
  } as const
  for (const [probe, path] of Object.entries(probes) as [keyof typeof probes, string][]) {
    const httpGet = container[probe]?.httpGet
    assert.equal(httpGet?.path, path, `${probe} path`)
    assert.equal(portNumber(container, httpGet?.port), port, `${probe} port`)
  }

  const service = findObject<
    K8sObject & {
      spec: { selector: Record<string, string>; ports: { targetPort: string | number }[] }
    }
  >('Service', 'servekit-api')
  assert.equal(portNumber(container, service.spec.ports[0]?.targetPort), port)
  const podLabels = api().spec.template.metadata?.labels ?? {}
  for (const [label, value] of Object.entries(service.spec.selector)) {
    assert.equal(podLabels[label], value, `Service selector ${label} misses the API pods`)
  }
})

test('shutdown fits: preStop + SHUTDOWN_DELAY_MS + SHUTDOWN_GRACE_MS < terminationGracePeriodSeconds', () => {
  const deployments = workloads().filter((workload) => workload.kind === 'Deployment')
  assert.equal(deployments.length, 3)
  for (const deployment of deployments) {
    const pod = deployment.spec.template.spec
    const container = only(pod.containers)
    const config = loadImageConfig(withSampleSecrets(containerEnv(container)))
    const budgetMs = (pod.terminationGracePeriodSeconds ?? 30) * 1000
    const usedMs =
      preStopSeconds(container) * 1000 + config.SHUTDOWN_DELAY_MS + config.SHUTDOWN_GRACE_MS
    assert.ok(
      usedMs + CLOSE_MARGIN_MS <= budgetMs,
      `${deployment.metadata.name}: ${usedMs} ms of drain leaves less than ${CLOSE_MARGIN_MS} ms of ${budgetMs} ms`,
    )
  }
  const apiPod = api().spec.template.spec
  assert.equal(apiPod.terminationGracePeriodSeconds, 30)
  assert.ok(preStopSeconds(apiContainer()) >= 3, 'the API needs a preStop pause')
})

test('each workload runs its own command from the same image', () => {
  const found: Record<string, string[] | undefined> = {}
  const images = new Set<string>()
  for (const workload of workloads()) {
    const container = only(workload.spec.template.spec.containers)
    found[`${workload.kind}/${workload.metadata.name}`] = [
      ...(container.command ?? []),
      ...(container.args ?? []),
    ]
    images.add(container.image)
  }
  assert.deepEqual(found, EXPECTED_COMMANDS)
  assert.equal(images.size, 1, `workloads use different images: ${[...images].join(', ')}`)
})

test('the API rolls out without losing capacity, scales on CPU, and keeps pods through drains', () => {
  const deployment = api()
  assert.equal(deployment.spec.strategy?.type, 'RollingUpdate')
  assert.equal(deployment.spec.strategy?.rollingUpdate?.maxUnavailable, 0)
  assert.equal(deployment.spec.replicas, undefined, 'the HPA owns the replica count')
  assert.ok(apiContainer().resources?.requests?.cpu, 'CPU utilisation needs a CPU request')

  const hpa = findObject<
    K8sObject & {
      spec: {
        scaleTargetRef: { kind: string; name: string }
        minReplicas: number
        maxReplicas: number
        metrics: { type: string; resource?: { name: string; target: { type: string } } }[]
      }
    }
  >('HorizontalPodAutoscaler', 'servekit-api')
  assert.equal(hpa.apiVersion, 'autoscaling/v2')
  assert.deepEqual(
    { kind: hpa.spec.scaleTargetRef.kind, name: hpa.spec.scaleTargetRef.name },
    { kind: 'Deployment', name: deployment.metadata.name },
  )
  assert.ok(hpa.spec.minReplicas >= 2 && hpa.spec.maxReplicas > hpa.spec.minReplicas)
  assert.ok(
    hpa.spec.metrics.some(
      (metric) =>
        metric.type === 'Resource' &&
        metric.resource?.name === 'cpu' &&
        metric.resource.target.type === 'Utilization',
    ),
  )

  const pdb = findObject<
    K8sObject & {
      spec: {
        maxUnavailable?: number
        minAvailable?: number
        selector: { matchLabels: Record<string, string> }
      }
    }
  >('PodDisruptionBudget', 'servekit-api')
  assert.deepEqual(pdb.spec.selector.matchLabels, deployment.spec.selector?.matchLabels)
  const allowsDrain =
    (pdb.spec.maxUnavailable ?? 0) >= 1 ||
    (pdb.spec.minAvailable !== undefined && pdb.spec.minAvailable < hpa.spec.minReplicas)
  assert.ok(allowsDrain, 'the PodDisruptionBudget would block every node drain')
})

test('every pod runs as non-root on a read-only root filesystem, writing only to emptyDirs', () => {
  for (const workload of workloads()) {
    const pod = workload.spec.template.spec
    const name = workload.metadata.name
    assert.equal(pod.securityContext?.runAsNonRoot, true, name)
    assert.ok((pod.securityContext?.runAsUser ?? 0) > 0, `${name}: runAsUser`)
    const emptyDirs = new Set(
      (pod.volumes ?? []).filter((volume) => volume.emptyDir).map((volume) => volume.name),
    )
    for (const container of pod.containers) {
      assert.equal(container.securityContext?.readOnlyRootFilesystem, true, name)
      assert.equal(container.securityContext?.allowPrivilegeEscalation, false, name)
      assert.deepEqual(container.securityContext?.capabilities?.drop, ['ALL'], name)
      assert.ok(container.resources?.requests?.memory, `${name}: memory request`)
      assert.ok(container.resources?.limits?.memory, `${name}: memory limit`)
      const mounts = container.volumeMounts ?? []
      assert.ok(
        mounts.some((mount) => mount.mountPath === '/tmp'),
        `${name}: /tmp is not writable`,
      )
      for (const mount of mounts) {
        assert.ok(emptyDirs.has(mount.name), `${name}: ${mount.mountPath} is not an emptyDir`)
      }
      const podName = container.env?.find((variable) => variable.name === 'POD_NAME')
      assert.equal(podName?.valueFrom?.fieldRef?.fieldPath, 'metadata.name', `${name}: POD_NAME`)
    }
  }
})
