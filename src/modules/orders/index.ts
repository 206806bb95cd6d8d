export {
  createOrderDispatcher,
  type OrderDispatcher,
  STALE_SWEEPS,
  type SweepReport,
} from './orders-dispatcher.ts'
export {
  createOrderTasks,
  ORDER_TOPIC,
  orderTaskId,
  type ProcessOrderPayload,
  type ProcessOrderResult,
  processOrder,
} from './orders-jobs.ts'
export {
  createOrdersRepository,
  type OrderRow,
  type OrdersRepository,
  type Settlement,
} from './orders-repository.ts'
export { ordersRoutes } from './orders-routes.ts'
export type { OrderEvent, OrderPublic, RejectionReason } from './orders-schemas.ts'
export {
  createOrdersService,
  type OrderEventSink,
  type OrdersService,
  orderChannel,
} from './orders-service.ts'
