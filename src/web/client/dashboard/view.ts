import { ApiError, currentMerchant } from './api.ts';
import { h } from './dom.ts';

/**
 * What every view renders into: a section whose `data-state` says where it stands (loading, loaded,
 * denied, need-merchant, error), so that people and tests see the same thing.
 */
export interface View {
  section: HTMLElement;
  loaded(...children: Array<Node | string | null | false>): void;
  failed(error: unknown): void;
}

export function view(title: string): View {
  const section = h('section', { 'data-state': 'loading', 'aria-busy': 'true' }, h('h2', {}, title));
  const settle = (state: string, ...children: Array<Node | string | null | false>) => {
    section.replaceChildren(h('h2', {}, title));
    for (const child of children) if (child) section.append(child);
    section.setAttribute('data-state', state);
    section.removeAttribute('aria-busy');
  };
  return {
    section,
    loaded: (...children) => settle('loaded', ...children),
    failed: (error) => {
      if (error instanceof ApiError && error.status === 403) {
        settle(
          'denied',
          h(
            'div',
            { class: 'denied', role: 'alert' },
            h('strong', {}, 'Access denied. '),
            `Your roles do not allow this view (${error.detail}).`,
          ),
        );
      } else if (error instanceof ApiError && error.code === 'mfa_required') {
        settle('denied', h('div', { class: 'denied', role: 'alert' }, error.detail));
      } else if (error instanceof ApiError && error.status === 401) {
        settle('error', h('p', {}, 'Your session has ended.'));
      } else {
        const message = error instanceof ApiError ? `${error.detail} (${error.code})` : 'The request failed.';
        settle('error', h('p', { class: 'error', role: 'alert' }, message));
      }
    },
  };
}

/** Views of one merchant's data need a merchant; platform-wide staff choose one at the top. */
export function needsMerchant(v: View): boolean {
  if (currentMerchant()) return false;
  v.section.replaceChildren(
    v.section.firstChild ?? '',
    h('p', {}, 'Choose the merchant to act for (Merchant, at the top) to see this view.'),
  );
  v.section.setAttribute('data-state', 'need-merchant');
  v.section.removeAttribute('aria-busy');
  return true;
}

/** A transient message at the top of the page. */
export function notify(message: string, kind: 'ok' | 'error' = 'ok'): void {
  const notice = document.getElementById('notice');
  if (!notice) return;
  notice.textContent = message;
  notice.className = kind;
}
