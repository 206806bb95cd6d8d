export { filenameFromContentDisposition } from './content-disposition.ts'
export type { Download, DownloadInfo, DownloadOptions } from './downloads.ts'
export {
  createHttpClient,
  type HttpClient,
  type HttpClientOptions,
  type RequestOptions,
} from './http-client.ts'
export { HttpClientError, type HttpClientErrorKind } from './http-client-error.ts'
export type { CallOptions, HttpMethod, HttpResponse, ResponseHeaders } from './http-transport.ts'
export type { JsonResult, UploadOptions } from './json-calls.ts'
