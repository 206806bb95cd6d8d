export { type GeneratedInput, type GenerateOptions, generateInput } from './generate.ts'
export {
  type InputEvent,
  InputEventSchema,
  type OutputEvent,
  OutputEventSchema,
} from './pipeline-record.ts'
export {
  type BadLine,
  formatSummary,
  type PipelineOptions,
  type PipelineSummary,
  runPipeline,
} from './run-pipeline.ts'
