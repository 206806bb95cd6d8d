export { type Container, type ContainerOverrides, createContainer } from './container.ts'
export { Readiness, type ReadinessCheck, type ReadinessReport } from './readiness.ts'
