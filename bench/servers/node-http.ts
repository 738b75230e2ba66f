// The ceiling: node:http reads the request body and answers the fixed success body, nothing else.
import { countRequest, listen, serve } from './harness.js'
import { SUCCESS_JSON } from '../protocol.js'

const answer = Buffer.from(SUCCESS_JSON)
const headers = { 'content-type': 'application/json; charset=utf-8', 'content-length': String(answer.length) }

serve(await listen((request, response) => {
  const chunks: Buffer[] = []
  request.on('data', (chunk: Buffer) => { chunks.push(chunk) })
  request.on('end', () => {
    Buffer.concat(chunks)
    countRequest()
    response.writeHead(200, headers).end(answer)
  })
}))
