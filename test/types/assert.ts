// Shared by the type tests: `expectType<Equal<A, B>>()` compiles only when A and B are the same type
// (not merely assignable one way or both ways).
export type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends (<T>() => T extends B ? 1 : 2) ? true : false

export function expectType<T extends true> (_check?: T): void {}

/** Whether every value of a record type is `true`: for checks mapped over a union of names. */
export type All<Checks> = Equal<Checks[keyof Checks], true>
