// Request bodies, built with the test kit, every one with fresh ids so that no server's idempotency
// ever dedupes a delivery. A body is assembled per request from a template the kit made (checked
// byte for byte against the kit's own), with the next id and its hash put in.
//
// Voximplant ids: one sequence, from the clock as the kit's, that every server process starts from
// the beginning of (`restart`): ids are unique within each process, which is what a process's
// idempotency store sees (the Redis one gets a key prefix per process). The costly part, each id's
// md5, is so computed once for the whole run, ahead of the measured windows (`prefill`), and kept
// as raw digests in off-heap buffers; one computed during a window (the pool was short) is counted.
import { edisTrafficBody, voximplantBatch, voximplantCallback, voximplantHash } from '../lib/testing.js'
import { EDIS_PATH, SECRET, VOXIMPLANT_PATH } from './protocol.js'

export interface Scenario {
  name: string
  /** Callbacks per request. */
  batch: number
  path: string
  contentType: string
}

const EDIS_TYPE = 'application/x-www-form-urlencoded'
const JSON_TYPE = 'application/json'

export const SCENARIOS: Scenario[] = [
  { name: 'edis', batch: 1, path: EDIS_PATH, contentType: EDIS_TYPE },
  { name: 'vox-1', batch: 1, path: VOXIMPLANT_PATH, contentType: JSON_TYPE },
  { name: 'vox-10', batch: 10, path: VOXIMPLANT_PATH, contentType: JSON_TYPE },
  { name: 'vox-100', batch: 100, path: VOXIMPLANT_PATH, contentType: JSON_TYPE }
]
/** Only for the extras: the plugin's CPU per item at the largest batch it takes by default. */
export const VOX_1000: Scenario = { name: 'vox-1000', batch: 1000, path: VOXIMPLANT_PATH, contentType: JSON_TYPE }

const ACCOUNT_ID = 1234567
// Stand-ins the kit's JSON is cut at: no real id or hash looks like them.
const ID_MARK = 987654321987654
const HASH_MARK = 'HASH-MARK'

function cut (text: string, mark: string): [string, string] {
  const parts = text.split(mark)
  if (parts.length !== 2) throw new Error(`bench: the kit's body has ${parts.length - 1} "${mark}" in it, expected one: ${text}`)
  return parts as [string, string]
}

const hashOf = (callbackId: number): string => voximplantHash({ ...SECRET, accountId: ACCOUNT_ID, callbackId })

const DIGEST = 16
const CHUNK = 1 << 20

/** Signed Voximplant callbacks: a kit item's JSON with an id of the sequence and its hash put in. */
export class VoximplantItems {
  /** Hashes computed during the load (the pool was short of them): 0 when prefill guessed right. */
  onTheSpot = 0
  private readonly firstId: number
  // The digest of id firstId + i is at chunks[i / CHUNK], (i % CHUNK) * 16.
  private readonly chunks: Buffer[] = []
  private hashed = 0
  private next = 0
  private readonly before: string
  private readonly between: string
  private readonly after: string

  constructor () {
    const template = JSON.stringify(voximplantCallback('min_balance', { account_id: ACCOUNT_ID, callback_id: ID_MARK, hash: HASH_MARK }, SECRET))
    const [before, rest] = cut(template, String(ID_MARK))
    ;[this.between, this.after] = cut(rest, HASH_MARK)
    this.before = before
    // The kit's ids start from the clock; go on from its last.
    const sample = voximplantCallback('min_balance', { account_id: ACCOUNT_ID }, SECRET)
    this.firstId = sample.callback_id + 1
    // An item built here must be the kit's JSON byte for byte.
    const expected = JSON.stringify(voximplantBatch([sample]))
    const built = `{"callbacks":[${this.item(sample.callback_id, hashOf(sample.callback_id))}]}`
    if (built !== expected) throw new Error(`bench: a templated body differs from the kit's:\n${built}\n${expected}`)
  }

  private item (id: number, hash: string): string {
    return this.before + id + this.between + hash + this.after
  }

  private hashUpTo (count: number): void {
    for (; this.hashed < count; this.hashed++) {
      const chunk = Math.floor(this.hashed / CHUNK)
      this.chunks[chunk] ??= Buffer.allocUnsafe(CHUNK * DIGEST)
      this.chunks[chunk].write(hashOf(this.firstId + this.hashed), (this.hashed % CHUNK) * DIGEST, 'hex')
    }
  }

  /** A new server process: start the sequence over. */
  restart (): void {
    this.next = 0
  }

  /** Hashes ready for the next `count` items. */
  prefill (count: number): void {
    this.hashUpTo(this.next + count)
  }

  /** A `{ callbacks: [...] }` body of `size` items, fresh in this server process. */
  batch (size: number): string {
    if (this.next + size > this.hashed) {
      this.onTheSpot += this.next + size - this.hashed
      this.hashUpTo(this.next + size)
    }
    let body = '{"callbacks":['
    for (let i = 0; i < size; i++) {
      const n = this.next++
      const offset = (n % CHUNK) * DIGEST
      body += (i === 0 ? '' : ',') + this.item(this.firstId + n, this.chunks[Math.floor(n / CHUNK)]!.toString('hex', offset, offset + DIGEST))
    }
    return body + ']}'
  }
}

/** EDIS traffic-threshold forms, each of a VPS never seen before: `kvm=kvm_<n>_1&...`. */
export class EdisForms {
  private next = 100_000
  private readonly before: string
  private readonly after: string

  constructor () {
    ;[this.before, this.after] = cut(edisTrafficBody({ kvm: `kvm_${ID_MARK}_1` }), String(ID_MARK))
  }

  form (): string {
    return this.before + this.next++ + this.after
  }
}
