export type Settled<R> = { ok: true; value: R } | { ok: false; error: unknown };

interface Waiting<I, R> {
  item: I;
  resolve: (value: R) => void;
  reject: (error: unknown) => void;
}

/**
 * Natural batching: an item submitted while fewer than `concurrency` batches are running starts a batch
 * at once (so a quiet system adds no latency); items submitted while all are running wait and leave
 * together in the next batch. Under load each batch carries many items, so per-statement and per-commit
 * costs are shared, the way PostgreSQL's own group commit shares WAL flushes.
 *
 * `run` settles each item on its own; if it throws, every item of that batch gets the error.
 */
export class NaturalBatcher<I, R> {
  readonly #run: (items: I[]) => Promise<Settled<R>[]>;
  readonly #concurrency: number;
  readonly #maxBatch: number;
  readonly #queue: Waiting<I, R>[] = [];
  #running = 0;

  constructor(options: {
    run: (items: I[]) => Promise<Settled<R>[]>;
    concurrency: number;
    maxBatch: number;
  }) {
    this.#run = options.run;
    this.#concurrency = Math.max(1, options.concurrency);
    this.#maxBatch = Math.max(1, options.maxBatch);
  }

  submit(item: I): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      this.#queue.push({ item, resolve, reject });
      this.#pump();
    });
  }

  #pump(): void {
    while (this.#running < this.#concurrency && this.#queue.length > 0) {
      const batch = this.#queue.splice(0, this.#maxBatch);
      this.#running++;
      this.#run(batch.map((w) => w.item))
        .then(
          (results) => {
            for (const [i, waiting] of batch.entries()) {
              const result = results[i];
              if (result?.ok) waiting.resolve(result.value);
              else waiting.reject(result ? result.error : new Error('batch returned no result for an item'));
            }
          },
          (error: unknown) => {
            for (const waiting of batch) waiting.reject(error);
          },
        )
        .finally(() => {
          this.#running--;
          this.#pump();
        });
    }
  }
}
