/**
 * A hash table of string keys, each with an owner (undefined: done) and an expiry, in flat arrays
 * with open addressing. Why not a Map: a Map of fresh string keys compares every key of a bucket's
 * chain by reading that key's string, a cache miss per key once the table is larger than the cache,
 * so remembering an event cost about 1 µs with memoryStore's four look-ups. Here a look-up reads a
 * slot of an Int32Array of the keys' hashes (a cache line holds 16) and reads a key only when its
 * hash is equal, and then it is mostly the very string the caller holds (claim and complete are
 * given the same event id).
 */
export class KeyTable {
  #hashes: Int32Array
  // Where the hash is set and the key undefined, a removed key (a tombstone): look-ups go past it.
  #keys: Array<string | undefined>
  #owners: Array<string | undefined>
  #expires: Float64Array
  #mask: number
  // Slots taken, tombstones included: the load factor is kept under 1/2 so that probes stay short.
  #used = 0
  /** Keys in the table. */
  size = 0

  /** `capacity`: slots, a power of two; the table doubles when half of them are taken. */
  constructor (capacity = 16) {
    this.#hashes = new Int32Array(capacity)
    this.#keys = new Array<string | undefined>(capacity).fill(undefined)
    this.#owners = new Array<string | undefined>(capacity).fill(undefined)
    this.#expires = new Float64Array(capacity)
    this.#mask = capacity - 1
  }

  get capacity (): number {
    return this.#mask + 1
  }

  /** The slot of `key` (whose hashOf is `hash`), or -1. */
  find (key: string, hash: number): number {
    const hashes = this.#hashes
    const mask = this.#mask
    let slot = hash & mask
    for (let found = hashes[slot]!; found !== 0; found = hashes[slot]!) {
      if (found === hash && this.#keys[slot] === key) return slot
      slot = (slot + 1) & mask
    }
    return -1
  }

  /** Adds `key`, which is not in the table. */
  add (key: string, hash: number, owner: string | undefined, expires: number): void {
    if ((this.#used + 1) * 2 > this.#mask + 1) this.#grow()
    const hashes = this.#hashes
    const mask = this.#mask
    let slot = hash & mask
    while (hashes[slot] !== 0) slot = (slot + 1) & mask
    hashes[slot] = hash
    this.#keys[slot] = key
    this.#owners[slot] = owner
    this.#expires[slot] = expires
    this.#used++
    this.size++
  }

  owner (slot: number): string | undefined {
    return this.#owners[slot]
  }

  expires (slot: number): number {
    return this.#expires[slot]!
  }

  set (slot: number, owner: string | undefined, expires: number): void {
    this.#owners[slot] = owner
    this.#expires[slot] = expires
  }

  remove (slot: number): void {
    this.#keys[slot] = undefined
    this.#owners[slot] = undefined
    this.size--
  }

  /** Every key with its hash, owner and expiry. */
  * entries (): Generator<[key: string, hash: number, owner: string | undefined, expires: number]> {
    for (let slot = 0; slot <= this.#mask; slot++) {
      const key = this.#keys[slot]
      if (key !== undefined) yield [key, this.#hashes[slot]!, this.#owners[slot], this.#expires[slot]!]
    }
  }

  // Twice the slots, the keys placed again from their stored hashes (no key is read), tombstones left out.
  #grow (): void {
    const hashes = this.#hashes
    const keys = this.#keys
    const owners = this.#owners
    const expires = this.#expires
    const grown = new KeyTable((this.#mask + 1) * 2)
    for (let slot = 0; slot < hashes.length; slot++) {
      const key = keys[slot]
      if (key !== undefined) grown.add(key, hashes[slot]!, owners[slot], expires[slot]!)
    }
    this.#hashes = grown.#hashes
    this.#keys = grown.#keys
    this.#owners = grown.#owners
    this.#expires = grown.#expires
    this.#mask = grown.#mask
    this.#used = grown.#used
  }
}

/**
 * The key's hash for a KeyTable: 32-bit FNV-1a of its UTF-16 units, then murmur3's finaliser, since
 * the table takes the low bits and FNV's low bits depend on the low bits alone (keys that differ in
 * a last digit, as event ids do, would crowd into neighbouring slots). The top bit is set, so that
 * no hash is 0 (an empty slot); no slot index reaches it.
 */
export function hashOf (key: string): number {
  let hash = 0x811c9dc5
  for (let i = 0; i < key.length; i++) hash = Math.imul(hash ^ key.charCodeAt(i), 0x01000193)
  hash = Math.imul(hash ^ (hash >>> 16), 0x85ebca6b)
  hash = Math.imul(hash ^ (hash >>> 13), 0xc2b2ae35)
  return (hash ^ (hash >>> 16)) | 0x80000000
}
