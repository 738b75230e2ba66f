import type { Outcome } from '../delivery/outcome.js'
import type { AnyProviderCallbackEvent } from '../event-types.js'
import type { MaybePromise } from '../maybe-promise.js'
import type { TraceCarrier } from './job.js'

/**
 * What the inbox tells an observer of its own (the app's telemetry: lib/telemetry.ts has one),
 * and the context it carries from a request to the worker that runs its events. The inbox knows
 * nothing of what the observer does with it.
 */
export interface InboxHooks {
  /** The context to store with a request's jobs (its trace), if any. */
  jobContext(): TraceCarrier | undefined
  /** The inbox stored an event. */
  stored(event: AnyProviderCallbackEvent): void
  /** A worker's run of a job, around `run`, with the context stored with it and its attempt (1 for the first run). */
  runJob<T extends Outcome>(event: AnyProviderCallbackEvent, stored: TraceCarrier | undefined, attempt: number, run: () => MaybePromise<T>): MaybePromise<T>
  /** A job's handler failed, in the handler's own async context. */
  handlerError(error: unknown): void
  /** A job failed and has attempts left. */
  retried(event: AnyProviderCallbackEvent): void
  /** A job failed for good: it is a dead letter now. */
  deadLettered(event: AnyProviderCallbackEvent): void
  /** A worker could not make jobs of a received entry. */
  fanOutFailed(): void
  /** Counts `held()` among the claims held, until the returned function is called. */
  observeClaims(held: () => number): () => void
}
