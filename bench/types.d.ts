// The parts of autocannon and Express 5 the bench uses: neither ships type declarations, and the
// bench adds no @types packages.

declare module 'autocannon' {
  namespace autocannon {
    interface Request {
      method?: string
      path?: string
      headers?: Record<string, string>
      body?: string | Buffer
      /** Called before every request; what it returns is sent. */
      setupRequest?: (request: Request, context: Record<string, unknown>) => Request | null | undefined
      onResponse?: (status: number, body: string, context: Record<string, unknown>, headers: Record<string, unknown>) => void
    }
    interface Options {
      url: string
      connections?: number
      pipelining?: number
      /** Seconds. */
      duration?: number
      /** Seconds. */
      timeout?: number
      requests?: Request[]
    }
    interface Histogram {
      average: number
      mean: number
      stddev: number
      min: number
      max: number
      p50: number
      p90: number
      p99: number
      total: number
    }
    interface Result {
      requests: Histogram & { sent: number }
      latency: Histogram
      throughput: Histogram
      /** Seconds. */
      duration: number
      errors: number
      timeouts: number
      non2xx: number
      resets: number
      '2xx': number
      statusCodeStats: Record<string, { count: number }>
    }
  }
  function autocannon (options: autocannon.Options): Promise<autocannon.Result>
  export = autocannon
}

declare module 'express' {
  import type { IncomingMessage, ServerResponse } from 'node:http'

  namespace express {
    interface Request extends IncomingMessage {
      body: unknown
    }
    interface Response extends ServerResponse {
      status (code: number): this
      json (body: unknown): this
    }
    type Handler = (request: Request, response: Response, next: (error?: unknown) => void) => void
    interface Application {
      (request: IncomingMessage, response: ServerResponse): void
      post (path: string, ...handlers: Handler[]): this
      disable (setting: string): this
    }
  }
  interface Express {
    (): express.Application
    json (options?: { limit?: string | number }): express.Handler
    urlencoded (options?: { extended?: boolean, limit?: string | number }): express.Handler
  }
  const express: Express
  export = express
}
