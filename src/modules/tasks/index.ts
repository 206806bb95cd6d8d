export { tasksRoutes } from './tasks-routes.ts'
export type { TaskStatusPublic, WorkflowCreate } from './tasks-schemas.ts'
export { createTasksService, type TasksService } from './tasks-service.ts'
