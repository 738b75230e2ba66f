import type { EventEmitter } from 'node:events'
import type { Worker } from 'bullmq'
import type { FastifyBaseLogger } from 'fastify'
import type { AnyProviderCallbackEvent } from '../event-types.js'
import type { IdempotencyStore } from '../idempotency/store.js'
import type { TraceCarrier } from './job.js'
import type { CommonInboxSettings } from './options.js'

/** What a worker's BullMQ Worker and claims run on: what differs from one inbox's storage to another's. */
export interface WorkerBackend {
  /** The claim protocol's store, the worker's own. */
  readonly store: IdempotencyStore
  /** The handlers' writes and the done mark in one transaction of the store's. */
  readonly transactional: boolean
  /** BullMQ's Worker class for this storage. */
  Worker(bullmq: typeof import('bullmq')): typeof Worker
  /** The Worker's options naming where it runs (connection, prefix, runRetryDelay). */
  readonly workerOptions: { connection: unknown, prefix?: string, runRetryDelay?: number }
  /** A Worker that could not start is never retried by BullMQ: made again, after a pause. */
  readonly restartFailed: boolean
  /** Waits, if need be, for the claims' connection before a run. */
  ready(): Promise<void> | undefined
  /** Started with the Worker, closed before it: the Redis inbox's fan-out of received requests. */
  started(options: { lockDuration?: number, stalledInterval?: number }, log: FastifyBaseLogger, failed: () => void): { close(): Promise<void> } | undefined
  /** Whether the Worker's close must not wait for its connection (it is down). */
  forceClose(): boolean
  /** The claims' connection ended, once the Worker is closed. */
  end(): Promise<void>
}

/** What a worker needs of its inbox. */
export interface WorkerInbox extends EventEmitter {
  readonly settings: CommonInboxSettings
  /** The queue: the worker trims its finished jobs. */
  queue(): Promise<{ clean(grace: number, limit: number, type: 'completed' | 'failed'): Promise<string[]> }>
  /** The storage's specifics; the Redis inbox's are the worker's own (worker.ts). */
  workerBackend?(): WorkerBackend
}

/** What the plugin's routes need of an inbox: storing a request's events. */
export interface StoringInbox extends WorkerInbox {
  /** Waits up to addTimeout for the storage; rejects when it cannot be reached. */
  connect(): Promise<void>
  enqueue(events: readonly AnyProviderCallbackEvent[], trace?: TraceCarrier): Promise<void>
  close(): Promise<void>
}
