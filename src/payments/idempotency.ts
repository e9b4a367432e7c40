import { createHash } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Sql } from 'postgres';
import { logProblem, toProblem } from '../http/problem.ts';
import { CardholdError } from '../shared/errors.ts';

export const IDEMPOTENCY_HEADER = 'idempotency-key';
const KEY = /^[\x21-\x7e]{1,255}$/;
const LIFETIME_HOURS = 24;

interface StoredResponse {
  status: number;
  type: string;
  body: string;
}

/**
 * Server errors after which nothing was charged, captured or refunded: every processor attempt was
 * recorded as not processed, or the vault refused before sending anything. Only these free a key.
 */
const NOTHING_DONE = new Set(['processor_unavailable', 'vault_unavailable', 'not_ready']);

/**
 * Stripe's idempotency semantics, kept in PostgreSQL so that every api replica sees them: the first
 * request with a key runs; later ones with the same key and the same method, path and body get its
 * response replayed for 24 hours; different parameters are refused (422); a duplicate arriving while
 * the first still runs gets 409. A first request that fails with a server error that proves nothing was
 * done (NOTHING_DONE, and no payment written: a create-and-confirm names the payment it created) frees
 * the key, so the client's retry runs again; any other server error may have
 * come after a processor acted, so it is stored and replayed like any answer, as Stripe does with its
 * 500s, and a retry cannot charge twice.
 */
export class Idempotency {
  readonly #sql: Sql;

  constructor(sql: Sql) {
    this.#sql = sql;
  }

  /** Runs `work` under the request's idempotency key (if it has one) and sends its result. */
  async handle(
    request: FastifyRequest,
    reply: FastifyReply,
    merchantId: string,
    work: () => Promise<{ status: number; body: unknown }>,
    /** The route creates a payment before it may fail (create and confirm in one). */
    options: { createsPayment?: boolean } = {},
  ): Promise<FastifyReply> {
    const header = request.headers[IDEMPOTENCY_HEADER];
    if (header === undefined) {
      const { status, body } = await work();
      return reply.code(status).send(body);
    }
    if (typeof header !== 'string' || !KEY.test(header)) {
      throw new CardholdError('request_invalid', {
        field: IDEMPOTENCY_HEADER,
        detail: 'An idempotency key is 1 to 255 printable ASCII characters',
      });
    }
    const hash = createHash('sha256')
      .update(`${request.method} ${canonicalPath(request.url)}\n`)
      .update(canonical(request.body))
      .digest();

    const claimed = await this.#claim(merchantId, header, hash);
    if (claimed !== true) {
      return reply
        .code(claimed.status)
        .header('idempotent-replayed', 'true')
        .type(claimed.type)
        .send(claimed.body);
    }
    let stored: StoredResponse;
    try {
      const { status, body } = await work();
      stored = { status, type: 'application/json; charset=utf-8', body: JSON.stringify(body) };
    } catch (error) {
      const plain = toProblem(error, String(request.id));
      // A conflict with a concurrent operation on the same payment did nothing either (Stripe does not
      // save those): the client's retry runs.
      // A payment created by this request (create and confirm in one) is something done: the answer
      // naming it is stored, so a retry replays it rather than creating another payment.
      const created = options.createsPayment === true && plain['payment_intent'] !== undefined;
      const nothingDone = NOTHING_DONE.has(plain.code) && !created;
      if ((plain.status >= 500 && nothingDone) || plain.code === 'payment_in_progress') {
        await this.#release(merchantId, header);
        throw error;
      }
      // As the error handler would send it, route extensions (Stripe's status and error object) included.
      const extend = request.routeOptions.config?.problemExtension;
      const problem = extend ? { ...plain, ...extend(plain) } : plain;
      // Answered here rather than by the error handler, so logged here.
      logProblem(request, problem, error);
      stored = { status: problem.status, type: 'application/problem+json', body: JSON.stringify(problem) };
    }
    await this.#sql`
      update payments.idempotency_keys set state = 'done', response_status = ${stored.status},
        response_type = ${stored.type}, response_body = ${stored.body}
      where merchant_id = ${merchantId} and key = ${header}`;
    return reply.code(stored.status).type(stored.type).send(stored.body);
  }

  /** Deletes keys past their lifetime; returns how many. */
  async purge(): Promise<number> {
    const rows = await this.#sql`
      delete from payments.idempotency_keys
      where created_at < now() - ${`${LIFETIME_HOURS} hours`}::interval returning key`;
    return rows.length;
  }

  async #claim(merchantId: string, key: string, hash: Buffer): Promise<true | StoredResponse> {
    for (let round = 0; round < 2; round++) {
      const inserted = await this.#sql`
        insert into payments.idempotency_keys (merchant_id, key, request_hash, state)
        values (${merchantId}, ${key}, ${hash}, 'in_progress')
        on conflict do nothing returning key`;
      if (inserted.length > 0) return true;
      const rows = await this.#sql<
        {
          request_hash: Buffer;
          state: string;
          response_status: number | null;
          response_type: string | null;
          response_body: string | null;
          expired: boolean;
        }[]
      >`
        select request_hash, state, response_status, response_type, response_body,
          created_at < now() - ${`${LIFETIME_HOURS} hours`}::interval as expired
        from payments.idempotency_keys where merchant_id = ${merchantId} and key = ${key}`;
      const row = rows[0];
      if (!row) continue; // released between our insert and select: try to claim it again
      if (row.expired) {
        await this.#sql`
          delete from payments.idempotency_keys where merchant_id = ${merchantId} and key = ${key}
            and created_at < now() - ${`${LIFETIME_HOURS} hours`}::interval`;
        continue;
      }
      if (!row.request_hash.equals(hash)) {
        throw new CardholdError('idempotency_key_reused', { field: IDEMPOTENCY_HEADER });
      }
      if (row.state !== 'done')
        throw new CardholdError('idempotency_key_in_use', { field: IDEMPOTENCY_HEADER });
      return {
        status: row.response_status as number,
        type: row.response_type as string,
        body: row.response_body as string,
      };
    }
    throw new CardholdError('idempotency_key_in_use', { field: IDEMPOTENCY_HEADER });
  }

  async #release(merchantId: string, key: string): Promise<void> {
    await this.#sql`delete from payments.idempotency_keys where merchant_id = ${merchantId} and key = ${key}`;
  }
}

/**
 * The path as it names its resource: each segment decoded and encoded again in one way, the query left
 * out. `pi_1` and `pi%5F1` name one payment, so a retry that encodes the path differently replays instead
 * of being refused as another request; a path written plainly is unchanged, so keys stored before this
 * normalisation still match their retries.
 */
function canonicalPath(url: string): string {
  const path = url.split('?')[0] ?? '';
  return path
    .split('/')
    .map((segment) => {
      try {
        return encodeURIComponent(decodeURIComponent(segment));
      } catch {
        return segment;
      }
    })
    .join('/');
}

/** The body with object keys sorted, so that the same parameters in another order are the same request. */
function canonical(value: unknown): string {
  return JSON.stringify(value ?? null, (_key, v: unknown) =>
    v && typeof v === 'object' && !Array.isArray(v)
      ? Object.fromEntries(Object.entries(v as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : 1)))
      : v,
  );
}
