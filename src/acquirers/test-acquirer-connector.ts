import type { ForwardAnswer, VaultClient } from '../payments/vault-client.ts';
import type {
  Authorized,
  AuthorizeInput,
  CaptureInput,
  Connector,
  ConnectorCapabilities,
  ConnectorResult,
  OperationInput,
  SyncedAuthorization,
} from './connector.ts';
import type { CapabilityRestrictions } from './routing.ts';

/** The test acquirer's authorization object (docs/test-acquirer.md), as far as the connector reads it. */
interface AcquirerAuthorization {
  id: string;
  status: 'approved' | 'declined';
  decline_code: string | null;
  captured_amount: number;
  state: string;
  card?: { brand: string; last4: string };
  captures?: { reference: string; amount: number }[];
  refunds?: { reference: string; amount: number }[];
}

/**
 * The connector for cardhold's test acquirer (and the model for real ones). Every call goes through the
 * vault's forward proxy, so the vault is the only component that talks to processors: one egress, one
 * allow-list, one client certificate, and the card number filled in only there.
 */
export class TestAcquirerConnector implements Connector {
  readonly name: string;
  /** Everything the test acquirer supports, less what the operator turned off (`restrict`). */
  readonly capabilities: ConnectorCapabilities;
  readonly #url: () => string;
  readonly #vault: VaultClient;

  /** `url` may be a function: the test acquirer in the same process has its port only once it listens. */
  constructor(options: {
    name: string;
    url: string | (() => string);
    vault: VaultClient;
    restrict?: CapabilityRestrictions | undefined;
  }) {
    this.name = options.name;
    const off = options.restrict ?? {};
    this.capabilities = {
      multipleCaptures: off.multipleCaptures !== false,
      partialCapture: off.partialCapture !== false,
      partialRefund: off.partialRefund !== false,
      void: off.void !== false,
      sync: true,
      currencies: off.currencies ?? 'any',
    };
    const url = options.url;
    this.#url = typeof url === 'string' ? () => url : url;
    this.#vault = options.vault;
  }

  get #base(): string {
    return this.#url().replace(/\/$/, '');
  }

  async authorize(input: AuthorizeInput): Promise<ConnectorResult<Authorized>> {
    // The template is JSON with placeholders inside strings; the vault escapes what it fills in.
    const body = `{"reference":${JSON.stringify(input.reference)},"merchant":${JSON.stringify(input.merchantId)},"amount":${input.amount},"currency":${JSON.stringify(input.currency)},"capture":${input.capture},"card":{"number":"{{card.number}}","exp_month":{{card.exp_month}},"exp_year":{{card.exp_year}}${input.cvvSlot ? ',"cvc":"{{card.cvv}}"' : ''}}}`;
    const answer = await this.#vault.forward(input.merchantId, {
      token: input.token,
      ...(input.cvvSlot ? { cvv_slot: input.cvvSlot } : {}),
      request: {
        method: 'POST',
        url: `${this.#base}/v1/authorizations`,
        headers: { 'content-type': 'application/json' },
        body,
      },
    });
    // The acquirer answers approvals and declines alike with 200; a 4xx refuses the request itself.
    return interpret(answer, 'fails', (auth: AcquirerAuthorization) => {
      if (!readable(auth)) return { kind: 'unknown', code: 'processor_answer_unreadable' };
      const card = auth.card ? { brand: auth.card.brand, last4: auth.card.last4 } : undefined;
      return auth.status === 'approved'
        ? { kind: 'succeeded', value: { processorId: auth.id, capturedAmount: auth.captured_amount, card } }
        : { kind: 'declined', code: auth.decline_code ?? 'generic_decline', message: 'declined', card };
    });
  }

  capture(input: CaptureInput): Promise<ConnectorResult<void>> {
    return this.#operation(input.merchantId, `/v1/authorizations/${input.processorId}/captures`, {
      amount: input.amount,
      reference: input.reference,
      final: input.final,
    });
  }

  void(input: Omit<OperationInput, 'amount'>): Promise<ConnectorResult<void>> {
    return this.#operation(input.merchantId, `/v1/authorizations/${input.processorId}/void`, {
      reference: input.reference,
    });
  }

  refund(input: OperationInput): Promise<ConnectorResult<void>> {
    return this.#operation(input.merchantId, `/v1/authorizations/${input.processorId}/refunds`, {
      amount: input.amount,
      reference: input.reference,
    });
  }

  async sync(
    reference: string,
    merchantId: string,
  ): Promise<ConnectorResult<SyncedAuthorization | undefined>> {
    const answer = await this.#vault.forward(merchantId, {
      request: {
        method: 'GET',
        url: `${this.#base}/v1/authorizations?reference=${encodeURIComponent(reference)}`,
      },
    });
    if (answer.outcome === 'answered' && answer.response?.status === 404) {
      return { kind: 'succeeded', value: undefined };
    }
    return interpret(answer, 'fails', (auth: AcquirerAuthorization) =>
      readable(auth)
        ? {
            kind: 'succeeded',
            value: {
              processorId: auth.id,
              status: auth.status,
              declineCode: auth.decline_code,
              capturedAmount: auth.captured_amount,
              voided: auth.state === 'voided',
              captures: (auth.captures ?? []).map((c) => ({ reference: c.reference, amount: c.amount })),
              refunds: (auth.refunds ?? []).map((r) => ({ reference: r.reference, amount: r.amount })),
            },
          }
        : { kind: 'unknown', code: 'processor_answer_unreadable' },
    );
  }

  async #operation(merchantId: string, path: string, payload: object): Promise<ConnectorResult<void>> {
    const answer = await this.#vault.forward(merchantId, {
      request: {
        method: 'POST',
        url: `${this.#base}${path}`,
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(payload),
      },
    });
    return interpret(answer, 'refuses', () => ({ kind: 'succeeded', value: undefined }));
  }
}

/**
 * An authorization answer of the expected shape. Anything else is read as nothing, an `unknown` outcome
 * the reconciler settles by a status query: a processor's own mistake, or a field the vault's scrub
 * replaced because its value equalled the CVV it sent (an amount of 739), must never be recorded as an
 * amount or an id.
 */
function readable(auth: AcquirerAuthorization): boolean {
  const amount = (value: unknown) => Number.isSafeInteger(value) && (value as number) >= 0;
  const entries = (list: unknown) =>
    list === undefined ||
    (Array.isArray(list) && list.every((e) => typeof e?.reference === 'string' && amount(e?.amount)));
  return (
    typeof auth === 'object' &&
    auth !== null &&
    typeof auth.id === 'string' &&
    (auth.status === 'approved' || auth.status === 'declined') &&
    amount(auth.captured_amount) &&
    (auth.decline_code === null ||
      auth.decline_code === undefined ||
      typeof auth.decline_code === 'string') &&
    (auth.card === undefined ||
      (typeof auth.card?.brand === 'string' && typeof auth.card?.last4 === 'string')) &&
    entries(auth.captures) &&
    entries(auth.refunds)
  );
}

/** Statuses that refuse the caller rather than the operation: credentials, permission, rate, patience. */
const REQUEST_REFUSED = new Set([401, 403, 407, 408, 429]);

/**
 * The acquirer's documented semantics: 2xx is its answer; a 402 declines the card (as Stripe and others
 * answer a decline); any other 4xx refuses the request and does nothing;
 * 503 says it did not process the request (retry elsewhere is safe); any other 5xx, a timeout or a
 * dropped connection after sending may have been acted on. A 4xx is never a card decline (declines
 * come as 200): for an authorization it is a `failed` attempt (unambiguous, so the next connector may
 * be tried); for a capture, void or refund (`refuses`) it is the operation refused, unless the status
 * refuses the caller itself (401, 403, 407, 408, 429), which is a failure to reach the processor.
 */
function interpret<T, A>(
  answer: ForwardAnswer,
  on4xx: 'fails' | 'refuses',
  onOk: (body: A) => ConnectorResult<T>,
): ConnectorResult<T> {
  switch (answer.outcome) {
    case 'connection_failed':
      return { kind: 'failed', code: 'processor_unreachable' };
    case 'timeout':
      return { kind: 'unknown', code: 'processor_timeout' };
    case 'connection_lost':
      return { kind: 'unknown', code: 'processor_connection_lost' };
    case 'answered':
      break;
  }
  const response = answer.response;
  if (!response) return { kind: 'unknown', code: 'processor_no_response' };
  if (response.status === 503) return { kind: 'failed', code: 'processor_unavailable' };
  if (response.status >= 500) return { kind: 'unknown', code: `processor_http_${response.status}` };
  let body: { code?: string } & Record<string, unknown>;
  try {
    body = JSON.parse(response.body) as typeof body;
  } catch {
    if (response.status < 300) return { kind: 'unknown', code: 'processor_answer_unreadable' };
    body = {};
  }
  // 402 is how processors such as Stripe decline a card: a decline, whatever the operation.
  if (response.status === 402) {
    const code = typeof body['decline_code'] === 'string' ? body['decline_code'] : 'generic_decline';
    return { kind: 'declined', code, message: 'declined' };
  }
  if (response.status >= 400) {
    const code = typeof body.code === 'string' ? body.code : `processor_http_${response.status}`;
    if (REQUEST_REFUSED.has(response.status)) return { kind: 'failed', code };
    if (on4xx === 'fails') return { kind: 'failed', code, refused: true };
    return { kind: 'declined', code, message: 'refused' };
  }
  if (response.status >= 300) return { kind: 'failed', code: `processor_http_${response.status}` };
  return onOk(body as A);
}
