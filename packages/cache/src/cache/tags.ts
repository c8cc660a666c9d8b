/** The version pair of one tag: `v` bumps on every invalidation, `d` records the last "delete". */
export interface TagState {
  v: number
  d: number
  /** Invalidated here while Redis was unreachable; real versions do not overwrite it until flushed. */
  pending: boolean
}

export const TAGS_FRESH = 0
export const TAGS_EXPIRED = 1
export const TAGS_DELETED = 2
export const TAGS_UNKNOWN = 3

/**
 * `d` of a tag whose record Redis has lost (a read found it missing, which reads as v = 0): every
 * entry carrying it counts as deleted, here as in Redis, until a real version replaces it.
 */
const LOST = Number.POSITIVE_INFINITY

/**
 * Tag versions held in memory so an L1 hit checks tags with no round trip. Bounded (oldest
 * inserted first out); a tag that is not here makes its entries "unknown", which sends them to
 * L2 (or, without L2, makes them a miss): forgetting is always safe.
 */
export class TagVersions {
  private readonly map = new Map<string, TagState>()
  constructor(private readonly max: number) {}

  get size(): number {
    return this.map.size
  }

  get(tag: string): TagState | undefined {
    return this.map.get(tag)
  }

  /** State of an entry written under `versions`; hot path of every tagged L1 hit. */
  check(tags: readonly string[], versions: readonly number[]): number {
    let result = TAGS_FRESH
    for (let i = 0; i < tags.length; i++) {
      const st = this.map.get(tags[i]!)
      if (st === undefined) return TAGS_UNKNOWN
      const stored = versions[i]!
      if (st.d > stored) return TAGS_DELETED
      // Below the stored version: this map is behind Redis (a message on its way; L2 reads then
      // ask Redis), or the record was recreated below it (a server clock behind): never fresh.
      if (st.v !== stored) result = TAGS_EXPIRED
    }
    return result
  }

  /**
   * Records versions read from Redis (authoritative unless a local invalidation is pending).
   * v = 0 is how a missing record reads (no record ever holds 0): the tag is marked lost.
   */
  set(tag: string, v: number, d: number): void {
    if (!(v > 0)) {
      v = 0
      d = LOST
    }
    const st = this.map.get(tag)
    if (st !== undefined) {
      if (st.pending) return
      st.v = v
      st.d = d
      return
    }
    this.insert(tag, { v, d, pending: false })
  }

  /**
   * Versions a bus message carries (from an invalidation: never 0). Messages may cross, so a
   * version never moves backwards, except out of the lost state: a record recreated after the
   * loss starts above every version handed out before it.
   */
  advance(tag: string, v: number, d: number): void {
    if (!(v > 0)) return
    const st = this.map.get(tag)
    if (st === undefined) return this.insert(tag, { v, d, pending: false })
    if (st.pending) return
    if (st.d === LOST) {
      st.v = v
      st.d = d
      return
    }
    st.v = Math.max(st.v, v)
    st.d = Math.max(st.d, d)
  }

  /** Current version of `tag`, registering it at 0 when unknown (L1-only and degraded writes). */
  ensure(tag: string): number {
    const st = this.map.get(tag)
    if (st !== undefined) return st.v
    this.insert(tag, { v: 0, d: 0, pending: false })
    return 0
  }

  /** Versions observed before a load, `-1` where unknown (or lost: the write creates the record). */
  observe(tags: readonly string[], register = false): string {
    let out = ''
    for (let i = 0; i < tags.length; i++) {
      if (register) this.ensure(tags[i]!)
      const st = this.map.get(tags[i]!)
      out += (i === 0 ? '' : ',') + (st === undefined || st.pending || st.d === LOST ? -1 : st.v)
    }
    return out
  }

  /** Local invalidation (no L2, or L2 unreachable: then `pending`). */
  bump(tag: string, mode: 'e' | 'd', pending: boolean): void {
    let st = this.map.get(tag)
    if (st === undefined) {
      st = { v: 0, d: 0, pending: false }
      this.insert(tag, st)
    }
    // A pending invalidation must beat any version Redis may hand out meanwhile.
    st.v = pending ? Number.MAX_SAFE_INTEGER : st.v + 1
    if (mode === 'd') st.d = st.v
    st.pending = pending || st.pending
  }

  /** Ends a pending invalidation with the versions Redis returned. */
  settle(tag: string, v: number, d: number): void {
    const st = this.map.get(tag)
    if (st === undefined) return this.insert(tag, { v, d, pending: false })
    st.v = v
    st.d = d
    st.pending = false
  }

  delete(tag: string): void {
    this.map.delete(tag)
  }

  clear(): void {
    // Pending local invalidations survive a distrust: they are not yet in Redis.
    for (const [tag, st] of this.map) if (!st.pending) this.map.delete(tag)
  }

  private insert(tag: string, st: TagState): void {
    if (this.map.size >= this.max) {
      for (const [oldest, s] of this.map) {
        if (!s.pending) {
          this.map.delete(oldest)
          break
        }
      }
    }
    this.map.set(tag, st)
  }
}
