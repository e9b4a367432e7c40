/**
 * One processor behind one interface (Hyperswitch's connector model): authorize, capture, void, refund
 * and sync, with what the processor supports declared up front. Connectors never hold card data: the
 * authorize request is a template the vault's forward proxy fills in.
 */
export interface ConnectorCapabilities {
  /** Several captures against one authorization. */
  multipleCaptures: boolean;
  partialCapture: boolean;
  partialRefund: boolean;
  void: boolean;
  /** Status queries by our reference, which is what settles an unknown outcome. */
  sync: boolean;
  /** ISO 4217 codes, or every currency. */
  currencies: readonly string[] | 'any';
}

/**
 * What a processor call came to. `failed` is unambiguous (the processor did not act: it was never
 * reached, or said so), so the next connector may be tried; `refused` marks a processor that answered and
 * turned the request down (a 400 or 422, say), which sending it again will not change. `unknown` may
 * have been acted on, so only `sync` can settle it and nothing else is tried.
 */
export type ConnectorResult<T> =
  | { kind: 'succeeded'; value: T }
  | { kind: 'declined'; code: string; message: string; card?: CardSummary | undefined }
  | { kind: 'failed'; code: string; refused?: boolean | undefined }
  | { kind: 'unknown'; code: string };

export interface AuthorizeInput {
  /** Our attempt id: the processor's idempotency and status-query key. */
  reference: string;
  merchantId: string;
  amount: number;
  currency: string;
  capture: boolean;
  token: string;
  cvvSlot: string | null;
}

/** What a processor says of the card it charged: enough to show the payment, never the number. */
export interface CardSummary {
  brand: string;
  last4: string;
}

export interface Authorized {
  processorId: string;
  capturedAmount: number;
  card?: CardSummary | undefined;
}

export interface OperationInput {
  reference: string;
  merchantId: string;
  processorId: string;
  amount: number;
}

export interface CaptureInput extends OperationInput {
  /** The last capture: the processor releases what is left of the authorization to the cardholder. */
  final: boolean;
}

/** The processor's view of one authorization, by our reference. */
export interface SyncedAuthorization {
  processorId: string;
  status: 'approved' | 'declined';
  declineCode: string | null;
  capturedAmount: number;
  voided: boolean;
  captures: readonly { reference: string; amount: number }[];
  refunds: readonly { reference: string; amount: number }[];
}

export interface Connector {
  readonly name: string;
  readonly capabilities: ConnectorCapabilities;
  authorize(input: AuthorizeInput): Promise<ConnectorResult<Authorized>>;
  capture(input: CaptureInput): Promise<ConnectorResult<void>>;
  void(input: Omit<OperationInput, 'amount'>): Promise<ConnectorResult<void>>;
  refund(input: OperationInput): Promise<ConnectorResult<void>>;
  /** `undefined`: the processor has no authorization with this reference. */
  sync(reference: string, merchantId: string): Promise<ConnectorResult<SyncedAuthorization | undefined>>;
}
