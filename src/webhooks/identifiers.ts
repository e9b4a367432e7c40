import { Secret } from '../shared/secret.ts';
import { randomBase62 } from '../vault/identifiers.ts';

/** Ids of webhook objects: an endpoint (`we_`), an event (`evt_`), a delivery (`whd_`). */
export const newWebhookId = (prefix: 'we' | 'evt' | 'whd') => `${prefix}_${randomBase62()}`;

export const endpointIdPattern = '^we_[0-9A-Za-z]{22}$';
export const eventIdPattern = '^evt_[0-9A-Za-z]{22}$';
export const deliveryIdPattern = '^whd_[0-9A-Za-z]{22}$';
/** `payment_intent.succeeded`, `charge.refund.updated`: lowercase words joined by dots. */
export const eventTypePattern = '^[a-z][a-z0-9_]*(\\.[a-z][a-z0-9_]*)+$';

/** A signing secret: 256 random bits, shown once as `whsec_…`; merchants key their HMAC with the whole string. */
export const newSigningSecret = () => new Secret(`whsec_${randomBase62(32)}`);
