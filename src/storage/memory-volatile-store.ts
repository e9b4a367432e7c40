import type { SlotContent, SlotInfo, SlotTake, VolatileStore } from './volatile-store.ts';

interface Entry {
  value: Buffer;
  ref: string;
  usesLeft: number;
  expiresAt: number;
}

/**
 * In-process store for development and the all-in-one mode. A sweeper deletes and zeroes expired
 * entries; every access also checks expiry, so an expired slot is never served between sweeps.
 */
export class MemoryVolatileStore implements VolatileStore {
  readonly kind = 'memory' as const;
  readonly #entries = new Map<string, Entry>();
  readonly #now: () => number;
  readonly #sweeper: NodeJS.Timeout;

  constructor(options: { now?: () => number; sweepIntervalMs?: number } = {}) {
    this.#now = options.now ?? Date.now;
    this.#sweeper = setInterval(() => this.sweep(), options.sweepIntervalMs ?? 1000);
    this.#sweeper.unref();
  }

  /** Deletes every expired entry now; returns how many. */
  sweep(): number {
    let removed = 0;
    const now = this.#now();
    for (const [key, entry] of this.#entries) {
      if (entry.expiresAt <= now) {
        this.#remove(key, entry);
        removed++;
      }
    }
    return removed;
  }

  /** Raw presence check for tests: true while an entry (even an expired, unswept one) is held. */
  holds(key: string): boolean {
    return this.#entries.has(key);
  }

  #live(key: string): Entry | undefined {
    const entry = this.#entries.get(key);
    if (!entry) return undefined;
    if (entry.expiresAt <= this.#now()) {
      this.#remove(key, entry);
      return undefined;
    }
    return entry;
  }

  #remove(key: string, entry: Entry): void {
    entry.value.fill(0);
    this.#entries.delete(key);
  }

  async create(key: string, content: SlotContent, uses: number, ttlMs: number): Promise<boolean> {
    if (this.#live(key)) return false;
    this.#entries.set(key, {
      value: Buffer.from(content.value),
      ref: content.ref,
      usesLeft: uses,
      expiresAt: this.#now() + ttlMs,
    });
    return true;
  }

  async take(key: string): Promise<SlotTake | null> {
    const entry = this.#live(key);
    if (!entry) return null;
    entry.usesLeft -= 1;
    const taken: SlotTake = { value: Buffer.from(entry.value), ref: entry.ref, usesLeft: entry.usesLeft };
    if (entry.usesLeft <= 0) this.#remove(key, entry);
    return taken;
  }

  async info(key: string): Promise<SlotInfo | null> {
    const entry = this.#live(key);
    return entry ? { ref: entry.ref, usesLeft: entry.usesLeft, expiresAt: new Date(entry.expiresAt) } : null;
  }

  async delete(key: string): Promise<boolean> {
    const entry = this.#entries.get(key);
    if (!entry) return false;
    this.#remove(key, entry);
    return true;
  }

  async count(prefix: string): Promise<number> {
    this.sweep();
    let n = 0;
    for (const key of this.#entries.keys()) if (key.startsWith(prefix)) n++;
    return n;
  }

  async check(): Promise<void> {}

  async close(): Promise<void> {
    clearInterval(this.#sweeper);
    for (const [key, entry] of this.#entries) this.#remove(key, entry);
  }
}
