import { ConfigError } from '../config/config.ts';
import type { Connector } from './connector.ts';

/** When a rule applies; every listed condition must hold, and an absent one always holds. */
export interface RoutingCondition {
  currency?: string[];
  brand?: string[];
  merchant?: string[];
  min_amount?: number;
  max_amount?: number;
}

export interface RoutingRule {
  when: RoutingCondition;
  /** The connectors to try, in order: later ones only after a retriable, unambiguous failure. */
  connectors: string[];
}

export interface RouteInput {
  merchantId: string;
  amount: number;
  currency: string;
  brand: string;
}

/**
 * Ordered routing rules: the first rule whose conditions hold gives the connector list; with none, every
 * connector in configuration order. Connectors that do not take the currency are dropped from the list.
 */
export class Router {
  readonly #connectors: Map<string, Connector>;
  readonly #rules: readonly RoutingRule[];

  constructor(connectors: readonly Connector[], rules: readonly RoutingRule[] = []) {
    this.#connectors = new Map(connectors.map((c) => [c.name, c]));
    for (const [i, rule] of rules.entries()) {
      for (const name of rule.connectors) {
        if (!this.#connectors.has(name)) {
          throw new ConfigError('CARDHOLD_ROUTING_RULES', `rule ${i + 1} names an unknown connector`);
        }
      }
    }
    this.#rules = rules;
  }

  connector(name: string): Connector | undefined {
    return this.#connectors.get(name);
  }

  /** Whether routing needs the card's brand; only then does a payment look its token up first. */
  get usesBrand(): boolean {
    return this.#rules.some((rule) => rule.when.brand !== undefined);
  }

  route(input: RouteInput): Connector[] {
    const rule = this.#rules.find((r) => matches(r.when, input));
    const names = rule ? rule.connectors : [...this.#connectors.keys()];
    return names
      .map((name) => this.#connectors.get(name) as Connector)
      .filter(
        (c) => c.capabilities.currencies === 'any' || c.capabilities.currencies.includes(input.currency),
      );
  }
}

function matches(when: RoutingCondition, input: RouteInput): boolean {
  const within = (list: string[] | undefined, value: string) =>
    !list || list.some((v) => v.toLowerCase() === value.toLowerCase());
  return (
    within(when.currency, input.currency) &&
    within(when.brand, input.brand) &&
    within(when.merchant, input.merchantId) &&
    (when.min_amount === undefined || input.amount >= when.min_amount) &&
    (when.max_amount === undefined || input.amount <= when.max_amount)
  );
}

/** Parses CARDHOLD_ROUTING_RULES; a bad value names the setting, never echoes it. */
export function parseRoutingRules(text: string | undefined): RoutingRule[] {
  if (!text) return [];
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new ConfigError('CARDHOLD_ROUTING_RULES', 'must be a JSON list of rules');
  }
  if (!Array.isArray(parsed)) throw new ConfigError('CARDHOLD_ROUTING_RULES', 'must be a JSON list of rules');
  return parsed.map((raw, i) => {
    const rule = raw as Partial<RoutingRule>;
    const problem = (what: string) => new ConfigError('CARDHOLD_ROUTING_RULES', `rule ${i + 1}: ${what}`);
    if (!rule || typeof rule !== 'object') throw problem('must be an object');
    if (!Array.isArray(rule.connectors) || rule.connectors.length === 0)
      throw problem('needs a non-empty "connectors" list');
    const when = rule.when ?? {};
    for (const key of Object.keys(when)) {
      if (!['currency', 'brand', 'merchant', 'min_amount', 'max_amount'].includes(key))
        throw problem(`unknown condition "${key}"`);
    }
    return { when, connectors: rule.connectors.map(String) };
  });
}

export interface ConnectorSpec {
  name: string;
  type: 'test-acquirer';
  /** Absent: the test acquirer running in this process (`cardhold start`). */
  url?: string | undefined;
}

/** Parses CARDHOLD_CONNECTORS. */
export function parseConnectorSpecs(text: string): ConnectorSpec[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new ConfigError('CARDHOLD_CONNECTORS', 'must be a JSON list of connectors');
  }
  if (!Array.isArray(parsed) || parsed.length === 0)
    throw new ConfigError('CARDHOLD_CONNECTORS', 'must be a non-empty JSON list of connectors');
  const names = new Set<string>();
  return parsed.map((raw, i) => {
    const spec = raw as Partial<ConnectorSpec>;
    const problem = (what: string) => new ConfigError('CARDHOLD_CONNECTORS', `connector ${i + 1}: ${what}`);
    if (typeof spec?.name !== 'string' || !/^[a-z0-9_-]{1,40}$/.test(spec.name))
      throw problem('needs a "name" of lower-case letters, digits, - or _');
    if (names.has(spec.name)) throw problem('has a name already used');
    names.add(spec.name);
    if (spec.type !== 'test-acquirer') throw problem('has an unknown "type" (known: test-acquirer)');
    if (spec.url !== undefined && (typeof spec.url !== 'string' || !spec.url.startsWith('https://')))
      throw problem('has a "url" that is not https');
    return { name: spec.name, type: spec.type, url: spec.url };
  });
}
