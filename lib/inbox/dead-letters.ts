import type { Job, Queue } from 'bullmq'
import type { AnyProviderCallbackEvent } from '../event-types.js'
import { eventIdOf, eventOf, jobIdOf, type InboxJobData } from './job.js'

/** An event out of attempts, or refused for good (UnrecoverableError): the dead letters. */
export interface DeadLetter {
  event: AnyProviderCallbackEvent
  /** Runs made. */
  attempts: number
  /** The last run's error message. */
  error: string
}

/** `work` on an inbox's Queue, bounded by its addTimeout (either inbox's `withQueue`). */
type WithQueue = <T>(work: (queue: Queue) => Promise<T>) => Promise<T>

/** An inbox's dead letters, oldest first: BullMQ's failed jobs, on Redis or on PostgreSQL alike. */
export async function deadLetters (withQueue: WithQueue): Promise<DeadLetter[]> {
  const jobs = await withQueue(async queue => await queue.getFailed(0, -1) as Array<Job<InboxJobData>>)
  return jobs.reverse().map(job => ({ event: eventOf(job.data), attempts: job.attemptsMade, error: job.failedReason }))
}

/** Runs a dead-lettered event again, its attempts afresh; `false` when it is not a dead letter. */
export async function retryDeadLetter (withQueue: WithQueue, eventId: string): Promise<boolean> {
  return await withQueue(async queue => {
    const job = await queue.getJob(jobIdOf(eventId))
    if (job === undefined || !await job.isFailed()) return false
    await job.retry('failed', { resetAttemptsMade: true, resetAttemptsStarted: true })
    return true
  })
}

/** `retryDeadLetter` for every dead letter; how many went back. */
export async function retryDeadLetters (withQueue: WithQueue): Promise<number> {
  // The dead letters of now: one retried and failed again meanwhile is not retried twice.
  const jobs = await withQueue(async queue => await queue.getFailed(0, -1))
  let retried = 0
  for (const job of jobs) {
    if (await retryDeadLetter(withQueue, eventIdOf(job.id!))) retried++
  }
  return retried
}
