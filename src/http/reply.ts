import type { FastifyReply } from 'fastify'

const passThrough = (payload: unknown) => payload as string

/**
 * Sends JSON that is already serialised in the route's response shape (a cached copy) as it is,
 * skipping the serialiser. The caller vouches for the shape; the route schema still documents it.
 */
export function sendJsonText(reply: FastifyReply, json: string): FastifyReply {
  return (reply as FastifyReply)
    .type('application/json; charset=utf-8')
    .serializer(passThrough)
    .send(json)
}
