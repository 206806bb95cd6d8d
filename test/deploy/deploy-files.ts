import { cpSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseAllDocuments } from 'yaml'
import { type Config, loadConfig } from '../../src/config/index.ts'

/** Readers for the files under deploy/, .github/ and .dockerignore, shared by the deploy tests. */

export const ROOT = fileURLToPath(new URL('../../', import.meta.url))
export const K8S_DIR = join(ROOT, 'deploy/k8s')

export function readText(path: string): string {
  return readFileSync(join(ROOT, path), 'utf8')
}

/** Every .yaml/.yml file under deploy/ and .github/, relative to the repository root. */
export function yamlFiles(): string[] {
  const found: string[] = []
  const walk = (dir: string) => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name)
      if (entry.isDirectory()) walk(path)
      else if (/\.ya?ml$/.test(entry.name)) found.push(relative(ROOT, path))
    }
  }
  walk(join(ROOT, 'deploy'))
  walk(join(ROOT, '.github'))
  return found.sort()
}

/**
 * The documents of a YAML file as plain values. Merge keys (`<<`) are resolved, as Compose
 * does; any error or warning throws with the file name.
 */
export function readYamlDocuments(path: string): unknown[] {
  return parseYamlDocuments(readText(path), path)
}

/** As readYamlDocuments, for text; `name` labels the error. */
export function parseYamlDocuments(text: string, name: string): unknown[] {
  const documents = parseAllDocuments(text, { merge: true, prettyErrors: true })
  if (!Array.isArray(documents)) return []
  return documents.map((document) => {
    const problems = [...document.errors, ...document.warnings]
    if (problems.length > 0) {
      throw new Error(`${name}: ${problems.map((problem) => problem.message).join('; ')}`)
    }
    return document.toJS({ maxAliasCount: 100 }) as unknown
  })
}

export function readYaml<T>(path: string): T {
  const [document] = readYamlDocuments(path)
  return document as T
}

// ---- Kubernetes -------------------------------------------------------------------------

export interface K8sObject {
  apiVersion: string
  kind: string
  metadata: { name: string; labels?: Record<string, string> }
  [field: string]: unknown
}

export interface EnvVar {
  name: string
  value?: string
  valueFrom?: { fieldRef?: { fieldPath: string } }
}

export interface Probe {
  httpGet?: { path: string; port: number | string }
  periodSeconds?: number
  failureThreshold?: number
}

export interface Container {
  name: string
  image: string
  command?: string[]
  args?: string[]
  ports?: { name?: string; containerPort: number }[]
  env?: EnvVar[]
  envFrom?: { configMapRef?: { name: string }; secretRef?: { name: string } }[]
  startupProbe?: Probe
  livenessProbe?: Probe
  readinessProbe?: Probe
  lifecycle?: { preStop?: { sleep?: { seconds: number }; exec?: { command: string[] } } }
  resources?: { requests?: Record<string, string>; limits?: Record<string, string> }
  securityContext?: {
    runAsNonRoot?: boolean
    runAsUser?: number
    readOnlyRootFilesystem?: boolean
    allowPrivilegeEscalation?: boolean
    capabilities?: { drop?: string[] }
  }
  volumeMounts?: { name: string; mountPath: string }[]
}

export interface PodSpec {
  containers: Container[]
  terminationGracePeriodSeconds?: number
  securityContext?: { runAsNonRoot?: boolean; runAsUser?: number }
  volumes?: { name: string; emptyDir?: object }[]
}

export interface Workload extends K8sObject {
  spec: {
    replicas?: number
    selector?: { matchLabels?: Record<string, string> }
    strategy?: { type?: string; rollingUpdate?: { maxUnavailable?: number | string } }
    template: { metadata?: { labels?: Record<string, string> }; spec: PodSpec }
  }
}

/** The manifests kustomization.yaml lists, in order. */
export function kustomizationResources(): string[] {
  return readYaml<{ resources: string[] }>('deploy/k8s/kustomization.yaml').resources
}

/** Every object in the files kustomization.yaml lists, with the file it came from. */
export function k8sObjects(): { file: string; object: K8sObject }[] {
  return kustomizationResources().flatMap((resource) =>
    readYamlDocuments(`deploy/k8s/${resource}`).map((object) => ({
      file: resource,
      object: object as K8sObject,
    })),
  )
}

export function findObject<T extends K8sObject>(kind: string, name: string): T {
  const found = k8sObjects().find(
    ({ object }) => object.kind === kind && object.metadata.name === name,
  )
  if (!found) throw new Error(`no ${kind} named ${name} in deploy/k8s`)
  return found.object as T
}

export function workloads(): Workload[] {
  return k8sObjects()
    .map(({ object }) => object)
    .filter((object): object is Workload => ['Deployment', 'Job'].includes(object.kind))
}

/**
 * The environment a container starts with, as the kubelet builds it: envFrom sources in order,
 * then env entries on top. Downward-API values become a made-up pod name.
 */
export function containerEnv(container: Container): Record<string, string> {
  const env: Record<string, string> = {}
  for (const source of container.envFrom ?? []) {
    if (source.configMapRef) {
      const configMap = findObject<K8sObject & { data?: Record<string, string> }>(
        'ConfigMap',
        source.configMapRef.name,
      )
      Object.assign(env, configMap.data)
    }
    if (source.secretRef) Object.assign(env, secretValues(source.secretRef.name))
  }
  for (const variable of container.env ?? []) {
    env[variable.name] =
      variable.value ?? (variable.valueFrom?.fieldRef ? 'servekit-api-7c9d8b6f5-x2kqz' : '')
  }
  return env
}

export function secretValues(name: string): Record<string, string> {
  const secret = findObject<
    K8sObject & { stringData?: Record<string, string>; data?: Record<string, string> }
  >('Secret', name)
  const decoded = Object.entries(secret.data ?? {}).map(([key, value]) => [
    key,
    Buffer.from(value, 'base64').toString('utf8'),
  ])
  return { ...Object.fromEntries(decoded), ...secret.stringData }
}

/** The env keys a container names itself or through envFrom. */
export function containerEnvKeys(container: Container): string[] {
  return Object.keys(containerEnv(container))
}

export const PLACEHOLDER_PREFIX = 'REPLACE_ME'

/** Stand-ins for the Secret's placeholders: what an operator would put there. */
export const SAMPLE_SECRETS: Readonly<Record<string, string>> = {
  JWT_SECRET: 'k9Xw2fQv7LrT4mZp8sNc3bHj6yGd1aEu5oVi0qWe',
  DATABASE_URL: 'mysql://servekit:s3cret@mysql.db.svc:3306/servekit',
  REDIS_URL: 'redis://:s3cret@redis.db.svc:6379/0',
}

/** Replaces every placeholder value with its sample; an unknown placeholder throws. */
export function withSampleSecrets(env: Record<string, string>): Record<string, string> {
  const result = { ...env }
  for (const [key, value] of Object.entries(result)) {
    if (!value.startsWith(PLACEHOLDER_PREFIX)) continue
    const sample = SAMPLE_SECRETS[key]
    if (sample === undefined) throw new Error(`no sample value for the placeholder of ${key}`)
    result[key] = sample
  }
  return result
}

/**
 * Loads the config as the image would: the given environment, then the committed
 * configs/.env.<APP_ENV> (the image ships configs/ but never a .env), then the defaults.
 */
export function loadImageConfig(env: Record<string, string>): Readonly<Config> {
  if (imageRoot === undefined) {
    imageRoot = mkdtempSync(join(tmpdir(), 'servekit-image-'))
    cpSync(join(ROOT, 'configs'), join(imageRoot, 'configs'), { recursive: true })
    const cleanUp = imageRoot
    process.once('exit', () => rmSync(cleanUp, { recursive: true, force: true }))
  }
  return loadConfig(env, { cwd: imageRoot })
}

let imageRoot: string | undefined

// ---- Compose ------------------------------------------------------------------------------

export interface ComposeService {
  image?: string
  build?: { context?: string; dockerfile?: string }
  command?: string[] | string
  environment?: Record<string, string | number | boolean | null>
  depends_on?: Record<string, { condition?: string }>
  healthcheck?: { test?: string[] | string; disable?: boolean }
  stop_grace_period?: string
  ports?: string[]
  restart?: string
  read_only?: boolean
}

export interface ComposeFile {
  services: Record<string, ComposeService>
}

/** Compose's `${VAR}`, `${VAR:-default}` and `${VAR:?message}` substitution over `vars`. */
export function interpolate(value: string, vars: Record<string, string>): string {
  return value.replace(
    /\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}/g,
    (_match, name: string, operator: string | undefined, operand: string | undefined) => {
      const set = vars[name]
      const isEmpty = set === undefined || (operator?.startsWith(':') === true && set === '')
      if (!isEmpty) return set
      if (operator?.endsWith('?')) throw new Error(`${name} is required: ${operand}`)
      if (operator?.endsWith('-')) return operand ?? ''
      return ''
    },
  )
}

/** "30s", "1m30s", "500ms" as milliseconds. */
export function composeDurationMs(duration: string): number {
  const units: Record<string, number> = { h: 3_600_000, m: 60_000, s: 1000, ms: 1, us: 0.001 }
  let total = 0
  let rest = duration
  for (const match of duration.matchAll(/(\d+(?:\.\d+)?)(h|ms|m|s|us)/g)) {
    total += Number(match[1]) * (units[match[2] as string] ?? Number.NaN)
    rest = rest.replace(match[0], '')
  }
  if (rest !== '' || duration === '') throw new Error(`not a Compose duration: ${duration}`)
  return total
}

// ---- Dockerfile ---------------------------------------------------------------------------

export interface DockerInstruction {
  keyword: string
  args: string
}

/** Instructions in order, continuation lines joined, comments and directives dropped. */
export function parseDockerfile(text: string): DockerInstruction[] {
  const instructions: DockerInstruction[] = []
  let pending = ''
  for (const line of text.split('\n')) {
    const trimmed = line.trim()
    if (pending === '' && (trimmed === '' || trimmed.startsWith('#'))) continue
    if (pending !== '' && trimmed.startsWith('#')) continue
    if (trimmed.endsWith('\\')) {
      pending += `${trimmed.slice(0, -1)} `
      continue
    }
    const full = `${pending}${trimmed}`.trim()
    pending = ''
    if (full === '') continue
    const [keyword = '', ...rest] = full.split(/\s+/)
    instructions.push({ keyword: keyword.toUpperCase(), args: rest.join(' ') })
  }
  return instructions
}

/** The JSON (exec) form of CMD, ENTRYPOINT or HEALTHCHECK CMD; undefined for the shell form. */
export function execForm(args: string): string[] | undefined {
  if (!args.trimStart().startsWith('[')) return undefined
  const parsed: unknown = JSON.parse(args)
  return Array.isArray(parsed) && parsed.every((part) => typeof part === 'string')
    ? parsed
    : undefined
}
