import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import fc from 'fast-check';
import { allRules } from '../rules/index.ts';
import type { Path } from '../types.ts';
import { parseFastYaml } from './fast-yaml.ts';
import { type ParsedDocument, parseYamlDocuments, parseYamlDocumentsWithTree } from './yaml-source.ts';

/**
 * The fast path must be invisible: for every text, the same values, the same documents and the same
 * position for every field as the `yaml` Document path (or the same error). Checked on every YAML fixture
 * and rule example, on generated manifests, and on generated and mutated YAML.
 */

type Outcome = { error: string } | { documents: ParsedDocument[] };

function outcome(parse: () => ParsedDocument[]): Outcome {
  try {
    return { documents: parse() };
  } catch (error) {
    return { error: `${(error as Error).constructor.name}: ${(error as Error).message}` };
  }
}

/** Every path into a value, and one step past each leaf and collection that does not exist. */
function pathsOf(value: unknown, prefix: Path = [], out: Path[] = []): Path[] {
  out.push(prefix, [...prefix, 'no-such-key'], [...prefix, 999]);
  if (Array.isArray(value))
    for (const [index, item] of value.entries()) pathsOf(item, [...prefix, index], out);
  else if (value !== null && typeof value === 'object')
    for (const [key, item] of Object.entries(value)) pathsOf(item, [...prefix, key], out);
  return out;
}

/** Asserts that the two paths agree on `text`; returns whether the fast path took it. */
function assertSameAsYaml(text: string): boolean {
  const expected = outcome(() => parseYamlDocumentsWithTree(text, 'm.yaml'));
  const actual = outcome(() => parseYamlDocuments(text, 'm.yaml'));
  const context = `text: ${JSON.stringify(text).slice(0, 2000)}`;
  if ('error' in expected) {
    assert.deepEqual(actual, expected, context);
    return false;
  }
  assert.ok('documents' in actual, `${context}\n${JSON.stringify(actual)}`);
  assert.equal(actual.documents.length, expected.documents.length, context);
  expected.documents.forEach((document, index) => {
    const mine = actual.documents[index] as ParsedDocument;
    assert.deepStrictEqual(mine.value, document.value, context);
    for (const field of pathsOf(document.value))
      assert.deepEqual(
        mine.source.locate(field),
        document.source.locate(field),
        `${context} path ${JSON.stringify(field)}`,
      );
  });
  return parseFastYaml(text) !== undefined;
}

function yamlFiles(dir: string): string[] {
  let entries: string[];
  try {
    entries = readdirSync(dir);
  } catch {
    return [];
  }
  return entries.flatMap((entry) => {
    const full = path.join(dir, entry);
    if (statSync(full).isDirectory()) return yamlFiles(full);
    return /\.(ya?ml|json)$/.test(entry) ? [full] : [];
  });
}

test('every YAML fixture and rule example gives the same values and positions on both paths', () => {
  const shared = process.env['CARDHOLD_SHARED_DIR'] ?? path.resolve('..', 'shared');
  const texts = [...yamlFiles('test/fixtures'), ...yamlFiles(path.join(shared, 'fixtures', 'psa'))].map(
    (file) => readFileSync(file, 'utf8'),
  );
  for (const rule of allRules)
    for (const example of [...rule.examples.good, ...rule.examples.bad])
      if (example.format !== 'dockerfile') texts.push(example.text);
  let fast = 0;
  for (const text of texts) if (assertSameAsYaml(text)) fast++;
  assert.ok(texts.length > 100, `only ${texts.length} texts`);
  assert.ok(fast > texts.length / 2, `fast path took ${fast} of ${texts.length}`);
});

test('texts outside plain data take the yaml path and still agree', () => {
  const exotic = [
    'base: &b {app: web}\nother: *b\n',
    'kind: !!str Pod\n',
    '%YAML 1.2\n---\nkind: Pod\n',
    '? [a, b]\n: c\n',
    '- [a: b]\n',
    '\uFEFFkind: Pod\n',
    'kind: Pod\rname: x\n',
    'a: 1\n  b: 2\n',
    'a: [1, 2\n',
  ];
  for (const text of exotic) {
    assert.equal(parseFastYaml(text), undefined, JSON.stringify(text));
    assertSameAsYaml(text);
  }
});

const words = [
  'a',
  'name',
  'app',
  'true',
  'False',
  'null',
  '~',
  '0o17',
  '0x1F',
  '0b1',
  '1e3',
  '.5',
  '-0',
  '+12',
  '012',
  '1_000',
  'yes',
  '1.0',
  '1.',
  '-.inf',
  '.NaN',
  'x y',
  '123456789012345678901234567890',
  '1e400',
  '2024-01-01',
  '8080',
  'registry.example.com/app:1.0',
  '__proto__',
  'toString',
  '<<',
  'a#b',
  'ü',
];

type Scalar = string | { quote: 'single' | 'double' | 'literal' | 'folded'; text: string };
type Tree = Scalar | { seq: Tree[] } | { map: [Scalar, Tree][] };

const scalar: fc.Arbitrary<Scalar> = fc.oneof(
  fc.constantFrom(...words),
  fc.record({
    quote: fc.constantFrom('single' as const, 'double' as const, 'literal' as const, 'folded' as const),
    text: fc.constantFrom('', 'x', 'it\'s "q"', 'two\nlines', ' lead', 'tab\tin', '#hash', 'a: b', '- item'),
  }),
);
const { tree } = fc.letrec<{ tree: Tree }>((tie) => ({
  tree: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    scalar,
    fc.record({ seq: fc.array(tie('tree'), { maxLength: 3 }) }),
    fc.record({ map: fc.array(fc.tuple(scalar, tie('tree')), { maxLength: 3 }) }),
  ),
}));

function isCollection(value: Tree): value is { seq: Tree[] } | { map: [Scalar, Tree][] } {
  return typeof value === 'object' && ('seq' in value || 'map' in value);
}

function renderScalar(value: Scalar, indent: string, inFlow: boolean): string {
  if (typeof value === 'string') return value;
  if (value.quote === 'single') return `'${value.text.replaceAll("'", "''")}'`;
  if (value.quote === 'double' || inFlow) return JSON.stringify(value.text);
  const body = value.text
    .split('\n')
    .map((line) => `${indent}  ${line}`)
    .join('\n');
  return `${value.quote === 'literal' ? '|' : '>-'}\n${body}`;
}

function renderFlow(value: Tree): string {
  if (!isCollection(value)) return renderScalar(value, '', true);
  if ('map' in value)
    return `{${value.map.map(([k, v]) => `${renderFlow(k)}: ${renderFlow(v)}`).join(', ')}}`;
  return `[${value.seq.map(renderFlow).join(', ')}]`;
}

interface Style {
  flow: boolean;
  comment: boolean;
}

function renderValue(value: Tree, indent: string, style: Style, lead: string): string {
  const comment = style.comment ? ' # note' : '';
  if (isCollection(value) && !style.flow && ('map' in value ? value.map : value.seq).length > 0)
    return `${lead}${comment}\n${renderBlock(value, `${indent}  `, style)}`;
  return `${lead} ${isCollection(value) ? renderFlow(value) : renderScalar(value, indent, false)}`;
}

function renderBlock(
  value: { seq: Tree[] } | { map: [Scalar, Tree][] },
  indent: string,
  style: Style,
): string {
  if ('map' in value)
    return value.map
      .map(([k, v]) =>
        renderValue(v, indent, style, `${indent}${typeof k === 'string' ? k : renderFlow(k)}:`),
      )
      .join('\n');
  return value.seq.map((item) => renderValue(item, indent, style, `${indent}-`)).join('\n');
}

const document = fc
  .tuple(
    fc.array(fc.tuple(scalar, tree), { minLength: 1, maxLength: 4 }),
    fc.record({ flow: fc.boolean(), comment: fc.boolean() }),
  )
  .map(([pairs, style]) => renderBlock({ map: pairs }, '', style));

const stream = fc
  .tuple(
    fc.array(document, { minLength: 1, maxLength: 3 }),
    fc.constantFrom('---\n', '\n---\n', '--- # doc\n', '\n...\n---\n'),
    fc.boolean(),
  )
  .map(([documents, separator, crlf]) => {
    const text = `${documents.join(separator)}\n`;
    return crlf ? text.replaceAll('\n', '\r\n') : text;
  });

const mutated = fc
  .tuple(
    stream,
    fc.array(
      fc.tuple(
        fc.nat(),
        fc.constantFrom(
          ' ',
          '\t',
          ':',
          '-',
          '#',
          '"',
          "'",
          '\n',
          '{',
          '}',
          '[',
          ']',
          ',',
          '|',
          '>',
          '?',
          'a',
          '',
        ),
        fc.nat({ max: 3 }),
      ),
      { maxLength: 3 },
    ),
  )
  .map(([text, edits]) =>
    edits.reduce((out, [at, insert, remove]) => {
      const position = at % (out.length + 1);
      return out.slice(0, position) + insert + out.slice(position + remove);
    }, text),
  );

test('generated YAML gives the same values and positions on both paths', () => {
  let fast = 0;
  let total = 0;
  fc.assert(
    fc.property(stream, (text) => {
      total++;
      if (assertSameAsYaml(text)) fast++;
    }),
    { numRuns: 600, seed: 7 },
  );
  // The generator often writes a `<<` key, which goes to the yaml path (a possible merge key).
  assert.ok(fast > total / 3, `fast path took ${fast} of ${total}`);
});

test('mutated YAML gives the same values, positions or error on both paths', () => {
  fc.assert(
    fc.property(mutated, (text) => {
      assertSameAsYaml(text);
    }),
    { numRuns: 1500, seed: 11 },
  );
});
