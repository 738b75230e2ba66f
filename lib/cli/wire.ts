// How `send` puts a callback on the wire: node:http(s), not fetch, so that the bytes and headers are
// exactly what the provider would send.
import { request as httpRequest, type IncomingMessage, type OutgoingHttpHeaders } from 'node:http'
import { request as httpsRequest } from 'node:https'
import type { CliIO } from './common.js'

export interface Delivery {
  method: string
  /** Path and query, exactly as they go on the request line. */
  path: string
  /** The same, as printed: no secret in it. */
  shown: string
  headers: OutgoingHttpHeaders
  body?: string
}

export interface Answer { status: number, body: string }

export function isSuccess (answer: Answer): boolean {
  return answer.status >= 200 && answer.status < 300
}

export function answerLine (url: URL, delivery: Delivery, answer: Answer): string {
  return `${delivery.method} ${url.origin}${delivery.shown} -> ${answer.status} ${answer.body}\n`
}

export function bodyHeaders (contentType: string, text: string): OutgoingHttpHeaders {
  return { 'Content-Type': contentType, 'Content-Length': Buffer.byteLength(text) }
}

/**
 * Sends `delivery`: Host (and Connection) are Node's, the rest is the delivery's. Resolves to
 * undefined, the failure reported, when the URL cannot be reached or does not answer in time.
 */
export async function exchange (url: URL, delivery: Delivery, timeout: number, io: CliIO): Promise<Answer | undefined> {
  try {
    return await new Promise<Answer>((resolve, reject) => {
      const send: typeof httpRequest = url.protocol === 'https:' ? httpsRequest : httpRequest
      const request = send(url, { method: delivery.method, path: delivery.path, headers: delivery.headers, timeout }, response => {
        collect(response, resolve, reject)
      })
      request.on('timeout', () => { request.destroy(new Error(`no answer within ${timeout} ms`)) })
      request.on('error', reject)
      request.end(delivery.body)
    })
  } catch (error) {
    const { code, message } = error as NodeJS.ErrnoException
    io.stderr.write(`cannot reach ${url.origin}${delivery.shown}: ${code ?? message}\n`)
    return undefined
  }
}

function collect (response: IncomingMessage, resolve: (answer: Answer) => void, reject: (error: Error) => void): void {
  const chunks: Buffer[] = []
  response.on('data', (chunk: Buffer) => { chunks.push(chunk) })
  response.on('error', reject)
  response.on('end', () => { resolve({ status: Number(response.statusCode), body: Buffer.concat(chunks).toString() }) })
}
