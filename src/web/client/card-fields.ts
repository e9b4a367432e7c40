/**
 * The hosted card fields, running inside the iframe on the vault's origin. The card number, expiry,
 * CVC and name stay in this document: they leave it only in the tokenization request to this origin's
 * POST /v1/tokens, and the merchant page gets back the token's masked view and the CVV slot id. Messages
 * are accepted only from the parent window at the origin the vault checked against the key's allow-list.
 */
import {
  cardBrandOf,
  checkCardNumber,
  checkCvc,
  checkExpiry,
  checkHolderName,
  cvcMaxLength,
  digitsOf,
  type FieldError,
  fieldMessages,
  formatCardNumber,
  formatExpiry,
} from '../card-input.ts';
import {
  type FieldName,
  type FieldsState,
  type FrameMessage,
  isParentMessage,
  PROTOCOL,
  type TokenizedCard,
} from '../hosted-messages.ts';
import { styleProperties } from '../merchant-style.ts';

const brandNames: Record<string, string> = {
  visa: 'Visa',
  mastercard: 'Mastercard',
  amex: 'American Express',
  discover: 'Discover',
  diners: 'Diners Club',
  jcb: 'JCB',
  unionpay: 'UnionPay',
  maestro: 'Maestro',
};

const params = new URLSearchParams(location.search);
const parentOrigin = params.get('origin') ?? '';
const publishableKey = params.get('key') ?? '';

const input = (id: FieldName) => document.getElementById(id) as HTMLInputElement;
const fields: FieldName[] = ['number', 'expiry', 'cvc', 'name'];
const touched = new Set<FieldName>();
const status = document.getElementById('form-status') as HTMLElement;
let submitting = false;

function errorOf(field: FieldName): FieldError | null {
  const number = input('number').value;
  switch (field) {
    case 'number':
      return checkCardNumber(number).error;
    case 'expiry':
      return checkExpiry(input('expiry').value).error;
    case 'cvc':
      return checkCvc(input('cvc').value, number).error;
    case 'name':
      return checkHolderName(input('name').value).error;
  }
}

/** While the user types, only errors that more typing cannot fix are shown; the rest wait for blur. */
function visibleError(field: FieldName): FieldError | null {
  const error = errorOf(field);
  if (touched.has(field)) return error;
  if (field === 'number' && error === 'number_invalid') return error;
  if (field === 'expiry' && digitsOf(input('expiry').value).length === 4) return error;
  return null;
}

function render(): FieldsState {
  const errors = {} as Record<FieldName, FieldError | null>;
  for (const field of fields) {
    const error = visibleError(field);
    errors[field] = error;
    const element = input(field);
    const message = document.getElementById(`${field}-error`) as HTMLElement;
    element.setAttribute('aria-invalid', error ? 'true' : 'false');
    const text = error ? fieldMessages[error] : '';
    if (message.textContent !== text) message.textContent = text;
  }
  const brand = cardBrandOf(input('number').value);
  const brandLabel = document.getElementById('brand') as HTMLElement;
  const name = brandNames[brand] ?? '';
  if (brandLabel.textContent !== name) brandLabel.textContent = name;
  brandLabel.dataset['brand'] = brand;
  input('cvc').maxLength = cvcMaxLength(input('number').value);
  return { brand, complete: fields.every((f) => errorOf(f) === null), errors };
}

function post(message: FrameMessage): void {
  window.parent.postMessage(message, parentOrigin);
}

let lastState = '';
function update(): void {
  const state = render();
  const serialized = JSON.stringify(state);
  if (serialized !== lastState) {
    lastState = serialized;
    post({ protocol: PROTOCOL, type: 'change', state });
  }
}

/** Reformats a field and keeps the caret after the same number of digits it was after. */
function reformat(element: HTMLInputElement, format: (value: string) => string): void {
  const caret = element.selectionStart ?? element.value.length;
  const digitsBefore = digitsOf(element.value.slice(0, caret)).length;
  const formatted = format(element.value);
  if (formatted === element.value) return;
  element.value = formatted;
  let position = 0;
  for (let seen = 0; position < formatted.length && seen < digitsBefore; position++) {
    if (/\d/.test(formatted.charAt(position))) seen++;
  }
  if (caret >= element.value.length || digitsBefore >= digitsOf(formatted).length)
    position = formatted.length;
  element.setSelectionRange(position, position);
}

function setUp(): void {
  input('number').addEventListener('input', () => {
    reformat(input('number'), formatCardNumber);
    update();
  });
  input('expiry').addEventListener('input', (event) => {
    // Deleting through the " / " separator must not put it straight back.
    if ((event as InputEvent).inputType?.startsWith('delete')) {
      input('expiry').value = input('expiry').value.replace(/\s*\/\s*$/, '');
    } else reformat(input('expiry'), formatExpiry);
    update();
  });
  input('cvc').addEventListener('input', () => {
    const cvc = input('cvc');
    const digits = digitsOf(cvc.value).slice(0, cvcMaxLength(input('number').value));
    if (digits !== cvc.value) cvc.value = digits;
    update();
  });
  input('name').addEventListener('input', update);
  for (const field of fields) {
    input(field).addEventListener('blur', () => {
      if (input(field).value !== '') touched.add(field);
      update();
    });
  }
  // Enter in a field does nothing here: the merchant's page owns the pay button.
  (document.getElementById('card-form') as HTMLFormElement).addEventListener('submit', (event) =>
    event.preventDefault(),
  );
  window.addEventListener('message', onMessage);
  update();
  post({ protocol: PROTOCOL, type: 'ready' });
}

function onMessage(event: MessageEvent): void {
  // Only the window that framed us, at the origin the vault checked against the key's allow-list.
  if (event.origin !== parentOrigin || event.source !== window.parent) {
    console.warn(`cardhold: ignored a message from ${event.origin}`);
    return;
  }
  const message = event.data;
  if (!isParentMessage(message)) return;
  if (message.type === 'configure') {
    for (const [property, value] of styleProperties(message.style))
      document.documentElement.style.setProperty(property, value);
    return;
  }
  void submit(message.requestId);
}

async function submit(requestId: string): Promise<void> {
  const fail = (code: string, message: string) => {
    // Field errors are already announced beside each field; the status line is for the rest.
    if (code !== 'validation_failed') status.textContent = message;
    post({ protocol: PROTOCOL, type: 'result', requestId, ok: false, error: { code, message } });
  };
  if (submitting) return fail('busy', 'The card is already being submitted.');
  for (const field of fields) touched.add(field);
  update();
  const invalid = fields.find((field) => errorOf(field) !== null);
  if (invalid) {
    input(invalid).focus();
    return fail('validation_failed', 'Check the highlighted card details.');
  }
  submitting = true;
  status.textContent = 'Securing your card…';
  try {
    const expiry = checkExpiry(input('expiry').value);
    const response = await fetch('/v1/tokens', {
      method: 'POST',
      headers: {
        authorization: `Bearer ${publishableKey}`,
        'content-type': 'application/json',
        'cardhold-embedding-origin': parentOrigin,
      },
      body: JSON.stringify({
        pan: digitsOf(input('number').value),
        exp_month: expiry.month,
        exp_year: expiry.year,
        cvv: digitsOf(input('cvc').value),
        holder_name: input('name').value.trim(),
      }),
      credentials: 'omit',
      cache: 'no-store',
    });
    const body = (await response.json().catch(() => ({}))) as Record<string, unknown>;
    if (!response.ok) {
      const code = typeof body['code'] === 'string' ? body['code'] : 'tokenization_failed';
      return fail(code, 'Your card could not be saved. Check the details and try again.');
    }
    const token = body['token'] as TokenizedCard['token'];
    const slot = body['cvv_slot'] as TokenizedCard['cvv_slot'];
    const card: TokenizedCard = {
      token: {
        id: token.id,
        brand: token.brand,
        last4: token.last4,
        exp_month: token.exp_month,
        exp_year: token.exp_year,
      },
      cvv_slot: slot ? { id: slot.id, expires_at: slot.expires_at } : null,
    };
    // The CVC is now in a single-use slot; a second payment asks for it again.
    input('cvc').value = '';
    touched.delete('cvc');
    update();
    status.textContent = '';
    post({ protocol: PROTOCOL, type: 'result', requestId, ok: true, card });
  } catch {
    fail('network_error', 'Your card could not be sent. Check your connection and try again.');
  } finally {
    submitting = false;
  }
}

if (window.parent === window || !parentOrigin || !publishableKey) {
  // Opened on its own, not framed by a merchant page: nothing to talk to, so nothing to collect.
  document.body.textContent = 'These card fields work only inside a merchant’s checkout page.';
} else {
  setUp();
}
