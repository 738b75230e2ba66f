// What the runner (bench/run.ts) and a server process (bench/servers/*.ts) say to each other over
// the IPC channel of child_process.fork.

/** Runner to server. */
export type ToServer =
  /** Start a measured window: take the CPU baseline, zero the item counter. */
  | { type: 'start', itemsPerRequest: number }
  /** End the window: answer with `stopped`. */
  | { type: 'stop' }
  | { type: 'exit' }

/** What a server did over a measured window. */
export interface WindowUsage {
  /** User + system CPU time of the whole server process (every thread), in µs. */
  cpuMicros: number
  /** Items the server processed: the handler's counter (node-http: requests times items per request). */
  items: number
  /** Wall time of the window, in ms. */
  elapsedMs: number
  rss: number
  heapUsed: number
}

/** Server to runner. */
export type FromServer =
  | { type: 'ready', port: number }
  | { type: 'started' }
  | ({ type: 'stopped' } & WindowUsage)

/** The signing secret of every Voximplant callback in the bench. */
export const SECRET = { apiKey: 'bench-key', salt: 'bench-salt' } as const

/** The seed's answer to a received callback, which every server sends. */
export const SUCCESS = { status: 'success', message: 'Callback received successfully.' } as const
export const SUCCESS_JSON = JSON.stringify(SUCCESS)

export const EDIS_PATH = '/callbacks/edis'
export const VOXIMPLANT_PATH = '/callbacks/voximplant'
