import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';
import { acquirerTestCards } from '../../test/fixtures/cards.ts';
import { startTestPlatform, type TestPlatform } from '../../test/harness.ts';
import { ConfigError } from '../config/config.ts';
import type { Connector, ConnectorCapabilities } from './connector.ts';
import { parseConnectorSpecs, parseRoutingRules, type RouteInput, Router } from './routing.ts';
import { TestAcquirerConnector } from './test-acquirer-connector.ts';

const merchantA = `mer_${'A'.repeat(22)}`;
const merchantB = `mer_${'B'.repeat(22)}`;

/** A connector that only has a name and capabilities: routing never calls a processor. */
function connector(name: string, currencies: ConnectorCapabilities['currencies'] = 'any'): Connector {
  const never = () => Promise.reject(new Error('routing must not call the processor'));
  return {
    name,
    capabilities: {
      multipleCaptures: true,
      partialCapture: true,
      partialRefund: true,
      void: true,
      sync: true,
      currencies,
    },
    authorize: never,
    capture: never,
    void: never,
    refund: never,
    sync: never,
  };
}

const connectors = [connector('a'), connector('b'), connector('c'), connector('usd-only', ['USD'])];
const names = connectors.map((c) => c.name);

const refused = (rules: unknown, expected: RegExp, known?: readonly string[]) =>
  assert.throws(
    () => parseRoutingRules(JSON.stringify(rules), known),
    (error: unknown) => {
      assert.ok(error instanceof ConfigError, String(error));
      assert.equal(error.setting, 'CARDHOLD_ROUTING_RULES');
      assert.match(error.message, expected);
      return true;
    },
  );

describe('CARDHOLD_ROUTING_RULES: every condition is type-checked when the setting is read', () => {
  const ok = { when: {}, connectors: ['a'] };
  // [what is wrong, the rules, the rule and field the message must name]
  const bad: Array<[string, unknown, RegExp]> = [
    ['not a list', { when: {}, connectors: ['a'] }, /must be a JSON list of rules/],
    ['a rule that is not an object', [ok, 'a'], /^CARDHOLD_ROUTING_RULES: rule 2: must be an object/],
    ['a rule that is a list', [[]], /rule 1: must be an object/],
    ['a rule that is null', [null], /rule 1: must be an object/],
    ['an unknown field beside when', [{ ...ok, whne: {} }], /rule 1: unknown field "whne"/],
    ['connectors missing', [{ when: {} }], /rule 1: "connectors" must be a non-empty list/],
    ['connectors empty', [ok, { when: {}, connectors: [] }], /rule 2: "connectors" must be a non-empty list/],
    ['connectors a string', [{ when: {}, connectors: 'a' }], /rule 1: "connectors" must be a non-empty list/],
    ['a connector that is a number', [{ when: {}, connectors: ['a', 7] }], /rule 1: "connectors\[1\]"/],
    ['a connector that is null', [{ when: {}, connectors: [null] }], /rule 1: "connectors\[0\]"/],
    ['a connector listed twice', [{ when: {}, connectors: ['a', 'b', 'a'] }], /rule 1: "connectors\[2\]"/],
    ['when a list', [{ when: [], connectors: ['a'] }], /rule 1: "when" must be an object/],
    ['when a string', [{ when: 'EUR', connectors: ['a'] }], /rule 1: "when" must be an object/],
    ['when null', [{ when: null, connectors: ['a'] }], /rule 1: "when" must be an object/],
    [
      'an unknown condition',
      [{ when: { country: ['DE'] }, connectors: ['a'] }],
      /rule 1: unknown condition "when.country"/,
    ],
    [
      'currency a string',
      [ok, ok, { when: { currency: 'EUR' }, connectors: ['a'] }],
      /rule 3: "when.currency" must be a non-empty list/,
    ],
    [
      'currency empty',
      [{ when: { currency: [] }, connectors: ['a'] }],
      /rule 1: "when.currency" must be a non-empty list/,
    ],
    [
      'currency null',
      [{ when: { currency: null }, connectors: ['a'] }],
      /rule 1: "when.currency" must be a non-empty list/,
    ],
    [
      'currency not 3 letters',
      [{ when: { currency: ['EUR', 'EURO'] }, connectors: ['a'] }],
      /rule 1: "when.currency\[1\]" must be a supported ISO 4217/,
    ],
    ['currency a number', [{ when: { currency: [978] }, connectors: ['a'] }], /rule 1: "when.currency\[0\]"/],
    [
      'currency unknown',
      [{ when: { currency: ['XYZ'] }, connectors: ['a'] }],
      /rule 1: "when.currency\[0\]"/,
    ],
    [
      'brand a string',
      [{ when: { brand: 'visa' }, connectors: ['a'] }],
      /rule 1: "when.brand" must be a non-empty list/,
    ],
    [
      'brand unknown',
      [{ when: { brand: ['visa', 'vissa'] }, connectors: ['a'] }],
      /rule 1: "when.brand\[1\]" must be a card brand/,
    ],
    ['brand an object', [{ when: { brand: [{}] }, connectors: ['a'] }], /rule 1: "when.brand\[0\]"/],
    [
      'merchant a string',
      [{ when: { merchant: merchantA }, connectors: ['a'] }],
      /rule 1: "when.merchant" must be a non-empty list/,
    ],
    [
      'merchant not an id',
      [{ when: { merchant: [merchantA, 'acme'] }, connectors: ['a'] }],
      /rule 1: "when.merchant\[1\]" must be a merchant id/,
    ],
    [
      'max_amount null',
      [{ when: { max_amount: null }, connectors: ['a'] }],
      /rule 1: "when.max_amount" must be a non-negative whole number/,
    ],
    [
      'max_amount a string',
      [{ when: { max_amount: '1000' }, connectors: ['a'] }],
      /rule 1: "when.max_amount"/,
    ],
    [
      'max_amount a fraction',
      [{ when: { max_amount: 10.5 }, connectors: ['a'] }],
      /rule 1: "when.max_amount"/,
    ],
    [
      'max_amount beyond a safe integer',
      [{ when: { max_amount: 2 ** 53 }, connectors: ['a'] }],
      /rule 1: "when.max_amount"/,
    ],
    [
      'min_amount negative',
      [{ when: { min_amount: -1 }, connectors: ['a'] }],
      /rule 1: "when.min_amount" must be a non-negative whole number/,
    ],
    ['min_amount a list', [{ when: { min_amount: [1] }, connectors: ['a'] }], /rule 1: "when.min_amount"/],
    [
      'min_amount a boolean',
      [{ when: { min_amount: true }, connectors: ['a'] }],
      /rule 1: "when.min_amount"/,
    ],
    [
      'min_amount above max_amount',
      [{ when: { min_amount: 500, max_amount: 499 }, connectors: ['a'] }],
      /rule 1: "when.min_amount" must not be greater than "when.max_amount"/,
    ],
  ];
  for (const [what, rules, expected] of bad) {
    test(`refused: ${what}`, () => refused(rules, expected));
  }

  test('not JSON is refused without echoing the setting', () => {
    assert.throws(
      () => parseRoutingRules(`[{"when":{"currency":["${acquirerTestCards.approve}"`),
      (error: unknown) =>
        error instanceof ConfigError &&
        !error.message.includes(acquirerTestCards.approve) &&
        /must be a JSON list of rules/.test(error.message),
    );
  });

  test('the message names the field, never the value', () => {
    for (const rules of [
      [{ when: { currency: [acquirerTestCards.approve] }, connectors: ['a'] }],
      [{ when: { merchant: [acquirerTestCards.approve] }, connectors: ['a'] }],
      [{ when: { max_amount: acquirerTestCards.approve }, connectors: ['a'] }],
      [{ when: {}, connectors: [acquirerTestCards.approve] }],
      [{ when: { [acquirerTestCards.approve]: 1 }, connectors: ['a'] }],
      [{ when: {}, connectors: ['a'], [`x ${acquirerTestCards.approve}`]: 1 }],
    ]) {
      assert.throws(
        () => parseRoutingRules(JSON.stringify(rules), names),
        (error: unknown) =>
          error instanceof ConfigError &&
          /rule 1: /.test(error.message) &&
          !error.message.includes(acquirerTestCards.approve),
      );
    }
  });

  test('connector names are checked against the configured connectors when the parser is given them', () => {
    refused(
      [{ when: {}, connectors: ['a', 'z'] }],
      /rule 1: "connectors\[1\]" names an unknown connector/,
      names,
    );
    assert.deepEqual(parseRoutingRules(JSON.stringify([{ connectors: ['c', 'a'] }]), names), [
      { when: {}, connectors: ['c', 'a'] },
    ]);
    // And the Router refuses them in any case, naming the rule and the field.
    assert.throws(
      () =>
        new Router(
          connectors,
          parseRoutingRules(JSON.stringify([{ connectors: ['a'] }, { connectors: ['z'] }])),
        ),
      (error: unknown) =>
        error instanceof ConfigError && /rule 2: "connectors" names an unknown connector/.test(error.message),
    );
  });

  test('a valid configuration loads with every condition, in any letter case', () => {
    const rules = parseRoutingRules(
      JSON.stringify([
        {
          when: {
            currency: ['EUR', 'gbp'],
            brand: ['VISA', 'mastercard'],
            merchant: [merchantA],
            min_amount: 0,
            max_amount: Number.MAX_SAFE_INTEGER,
          },
          connectors: ['a', 'b'],
        },
        { when: { min_amount: 100, max_amount: 100 }, connectors: ['b'] },
        { connectors: ['c'] },
      ]),
      names,
    );
    assert.equal(rules.length, 3);
    assert.deepEqual(rules[0]?.when.currency, ['EUR', 'gbp']);
    assert.deepEqual(rules[2], { when: {}, connectors: ['c'] });
    assert.deepEqual(parseRoutingRules(undefined), []);
    assert.deepEqual(parseRoutingRules(''), []);
    assert.deepEqual(parseRoutingRules('[]'), []);
  });
});

describe('routing chooses the connectors of the first matching rule, in order', () => {
  const route = (rules: unknown[], input: Partial<RouteInput>) =>
    new Router(connectors, parseRoutingRules(JSON.stringify(rules), names))
      .route({ merchantId: merchantA, amount: 1000, currency: 'USD', brand: 'visa', ...input })
      .map((c) => c.name);

  test('by currency, in any letter case', () => {
    const rules = [
      { when: { currency: ['EUR', 'GBP'] }, connectors: ['b', 'a'] },
      { when: { currency: ['usd'] }, connectors: ['c'] },
    ];
    assert.deepEqual(route(rules, { currency: 'eur' }), ['b', 'a']);
    assert.deepEqual(route(rules, { currency: 'GBP' }), ['b', 'a']);
    assert.deepEqual(route(rules, { currency: 'USD' }), ['c']);
    assert.deepEqual(
      route(rules, { currency: 'JPY' }),
      names.filter((n) => n !== 'usd-only'),
      'no rule: all that take JPY',
    );
  });

  test('by amount: min_amount and max_amount are both inclusive', () => {
    const rules = [
      { when: { max_amount: 999 }, connectors: ['a'] },
      { when: { min_amount: 1000, max_amount: 5000 }, connectors: ['b', 'c'] },
      { when: { min_amount: 5001 }, connectors: ['c', 'a'] },
    ];
    assert.deepEqual(route(rules, { amount: 1 }), ['a']);
    assert.deepEqual(route(rules, { amount: 999 }), ['a'], 'max_amount itself matches');
    assert.deepEqual(route(rules, { amount: 1000 }), ['b', 'c'], 'min_amount itself matches');
    assert.deepEqual(route(rules, { amount: 5000 }), ['b', 'c'], 'max_amount itself matches');
    assert.deepEqual(route(rules, { amount: 5001 }), ['c', 'a'], 'min_amount itself matches');
    assert.deepEqual(route(rules, { amount: Number.MAX_SAFE_INTEGER }), ['c', 'a']);
    // An exact amount: min_amount equal to max_amount.
    const exact = [{ when: { min_amount: 700, max_amount: 700 }, connectors: ['c'] }, { connectors: ['a'] }];
    assert.deepEqual(route(exact, { amount: 699 }), ['a']);
    assert.deepEqual(route(exact, { amount: 700 }), ['c']);
    assert.deepEqual(route(exact, { amount: 701 }), ['a']);
    // max_amount 0 is a bound, not "no bound".
    assert.deepEqual(
      route([{ when: { max_amount: 0 }, connectors: ['c'] }, { connectors: ['a'] }], { amount: 1 }),
      ['a'],
    );
  });

  test('by brand, in any letter case', () => {
    const rules = [
      { when: { brand: ['amex'] }, connectors: ['c'] },
      { when: { brand: ['VISA', 'mastercard'] }, connectors: ['b', 'a'] },
      { connectors: ['a'] },
    ];
    assert.deepEqual(route(rules, { brand: 'amex' }), ['c']);
    assert.deepEqual(route(rules, { brand: 'visa' }), ['b', 'a']);
    assert.deepEqual(route(rules, { brand: 'mastercard' }), ['b', 'a']);
    assert.deepEqual(route(rules, { brand: 'discover' }), ['a']);
    assert.equal(new Router(connectors, parseRoutingRules(JSON.stringify(rules))).usesBrand, true);
    assert.equal(new Router(connectors, parseRoutingRules('[{"connectors":["a"]}]')).usesBrand, false);
  });

  test('by merchant', () => {
    const rules = [{ when: { merchant: [merchantB] }, connectors: ['c', 'b'] }, { connectors: ['a'] }];
    assert.deepEqual(route(rules, { merchantId: merchantB }), ['c', 'b']);
    assert.deepEqual(route(rules, { merchantId: merchantA }), ['a']);
    // Merchant ids are case-sensitive: another merchant whose id differs only in case is not this one.
    assert.deepEqual(route(rules, { merchantId: merchantB.replace('mer_B', 'mer_b') }), ['a']);
  });

  test('every condition of a rule must hold; the first matching rule wins', () => {
    const rules = [
      {
        when: { currency: ['EUR'], brand: ['visa'], merchant: [merchantA], min_amount: 100, max_amount: 200 },
        connectors: ['c'],
      },
      { when: { currency: ['EUR'] }, connectors: ['b'] },
      { when: { currency: ['EUR'] }, connectors: ['a'] },
    ];
    const all = { currency: 'EUR', brand: 'visa', merchantId: merchantA, amount: 150 };
    assert.deepEqual(route(rules, all), ['c']);
    assert.deepEqual(route(rules, { ...all, brand: 'amex' }), ['b']);
    assert.deepEqual(route(rules, { ...all, merchantId: merchantB }), ['b']);
    assert.deepEqual(route(rules, { ...all, amount: 99 }), ['b']);
    assert.deepEqual(route(rules, { ...all, amount: 201 }), ['b']);
    assert.deepEqual(
      route(rules, { ...all, currency: 'USD' }),
      names,
      'no rule: every connector in configuration order',
    );
  });

  test('connectors that do not take the currency are dropped from the chosen list', () => {
    const rules = [{ connectors: ['usd-only', 'b'] }];
    assert.deepEqual(route(rules, { currency: 'USD' }), ['usd-only', 'b']);
    assert.deepEqual(route(rules, { currency: 'EUR' }), ['b']);
  });
});

test('a platform with a bad routing rule does not start', async () => {
  const dataDir = await mkdtemp(path.join(tmpdir(), 'cardhold-test-'));
  let started: TestPlatform | undefined;
  let failure: unknown;
  try {
    started = await startTestPlatform('embedded', 'routing-refused', {
      roles: ['vault', 'api', 'acquirer'],
      dataDir,
      env: {
        CARDHOLD_ROUTING_RULES: JSON.stringify([
          { when: { currency: 'EUR' }, connectors: ['test-acquirer'] },
        ]),
      },
    });
  } catch (error) {
    failure = error;
  } finally {
    // Should it start after all, stop it, so that the test fails rather than hangs.
    await started?.close();
    await rm(dataDir, { recursive: true, force: true });
  }
  assert.ok(started === undefined, 'the platform started with a rule that every payment would fail on');
  assert.ok(failure instanceof ConfigError, String(failure));
  assert.match(failure.message, /rule 1: "when.currency" must be a non-empty list/);
});

describe('connector capabilities can be turned off in CARDHOLD_CONNECTORS, never on', () => {
  const spec = (capabilities: unknown) =>
    parseConnectorSpecs(JSON.stringify([{ name: 'a', type: 'test-acquirer', capabilities }]))[0];

  test('false turns a capability off; currencies narrows the list; the rest stays as declared', () => {
    const parsed = spec({ multiple_captures: false, partial_refund: true, currencies: ['eur', 'USD'] });
    const made = new TestAcquirerConnector({
      name: 'a',
      url: 'https://acquirer.invalid',
      vault: {} as never,
      restrict: parsed?.restrict,
    });
    assert.deepEqual(made.capabilities, {
      multipleCaptures: false,
      partialCapture: true,
      partialRefund: true,
      void: true,
      sync: true,
      currencies: ['EUR', 'USD'],
    });
    const plain = new TestAcquirerConnector({
      name: 'b',
      url: 'https://acquirer.invalid',
      vault: {} as never,
    });
    assert.equal(plain.capabilities.multipleCaptures, true);
    assert.equal(plain.capabilities.currencies, 'any');
  });

  for (const [what, capabilities, message] of [
    ['not an object', ['void'], /connector 1: has "capabilities" that is not an object/],
    ['an unknown capability', { refunds: false }, /connector 1: has an unknown capability/],
    ['a flag that is not a boolean', { void: 'no' }, /"capabilities.void" that is not true or false/],
    [
      'currencies not a list',
      { currencies: 'EUR' },
      /"capabilities.currencies" that is not a non-empty list/,
    ],
    [
      'an unknown currency',
      { currencies: ['XYZ'] },
      /"capabilities.currencies" that is not a non-empty list/,
    ],
  ] as const) {
    test(`refused: ${what}`, () => {
      assert.throws(
        () => spec(capabilities),
        (error: unknown) => error instanceof ConfigError && message.test(error.message),
      );
    });
  }

  test('refused: an unknown field in a connector (a misspelt capabilities would otherwise be ignored)', () => {
    assert.throws(
      () =>
        parseConnectorSpecs(
          JSON.stringify([{ name: 'a', type: 'test-acquirer', capabilites: { void: false } }]),
        ),
      (error: unknown) =>
        error instanceof ConfigError && /connector 1: has an unknown field/.test(error.message),
    );
  });
});
