import type { Logger } from 'pino'
import type { Config } from '../../config/index.ts'
import { createOtlpExporter, type SpanExporter } from './span-exporter.ts'

export {
  createOtlpExporter,
  type OtlpExporterOptions,
  type SpanExporter,
  type SpanRecord,
} from './span-exporter.ts'

/** The span exporter OTEL_EXPORTER_OTLP_ENDPOINT asks for, or undefined (trace ids in logs only). */
export function createTracing(
  config: Pick<Config, 'APP_NAME' | 'OTEL_EXPORTER_OTLP_ENDPOINT'>,
  logger: Logger,
): SpanExporter | undefined {
  if (!config.OTEL_EXPORTER_OTLP_ENDPOINT) return undefined
  return createOtlpExporter({
    endpoint: config.OTEL_EXPORTER_OTLP_ENDPOINT,
    serviceName: config.APP_NAME,
    logger,
  })
}
