import { ApiError, call, holds, vaultAvailable, viaIdentityProvider } from './api.ts';
import { facts, h, isoWhen, table } from './dom.ts';
import { beginOidcSignIn, oidcSettings } from './oidc.ts';
import { needsMerchant, notify, type View } from './view.ts';

interface Token {
  id: string;
  brand: string;
  bin: string;
  last4: string;
  exp_month: number;
  exp_year: number;
  fingerprint: string;
  created_at: string;
  expires_at: string | null;
}

const masked = (t: Token) => `${t.bin} •••• ${t.last4}`;
const expiry = (t: Token) => `${String(t.exp_month).padStart(2, '0')}/${t.exp_year}`;
/** How long a revealed number stays on screen before the dialog clears it by itself. */
const REVEAL_SHOWN_MS = 60_000;

function vaultMissing(v: View): boolean {
  if (vaultAvailable()) return false;
  v.loaded(h('p', {}, 'The vault’s address is not configured (CARDHOLD_DASHBOARD_VAULT_URL).'));
  return true;
}

export async function tokensList(v: View, last4: string): Promise<void> {
  if (needsMerchant(v) || vaultMissing(v)) return;
  const query = new URLSearchParams({ limit: '50', ...(last4 ? { last4 } : {}) });
  const page = await call<{ data: Token[] }>('vault', 'GET', `/v1/tokens?${query}`);
  const search = h('input', {
    id: 'token-last4',
    inputmode: 'numeric',
    maxlength: '4',
    pattern: '[0-9]{4}',
    value: last4,
    'aria-label': 'Last four digits',
  });
  v.loaded(
    h(
      'form',
      {
        class: 'inline',
        onsubmit: (event: Event) => {
          event.preventDefault();
          location.hash = /^[0-9]{4}$/.test(search.value) ? `#/tokens?last4=${search.value}` : '#/tokens';
        },
      },
      h('label', {}, 'Last four ', search),
      h('button', { type: 'submit' }, 'Search'),
    ),
    page.data.length === 0
      ? h('p', {}, 'No tokens.')
      : table(
          ['Token', 'Brand', 'Card (masked)', 'Expiry', 'Created'],
          page.data.map((t) => [
            h('a', { href: `#/tokens/${t.id}` }, t.id),
            t.brand,
            masked(t),
            expiry(t),
            isoWhen(t.created_at),
          ]),
          'Tokens',
        ),
  );
}

export async function tokenDetail(v: View, id: string): Promise<void> {
  if (needsMerchant(v) || vaultMissing(v)) return;
  const t = await call<Token>('vault', 'GET', `/v1/tokens/${encodeURIComponent(id)}`);
  v.loaded(
    facts([
      ['Token', t.id],
      ['Brand', t.brand],
      ['Card (masked)', masked(t)],
      ['Expiry', expiry(t)],
      ['Fingerprint', t.fingerprint],
      ['Created', isoWhen(t.created_at)],
      ['Expires', isoWhen(t.expires_at)],
    ]),
    // Offered only to holders of tokens:reveal; the vault refuses everyone else.
    holds('tokens:reveal')
      ? h('button', { type: 'button', id: 'reveal', onclick: () => openReveal(t.id) }, 'Reveal full number…')
      : null,
  );
}

/**
 * The reveal dialog: a reason (10 to 500 characters, recorded with the reveal), and a fresh TOTP code
 * when the last one is older than 15 minutes. The number comes straight from the vault to this dialog
 * and is shown for a minute at most; closing the dialog removes it from the page.
 */
function openReveal(tokenId: string): void {
  const reason = h('textarea', {
    id: 'reveal-reason',
    minlength: '10',
    maxlength: '500',
    required: true,
    rows: '3',
    'aria-describedby': 'reveal-help',
  });
  const code = h('input', {
    id: 'reveal-code',
    inputmode: 'numeric',
    maxlength: '6',
    autocomplete: 'one-time-code',
  });
  const codeRow = h('label', { hidden: true }, 'Authenticator code ', code);
  const message = h('p', { id: 'reveal-message', role: 'alert' });
  const shown = h('output', { id: 'revealed', 'aria-live': 'polite' });
  let timer: number | undefined;
  const close = () => {
    window.clearTimeout(timer);
    shown.textContent = '';
    dialog.close();
    dialog.remove();
  };
  const submit = async (event: Event) => {
    event.preventDefault();
    message.textContent = '';
    if (reason.value.trim().length < 10) {
      message.textContent = 'State the reason for revealing this card number (at least 10 characters).';
      return;
    }
    try {
      if (!codeRow.hidden) {
        await call('api', 'POST', '/v1/auth/step-up', { code: code.value });
        codeRow.hidden = true;
      }
      const card = await call<{
        pan: string;
        exp_month: number;
        exp_year: number;
        holder_name: string | null;
      }>('vault', 'POST', `/v1/tokens/${encodeURIComponent(tokenId)}/reveal`, { reason: reason.value });
      shown.textContent = card.pan;
      form.hidden = true;
      notify('Card number revealed; the reveal and its reason are in the audit trail.');
      timer = window.setTimeout(close, REVEAL_SHOWN_MS);
    } catch (error) {
      const oidc = oidcSettings();
      if (error instanceof ApiError && error.code === 'mfa_required' && viaIdentityProvider() && oidc) {
        // The provider's sign-in is over 15 minutes old; only the provider can renew it.
        message.replaceChildren(
          'Your sign-in at the identity provider is more than 15 minutes old. ',
          h(
            'button',
            { type: 'button', id: 'reauthenticate', onclick: () => void beginOidcSignIn(oidc, true) },
            'Sign in again at the provider',
          ),
          ' then open this token again.',
        );
      } else if (error instanceof ApiError && error.code === 'mfa_required') {
        codeRow.hidden = false;
        message.textContent = 'Enter a current code from your authenticator to confirm it is you.';
      } else if (error instanceof ApiError && error.status === 403) {
        message.textContent = `Access denied: ${error.detail}`;
      } else {
        message.textContent = error instanceof ApiError ? error.detail : 'The reveal failed.';
      }
    }
  };
  const form = h(
    'form',
    // The reason is checked here, with a message in the dialog, rather than by the browser's bubble.
    { onsubmit: submit, novalidate: true },
    h('label', { for: 'reveal-reason' }, 'Reason'),
    reason,
    h('p', { id: 'reveal-help', class: 'help' }, 'Recorded in the audit trail with your name.'),
    codeRow,
    h('button', { type: 'submit' }, 'Reveal'),
  );
  const dialog = h(
    'dialog',
    { id: 'reveal-dialog', 'aria-labelledby': 'reveal-title' },
    h('h3', { id: 'reveal-title' }, 'Reveal the full card number'),
    form,
    message,
    shown,
    h('button', { type: 'button', id: 'reveal-close', onclick: close }, 'Close'),
  );
  dialog.addEventListener('cancel', close);
  document.body.append(dialog);
  dialog.showModal();
  reason.focus();
}
