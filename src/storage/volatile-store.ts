/**
 * Short-lived, never-persisted slots with a bounded number of uses: the CVV's only home. Redis in
 * production (with persistence off), process memory in development. Expired or used-up slots are
 * deleted, not hidden.
 */
export interface SlotContent {
  value: Buffer;
  /** Reference the slot belongs to (e.g. a token id), checked by the caller. */
  ref: string;
}

export interface SlotTake extends SlotContent {
  /** Uses left after this one; 0 means the slot was deleted by this take. */
  usesLeft: number;
}

export interface SlotInfo {
  ref: string;
  usesLeft: number;
  expiresAt: Date;
}

export interface VolatileStore {
  readonly kind: 'memory' | 'redis';
  /** Creates the slot; false if the key already exists. */
  create(key: string, content: SlotContent, uses: number, ttlMs: number): Promise<boolean>;
  /** Atomically consumes one use and returns the value; deletes the slot on its last use. */
  take(key: string): Promise<SlotTake | null>;
  /** Metadata only; never the value. */
  info(key: string): Promise<SlotInfo | null>;
  delete(key: string): Promise<boolean>;
  /** Number of live slots under a prefix, for metrics and tests. */
  count(prefix: string): Promise<number>;
  check(): Promise<void>;
  close(): Promise<void>;
}
