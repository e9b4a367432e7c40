import { ConfigError } from '../config/config.ts';
import { currencyCode } from '../payments/currencies.ts';
import type { CardBrand } from '../vault/card-brands.ts';
import { merchantIdPattern } from '../vault/identifiers.ts';
import type { Connector } from './connector.ts';

/**
 * When a rule applies; every listed condition must hold, and an absent one always holds. Currencies and
 * brands match in any letter case, merchant ids exactly; both amount bounds are inclusive.
 * parseRoutingRules checks every type.
 */
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
          throw new ConfigError(
            'CARDHOLD_ROUTING_RULES',
            `rule ${i + 1}: "connectors" names an unknown connector`,
          );
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
  // Currency codes and brands in any letter case; merchant ids are case-sensitive, so compared exactly.
  const within = (list: string[] | undefined, value: string) =>
    !list || list.some((v) => v.toLowerCase() === value.toLowerCase());
  return (
    within(when.currency, input.currency) &&
    within(when.brand, input.brand) &&
    (!when.merchant || when.merchant.includes(input.merchantId)) &&
    (when.min_amount === undefined || input.amount >= when.min_amount) &&
    (when.max_amount === undefined || input.amount <= when.max_amount)
  );
}

const conditionNames = ['currency', 'brand', 'merchant', 'min_amount', 'max_amount'] as const;

/** Every brand the vault can give a token (src/vault/card-brands.ts); the compiler keeps this list complete. */
const brandNames: Record<CardBrand, true> = {
  visa: true,
  mastercard: true,
  amex: true,
  discover: true,
  diners: true,
  jcb: true,
  unionpay: true,
  maestro: true,
  unknown: true,
};

const merchantId = new RegExp(merchantIdPattern);
const connectorName = /^[a-z0-9_-]{1,40}$/;

/** A field name as the operator wrote it if it is letters and underscores only: never digits, never free text. */
const quoted = (name: string, prefix = '') =>
  /^[A-Za-z_]{1,40}$/.test(name) ? `"${prefix}${name}"` : `(name not shown)`;

const isObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

const isSupportedCurrency = (value: string) => {
  try {
    currencyCode(value);
    return true;
  } catch {
    return false;
  }
};

/**
 * Parses CARDHOLD_ROUTING_RULES and checks the type of everything in it, so that a bad rule stops
 * start-up instead of failing (or silently never matching) payments later. A rule is
 * `{"when": {…}, "connectors": [names]}`; the conditions, each optional:
 * - `currency`: a non-empty list of supported ISO 4217 codes (any case);
 * - `brand`: a non-empty list of card brands (visa, mastercard, amex, discover, diners, jcb, unionpay,
 *   maestro, unknown; any case);
 * - `merchant`: a non-empty list of merchant ids (`mer_…`);
 * - `min_amount`, `max_amount`: non-negative safe integers in minor units, both bounds inclusive, and
 *   `min_amount` no greater than `max_amount`.
 * `connectors` is a non-empty list of distinct connector names, checked against `knownConnectors` when
 * given (the Router checks them in any case). A bad value names the setting, the rule (from 1) and the
 * field, never the value.
 */
export function parseRoutingRules(
  text: string | undefined,
  knownConnectors?: readonly string[],
): RoutingRule[] {
  if (!text) return [];
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new ConfigError('CARDHOLD_ROUTING_RULES', 'must be a JSON list of rules');
  }
  if (!Array.isArray(parsed)) throw new ConfigError('CARDHOLD_ROUTING_RULES', 'must be a JSON list of rules');
  return parsed.map((raw: unknown, i) => {
    const problem = (what: string) => new ConfigError('CARDHOLD_ROUTING_RULES', `rule ${i + 1}: ${what}`);
    if (!isObject(raw)) throw problem('must be an object');
    for (const key of Object.keys(raw)) {
      if (key !== 'when' && key !== 'connectors')
        throw problem(`unknown field ${quoted(key)} (known: when, connectors)`);
    }
    const connectors = raw['connectors'];
    if (!Array.isArray(connectors) || connectors.length === 0)
      throw problem('"connectors" must be a non-empty list of connector names');
    for (const [j, name] of connectors.entries()) {
      if (typeof name !== 'string' || !connectorName.test(name))
        throw problem(`"connectors[${j}]" must be a connector name (lower-case letters, digits, - or _)`);
      if (connectors.indexOf(name) !== j)
        throw problem(`"connectors[${j}]" names a connector already listed`);
      if (knownConnectors && !knownConnectors.includes(name))
        throw problem(`"connectors[${j}]" names an unknown connector`);
    }
    const rawWhen = 'when' in raw ? raw['when'] : {};
    if (!isObject(rawWhen)) throw problem('"when" must be an object of conditions');
    const when: RoutingCondition = {};
    for (const [key, value] of Object.entries(rawWhen)) {
      const field = `"when.${key}"`;
      const list = (each: string, valid: (item: string) => boolean): string[] => {
        if (!Array.isArray(value) || value.length === 0)
          throw problem(`${field} must be a non-empty list, each item ${each}`);
        for (const [j, item] of value.entries()) {
          if (typeof item !== 'string' || !valid(item)) throw problem(`"when.${key}[${j}]" must be ${each}`);
        }
        return value as string[];
      };
      const amount = (): number => {
        if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0)
          throw problem(`${field} must be a non-negative whole number of minor units`);
        return value;
      };
      switch (key as (typeof conditionNames)[number]) {
        case 'currency':
          when.currency = list(
            'a supported ISO 4217 currency code (3 letters)',
            (c) => /^[A-Za-z]{3}$/.test(c) && isSupportedCurrency(c),
          );
          break;
        case 'brand':
          when.brand = list(`a card brand (${Object.keys(brandNames).join(', ')})`, (b) =>
            Object.hasOwn(brandNames, b.toLowerCase()),
          );
          break;
        case 'merchant':
          when.merchant = list('a merchant id (mer_…)', (m) => merchantId.test(m));
          break;
        case 'min_amount':
          when.min_amount = amount();
          break;
        case 'max_amount':
          when.max_amount = amount();
          break;
        default:
          throw problem(`unknown condition ${quoted(key, 'when.')} (known: ${conditionNames.join(', ')})`);
      }
    }
    if (when.min_amount !== undefined && when.max_amount !== undefined && when.min_amount > when.max_amount)
      throw problem('"when.min_amount" must not be greater than "when.max_amount"');
    return { when, connectors: [...connectors] as string[] };
  });
}

export interface ConnectorSpec {
  name: string;
  type: 'test-acquirer';
  /** Absent: the test acquirer running in this process (`cardhold start`). */
  url?: string | undefined;
  /** What the operator turns off of what the connector supports (a contract that allows less, say). */
  restrict?: CapabilityRestrictions | undefined;
}

/** `capabilities` of a CARDHOLD_CONNECTORS entry: each flag can only turn a capability off. */
export interface CapabilityRestrictions {
  multipleCaptures?: boolean;
  partialCapture?: boolean;
  partialRefund?: boolean;
  void?: boolean;
  currencies?: string[];
}

const RESTRICTABLE = {
  multiple_captures: 'multipleCaptures',
  partial_capture: 'partialCapture',
  partial_refund: 'partialRefund',
  void: 'void',
} as const;

/** Reads a connector's `capabilities`: false turns one off, true leaves it as the connector declares. */
function parseRestrictions(raw: unknown, problem: (what: string) => ConfigError): CapabilityRestrictions {
  if (!isObject(raw)) throw problem('has "capabilities" that is not an object');
  const out: CapabilityRestrictions = {};
  for (const [key, value] of Object.entries(raw)) {
    if (key === 'currencies') {
      if (
        !Array.isArray(value) ||
        value.length === 0 ||
        !value.every((c) => typeof c === 'string' && isSupportedCurrency(c))
      )
        throw problem('has "capabilities.currencies" that is not a non-empty list of ISO 4217 codes');
      out.currencies = value.map((c: string) => c.toUpperCase());
      continue;
    }
    if (!Object.hasOwn(RESTRICTABLE, key))
      throw problem(
        `has an unknown capability (known: ${[...Object.keys(RESTRICTABLE), 'currencies'].join(', ')})`,
      );
    if (typeof value !== 'boolean') throw problem(`has "capabilities.${key}" that is not true or false`);
    out[RESTRICTABLE[key as keyof typeof RESTRICTABLE]] = value;
  }
  return out;
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
    const unknown = Object.keys(spec).find((key) => !['name', 'type', 'url', 'capabilities'].includes(key));
    if (unknown !== undefined) throw problem('has an unknown field (known: name, type, url, capabilities)');
    const given = (spec as { capabilities?: unknown }).capabilities;
    const restrict = given === undefined ? undefined : parseRestrictions(given, problem);
    return { name: spec.name, type: spec.type, url: spec.url, ...(restrict ? { restrict } : {}) };
  });
}
