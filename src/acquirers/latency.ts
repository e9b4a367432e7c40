import { setTimeout as sleep } from 'node:timers/promises';

/**
 * mulberry32: a tiny seeded pseudo-random generator returning numbers in [0, 1). It is NOT
 * cryptographic and must never be used for anything secret; it only makes the test acquirer's latency
 * reproducible, which node:crypto cannot do.
 */
function mulberry32(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The first `count` delays, in milliseconds, that a latency with this seed and maximum produces. */
export function latencySchedule(seed: number, maxMs: number, count: number): number[] {
  const latency = new SeededLatency(seed, maxMs);
  return Array.from({ length: count }, () => latency.next());
}

/**
 * The acquirer's added latency: request n (counted from start-up) waits the n-th value of the seeded
 * sequence, 0 to `maxMs` inclusive. With `maxMs` 0 nothing waits.
 */
export class SeededLatency {
  readonly #random: () => number;
  readonly #maxMs: number;

  constructor(seed: number, maxMs: number) {
    this.#random = mulberry32(seed);
    this.#maxMs = maxMs;
  }

  next(): number {
    return this.#maxMs === 0 ? 0 : Math.floor(this.#random() * (this.#maxMs + 1));
  }

  async wait(): Promise<void> {
    const ms = this.next();
    if (ms > 0) await sleep(ms);
  }
}
