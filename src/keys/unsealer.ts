import type { AuditTrail } from '../audit/audit-trail.ts';
import { type Actor, accessEvent, type Origin } from '../audit/events.ts';
import { CardholdError, isCardholdError } from '../shared/errors.ts';
import { isSealable, type KeyProvider, type SealableKeyProvider, type SealStatus } from './key-provider.ts';

export interface Custodian {
  actor: Actor;
  origin: Origin;
}

/**
 * Custodians' unseal and seal, from the admin API or the host's control socket: one share per
 * custodian per attempt (dual control means distinct people, not distinct shares held by one), every
 * submission audited with its index and outcome and never the share. Fail closed: when a submission
 * cannot be recorded, the shares held so far are discarded.
 */
export class Unsealer {
  readonly #provider: KeyProvider;
  readonly #trail: AuditTrail;
  readonly #onSealed: () => void;
  #custodians = new Set<string>();

  constructor(options: { provider: KeyProvider; trail: AuditTrail; onSealed: () => void }) {
    this.#provider = options.provider;
    this.#trail = options.trail;
    this.#onSealed = options.onSealed;
  }

  #sealable(): SealableKeyProvider {
    if (!isSealable(this.#provider)) throw new CardholdError('key_provider_not_sealable');
    return this.#provider;
  }

  #resource(): { type: string; id: string } {
    return { type: 'key_provider', id: `${this.#provider.name}/${this.#sealable().sealStatus().seal_id}` };
  }

  status(): SealStatus {
    return this.#sealable().sealStatus();
  }

  async submit(who: Custodian, share: string): Promise<SealStatus> {
    const provider = this.#sealable();
    const resource = this.#resource();
    const custodian = `${who.actor.type}:${who.actor.id}`;
    if (provider.sealStatus().submitted === 0) this.#custodians.clear();
    let result: SealStatus & { index: number };
    try {
      if (provider.sealed && this.#custodians.has(custodian)) {
        throw new CardholdError('key_share_duplicate', {
          field: 'share',
          detail: 'This custodian already submitted a share in this unseal attempt',
        });
      }
      const wasSealed = provider.sealed;
      result = await provider.submitShare(share);
      if (wasSealed) this.#custodians.add(custodian);
    } catch (error) {
      const code = isCardholdError(error) ? error.code : 'internal_error';
      if (code === 'key_shares_mismatch') this.#custodians.clear();
      await this.#trail.record(accessEvent(who, 'key.unseal_share', resource, null, { failure: code }));
      throw error;
    }
    try {
      await this.#trail.record(
        accessEvent(who, 'key.unseal_share', resource, null, {
          details: { share_index: result.index, submitted: result.submitted, threshold: result.threshold },
        }),
      );
      if (!result.sealed && this.#custodians.size > 0) {
        await this.#trail.record(
          accessEvent(who, 'key.unsealed', resource, null, {
            details: { custodians: this.#custodians.size, threshold: result.threshold },
          }),
        );
        this.#custodians.clear();
      }
    } catch (error) {
      provider.seal();
      this.#custodians.clear();
      this.#onSealed();
      throw error;
    }
    return provider.sealStatus();
  }

  /** Emergency seal: the master key and every cached key-encrypting key are dropped at once. */
  async seal(who: Custodian): Promise<SealStatus> {
    const provider = this.#sealable();
    const wasUnsealed = provider.seal();
    this.#custodians.clear();
    this.#onSealed();
    await this.#trail.record(
      accessEvent(who, 'key.sealed', this.#resource(), null, { details: { was_unsealed: wasUnsealed } }),
    );
    return provider.sealStatus();
  }
}
