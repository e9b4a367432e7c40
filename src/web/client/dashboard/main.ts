import { auditView, deliveriesView, keysView, scanView, webhooksView } from './admin.ts';
import {
  ApiError,
  call,
  chooseMerchant,
  currentMerchant,
  endSession,
  logout,
  type Operator,
  onSessionEnded,
  publicCall,
  signedIn,
  startSession,
} from './api.ts';
import { h } from './dom.ts';
import { beginOidcSignIn, completeOidcSignIn, isOidcAnswer, oidcSettings } from './oidc.ts';
import { paymentDetail, paymentsList } from './payments.ts';
import { tokenDetail, tokensList } from './tokens.ts';
import { notify, view } from './view.ts';

/** PCI DSS 8.2.8: the server ends a session idle for 15 minutes; the page lets go of it at the same time. */
const IDLE_MS = 15 * 60_000;
const MERCHANT_ID = /^mer_[0-9A-Za-z]{22}$/;

const main = document.getElementById('main') as HTMLElement;
const nav = document.getElementById('nav') as HTMLElement;
const who = document.getElementById('who') as HTMLElement;
let lastActivity = Date.now();

const views: Array<[string, string]> = [
  ['#/payments', 'Payments'],
  ['#/tokens', 'Tokens'],
  ['#/audit', 'Audit trail'],
  ['#/keys', 'Keys'],
  ['#/webhooks', 'Webhooks'],
  ['#/scan', 'Scan report'],
];

function show(...children: Node[]): void {
  main.replaceChildren(...children);
  main.focus();
}

/** Sign-in: password, then TOTP (enrolment at the first sign-in), then a required password change. */
function loginForm(message = ''): void {
  nav.hidden = true;
  who.replaceChildren();
  const username = h('input', { id: 'username', name: 'username', autocomplete: 'username', required: true });
  const password = h('input', {
    id: 'password',
    name: 'password',
    type: 'password',
    autocomplete: 'current-password',
    required: true,
  });
  const error = h('p', { id: 'login-error', class: 'error', role: 'alert' }, message);
  const form = h(
    'form',
    {
      id: 'login',
      'aria-label': 'Sign in',
      onsubmit: async (event: Event) => {
        event.preventDefault();
        error.textContent = '';
        try {
          const step = await publicCall<{ stage: string; challenge_token: string; enrolment_uri?: string }>(
            '/v1/auth/login',
            { username: username.value, password: password.value },
          );
          const current = password.value;
          password.value = '';
          codeForm(step.challenge_token, step.enrolment_uri, current);
        } catch (failure) {
          password.value = '';
          error.textContent = signInRefusal(failure);
        }
      },
    },
    h('h2', {}, 'Sign in'),
    h('label', { for: 'username' }, 'Username'),
    username,
    h('label', { for: 'password' }, 'Password'),
    password,
    h('button', { type: 'submit' }, 'Continue'),
    error,
  );
  const oidc = oidcSettings();
  const provider = oidc
    ? h(
        'button',
        {
          type: 'button',
          id: 'oidc-sign-in',
          onclick: () => {
            beginOidcSignIn(oidc).catch(() => {
              error.textContent = 'Sign-in through the identity provider could not start.';
            });
          },
        },
        'Sign in with your identity provider',
      )
    : null;
  show(form, ...(provider ? [h('p', { class: 'or' }, 'or'), provider] : []));
  username.focus();
}

function signInRefusal(failure: unknown): string {
  if (failure instanceof ApiError && failure.code === 'rate_limited')
    return 'Too many attempts from here; wait a minute.';
  if (failure instanceof ApiError && failure.code === 'mfa_challenge_invalid')
    return 'The sign-in took too long; start again.';
  // One message for every refusal, as the api gives one answer: it must not tell which part was wrong
  // or whether the account exists or is locked.
  return 'Sign-in refused: the username, password or code is wrong, or the account is locked (10 failed attempts lock it for 30 minutes).';
}

function codeForm(challenge: string, enrolmentUri: string | undefined, currentPassword: string): void {
  const code = h('input', {
    id: 'code',
    name: 'code',
    inputmode: 'numeric',
    autocomplete: 'one-time-code',
    maxlength: '6',
    pattern: '[0-9]{6}',
    required: true,
  });
  const error = h('p', { id: 'login-error', class: 'error', role: 'alert' });
  const enrol = enrolmentUri
    ? h(
        'div',
        { class: 'enrol' },
        h(
          'p',
          {},
          'First sign-in: add this account to your authenticator app (shown once), then enter its code.',
        ),
        h('code', { id: 'enrolment-uri' }, enrolmentUri),
      )
    : null;
  show(
    h(
      'form',
      {
        id: 'mfa',
        'aria-label': 'Authenticator code',
        onsubmit: async (event: Event) => {
          event.preventDefault();
          error.textContent = '';
          try {
            const session = await publicCall<{
              token: string;
              expires_at: string;
              password_change_required: boolean;
              operator: Operator;
            }>('/v1/auth/mfa', { challenge_token: challenge, code: code.value });
            startSession(session.token, session.expires_at, session.operator);
            lastActivity = Date.now();
            if (session.password_change_required) passwordForm(currentPassword);
            else signedInShell();
          } catch (failure) {
            code.value = '';
            if (failure instanceof ApiError && failure.code === 'mfa_challenge_invalid')
              loginForm(signInRefusal(failure));
            else error.textContent = signInRefusal(failure);
          }
        },
      },
      h('h2', {}, 'Authenticator code'),
      enrol,
      h('label', { for: 'code' }, 'Six-digit code'),
      code,
      h('button', { type: 'submit' }, 'Sign in'),
      error,
    ),
  );
  code.focus();
}

function passwordForm(currentPassword: string): void {
  const next = h('input', {
    id: 'new-password',
    type: 'password',
    autocomplete: 'new-password',
    required: true,
  });
  const error = h('p', { id: 'login-error', class: 'error', role: 'alert' });
  show(
    h(
      'form',
      {
        id: 'password-change',
        'aria-label': 'Choose a new password',
        onsubmit: async (event: Event) => {
          event.preventDefault();
          try {
            await call('api', 'POST', '/v1/auth/password', {
              current_password: currentPassword,
              new_password: next.value,
            });
            signedInShell();
          } catch (failure) {
            error.textContent = failure instanceof ApiError ? failure.detail : 'The change failed.';
          }
        },
      },
      h('h2', {}, 'Choose a new password'),
      h(
        'p',
        {},
        'Your password was set by an administrator: choose your own (12 or more characters, letters and digits).',
      ),
      h('label', { for: 'new-password' }, 'New password'),
      next,
      h('button', { type: 'submit' }, 'Save and continue'),
      error,
    ),
  );
}

function signedInShell(): void {
  const operator = signedIn();
  if (!operator) {
    loginForm();
    return;
  }
  nav.replaceChildren(...views.map(([href, label]) => h('a', { href }, label)));
  nav.hidden = false;
  const merchant = h('input', {
    id: 'merchant',
    value: currentMerchant() ?? '',
    placeholder: 'mer_…',
    'aria-label': 'Merchant',
    disabled: operator.merchant_id !== null,
  });
  who.replaceChildren(
    h('span', { id: 'operator' }, `${operator.username} (${operator.roles.join(', ')})`),
    h(
      'form',
      {
        class: 'inline',
        id: 'merchant-picker',
        onsubmit: (event: Event) => {
          event.preventDefault();
          const id = merchant.value.trim();
          if (id && !MERCHANT_ID.test(id))
            return notify('A merchant id looks like mer_ and 22 letters or digits.', 'error');
          chooseMerchant(id || null);
          route();
        },
      },
      h('label', {}, 'Merchant ', merchant),
      operator.merchant_id === null ? h('button', { type: 'submit' }, 'Use') : null,
    ),
    h('button', { type: 'button', id: 'logout', onclick: () => void logout() }, 'Sign out'),
  );
  if (!location.hash || location.hash === '#/') location.hash = '#/payments';
  else route();
}

/** Renders the view the hash names. Each view asks the api (or vault) and shows what it answers. */
function route(): void {
  if (!signedIn()) return;
  const [path = '', query = ''] = location.hash.slice(1).split('?');
  const params = new URLSearchParams(query);
  const parts = path.split('/').filter(Boolean);
  for (const link of nav.querySelectorAll('a')) {
    if (link.getAttribute('href') === `#/${parts[0] ?? ''}`) link.setAttribute('aria-current', 'page');
    else link.removeAttribute('aria-current');
  }
  const [name, id] = parts;
  const titles: Record<string, string> = {
    payments: id ? `Payment ${id}` : 'Payments',
    tokens: id ? `Token ${id}` : 'Tokens',
    audit: 'Audit trail',
    keys: 'Keys',
    webhooks: id ? `Webhook endpoint ${id}` : 'Webhooks',
    scan: 'Latest scan report',
  };
  const v = view(titles[name ?? ''] ?? 'Not found');
  v.section.id = `view-${name ?? 'none'}`;
  show(v.section);
  const rerender = () => route();
  const load: Record<string, () => Promise<void>> = {
    payments: () => (id ? paymentDetail(v, id, rerender) : paymentsList(v, params.get('status') ?? '')),
    tokens: () => (id ? tokenDetail(v, id) : tokensList(v, params.get('last4') ?? '')),
    audit: () => auditView(v, params),
    keys: () => keysView(v),
    webhooks: () => (id ? deliveriesView(v, id, rerender) : webhooksView(v)),
    scan: () => scanView(v),
  };
  const run = load[name ?? ''];
  if (!run) {
    v.loaded(h('p', {}, 'No such view.'));
    return;
  }
  run().catch((error: unknown) => v.failed(error));
}

onSessionEnded((reason) => {
  document.getElementById('reveal-dialog')?.remove();
  loginForm(reason);
});
for (const type of ['pointerdown', 'keydown']) {
  document.addEventListener(type, () => {
    lastActivity = Date.now();
  });
}
window.setInterval(() => {
  if (signedIn() && Date.now() - lastActivity > IDLE_MS) {
    void logout().then(() => endSession('Signed out after 15 minutes without activity.'));
  }
}, 30_000);
window.addEventListener('hashchange', route);
const oidc = oidcSettings();
if (oidc && isOidcAnswer()) {
  completeOidcSignIn(oidc).then(
    () => {
      lastActivity = Date.now();
      signedInShell();
    },
    (failure: unknown) =>
      loginForm(
        failure instanceof ApiError
          ? `The identity provider signed you in, but cardhold refused the token: ${failure.detail}`
          : failure instanceof Error
            ? failure.message
            : 'Sign-in through the identity provider failed.',
      ),
  );
} else {
  loginForm();
}
