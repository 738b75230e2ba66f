import { connect } from 'node:net'
import type { AddressInfo } from 'node:net'
import t from 'tap'
import { appWith, basic, CREDENTIALS, EDIS_BODIES, FORM } from './helpers.js'

/** Writes `request` byte for byte to a real socket and returns the raw answer. */
function rawExchange (port: number, request: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () => socket.end(request, 'latin1'))
    const chunks: Buffer[] = []
    socket.on('data', chunk => chunks.push(chunk))
    socket.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')))
    socket.on('error', reject)
  })
}

t.test('a real socket carries the unencoded body exactly as the EDIS docs\' curl sends it', async t => {
  const { app, events } = await appWith({ edis: { credentials: CREDENTIALS } })
  t.teardown(() => app.close())
  await app.listen({ port: 0, host: '127.0.0.1' })
  const { port } = app.server.address() as AddressInfo
  const body = EDIS_BODIES.unencoded
  const answer = await rawExchange(port, [
    'POST /callbacks/edis HTTP/1.1',
    'Host: 127.0.0.1',
    'User-Agent: curl/8.5.0',
    `Authorization: ${basic(CREDENTIALS.username, CREDENTIALS.password)}`,
    `Content-Type: ${FORM}`,
    `Content-Length: ${Buffer.byteLength(body)}`,
    'Connection: close',
    '',
    body
  ].join('\r\n'))
  t.match(answer, /^HTTP\/1\.1 200 OK\r\n/)
  t.match(answer, /\r\ncontent-type: application\/json; charset=utf-8\r\n/i)
  t.ok(answer.endsWith('\r\n\r\n{"status":"success","message":"Callback received successfully."}'))
  t.same(events.map(e => e.payload), [{ kvm: 'kvm_123456_789012', details: 'Traffic usage reached 100%', trigger_value: 100 }])
})

t.test('bytes that are not UTF-8 do not crash the parser', async t => {
  const { app, events } = await appWith({ edis: {} })
  t.teardown(() => app.close())
  await app.listen({ port: 0, host: '127.0.0.1' })
  const { port } = app.server.address() as AddressInfo
  const body = 'kvm=kvm_\xff\xfe&details=caf\xe9 %E9&trigger_value=80'
  const answer = await rawExchange(port, `POST /callbacks/edis HTTP/1.1\r\nHost: x\r\nContent-Type: ${FORM}\r\nContent-Length: ${Buffer.byteLength(body, 'latin1')}\r\nConnection: close\r\n\r\n${body}`)
  t.match(answer, /^HTTP\/1\.1 200 OK/)
  t.same(events[0]?.payload, { kvm: 'kvm_\ufffd\ufffd', details: 'caf\ufffd \ufffd', trigger_value: 80 }, 'invalid bytes become U+FFFD')
})

t.test('a Content-Length that does not match the body is a 400', async t => {
  const { app, events } = await appWith({ edis: {} })
  t.teardown(() => app.close())
  const res = await app.inject({ method: 'POST', url: '/callbacks/edis', headers: { 'content-type': FORM, 'content-length': '500' }, payload: EDIS_BODIES.canonical })
  t.equal(res.statusCode, 400)
  t.same(res.json(), { status: 'error', message: 'Invalid request parameters provided.', code: 'FST_PROVIDER_CALLBACKS_MALFORMED_BODY' })
  t.equal(events.length, 0)
})
