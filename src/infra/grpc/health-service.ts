import {
  type ServerUnaryCall,
  type ServerWritableStream,
  type sendUnaryData,
  status,
} from '@grpc/grpc-js'
import type { GrpcServiceBinding } from './grpc-server.ts'
import {
  type HealthCheckRequest,
  type HealthCheckResponse,
  protoServices,
  type ServingStatus,
} from './proto-definitions.ts'

export interface HealthServiceOptions {
  /** The status of a service ("" is the whole server), or undefined for a service not served. */
  statusOf: (service: string) => ServingStatus | undefined
  /** How often a Watch stream looks for a change; default 1000 ms. */
  watchIntervalMs?: number
}

export interface HealthService extends GrpcServiceBinding {
  /** Answers NOT_SERVING from now on and ends every Watch stream (at shutdown). */
  shutdown(): void
}

/**
 * grpc.health.v1.Health: Check answers the current status (NOT_FOUND for an unknown service),
 * Watch sends it and then every change. No auth: probes (kubelet, grpc_health_probe) send none.
 */
export function createHealthService(options: HealthServiceOptions): HealthService {
  const watchIntervalMs = options.watchIntervalMs ?? 1000
  const watchers = new Set<ServerWritableStream<HealthCheckRequest, HealthCheckResponse>>()
  let isShutDown = false
  const statusOf = (service: string): ServingStatus | undefined => {
    const current = options.statusOf(service)
    return current !== undefined && isShutDown ? 'NOT_SERVING' : current
  }

  const implementation = {
    Check(
      call: ServerUnaryCall<HealthCheckRequest, HealthCheckResponse>,
      callback: sendUnaryData<HealthCheckResponse>,
    ) {
      const current = statusOf(call.request.service)
      if (current === undefined) {
        callback({ code: status.NOT_FOUND, details: `unknown service ${call.request.service}` })
        return
      }
      callback(null, { status: current })
    },

    Watch(call: ServerWritableStream<HealthCheckRequest, HealthCheckResponse>) {
      let last: ServingStatus | undefined
      const send = () => {
        const current = statusOf(call.request.service) ?? 'SERVICE_UNKNOWN'
        if (current !== last) {
          last = current
          call.write({ status: current })
        }
      }
      send()
      const timer = setInterval(send, watchIntervalMs)
      timer.unref()
      watchers.add(call)
      const stop = () => {
        clearInterval(timer)
        watchers.delete(call)
      }
      call.on('cancelled', stop)
      call.on('close', stop)
      call.on('finish', stop)
    },
  }

  return {
    definition: protoServices().Health.service,
    implementation,
    shutdown() {
      isShutDown = true
      for (const call of watchers) {
        call.write({ status: 'NOT_SERVING' })
        call.end()
      }
      watchers.clear()
    },
  }
}
