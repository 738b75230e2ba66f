// The plugin's work by hand on bare Fastify routes: Fastify's JSON parser, @fastify/formbody.
import formbody from '@fastify/formbody'
import Fastify from 'fastify'
import { EDIS_PATH, SUCCESS, VOXIMPLANT_PATH } from '../protocol.js'
import { serve } from './harness.js'
import { FAILURE, receiveEdis, receiveVoximplant } from './handwritten.js'

const app = Fastify({ logger: false })
await app.register(formbody)
app.post(VOXIMPLANT_PATH, async (request, reply) => {
  const status = receiveVoximplant(request.body)
  return status === 200 ? SUCCESS : reply.code(status).send(FAILURE)
})
app.post(EDIS_PATH, async (request, reply) => {
  const status = receiveEdis(request.body)
  return status === 200 ? SUCCESS : reply.code(status).send(FAILURE)
})
await app.listen({ host: '127.0.0.1', port: 0 })
serve(app.server, () => app.close())
