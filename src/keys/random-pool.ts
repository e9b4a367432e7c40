import { randomFillSync } from 'node:crypto';

const POOL_BYTES = 4096;
const pool = Buffer.alloc(POOL_BYTES);
let offset = POOL_BYTES;

/**
 * Bytes from the operating system's CSPRNG, fetched 4 KiB at a time: under load each `randomBytes`
 * call is a system call, and a tokenize needs four small draws. Node's own `randomUUID` buffers the
 * same way. Served bytes are copied out and zeroed in the pool, so a data key drawn from here is not
 * left behind in it.
 */
export function randomPooled(size: number): Buffer {
  if (size > POOL_BYTES / 4) return randomFillSync(Buffer.alloc(size));
  if (offset + size > POOL_BYTES) {
    randomFillSync(pool);
    offset = 0;
  }
  const out = Buffer.from(pool.subarray(offset, offset + size));
  pool.fill(0, offset, offset + size);
  offset += size;
  return out;
}
