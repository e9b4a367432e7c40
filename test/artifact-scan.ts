import { readdir, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { findPans } from '../src/shared/pan-detect.ts';
import { allTestPans, testCvvs } from './fixtures/cards.ts';

export interface ArtifactFinding {
  file: string;
  line: number;
  kind: 'test-pan' | 'luhn-valid-run' | 'cvv-value';
  /** Masked: first 6 and last 4 at most, never the whole number. */
  sample: string;
}

/**
 * A test CVV after a CVV-like key, in any of the shapes a leak takes: JSON ("cvc":"739", "cvc":739), JSON
 * inside a JSON string (\"cvc\":\"739\", at any depth of escaping), form encoding (cvc=739), XML
 * (<cvc>739</cvc>) and log fields (cvc: 739). The value must end there: 7391 is not 739.
 */
const CVV_VALUE = new RegExp(
  `(?:cvv2?|cvc2?|card_cvv|cid|security_?code|card_?verification_?value)(?:\\\\*"|')?\\s*(?:[:=>]|&quot;:)\\s*(?:\\\\*"|')?(?:${Object.values(
    testCvvs,
  ).join('|')})(?![0-9])`,
  'i',
);

/**
 * Scans every file under `dir` for card data: the known test PANs, any Luhn-valid run, and CVV values.
 * Database dumps (`db-dumps/`) are searched for the known test PANs and CVV values only: their hex
 * ciphertext and hashes hold digit stretches that the Luhn-run rule would take for card numbers, and
 * `cardhold discover` (CI) looks for card numbers there with word boundaries.
 */
export async function scanArtifacts(dir: string): Promise<{ files: number; findings: ArtifactFinding[] }> {
  const findings: ArtifactFinding[] = [];
  let files = 0;
  for (const { file, dump } of await walk(dir)) {
    files++;
    const bytes = await readFile(file);
    if (isBinary(bytes)) {
      findings.push(...scanBinary(file, bytes));
      continue;
    }
    const text = bytes.toString('utf8');
    const lines = text.split('\n');
    for (const [i, line] of lines.entries()) {
      const digitsOnly = line.replace(/[ -]/g, '');
      for (const pan of allTestPans) {
        if (digitsOnly.includes(pan))
          findings.push({ file, line: i + 1, kind: 'test-pan', sample: mask(pan) });
      }
      if (!dump) {
        for (const m of findPans(line))
          findings.push({ file, line: i + 1, kind: 'luhn-valid-run', sample: mask(m.digits) });
      }
      if (CVV_VALUE.test(line)) findings.push({ file, line: i + 1, kind: 'cvv-value', sample: '"cvv":"…"' });
    }
  }
  return { files, findings };
}

async function walk(dir: string, dump = false): Promise<{ file: string; dump: boolean }[]> {
  const out: { file: string; dump: boolean }[] = [];
  let entries: string[];
  try {
    entries = await readdir(dir);
  } catch {
    return out;
  }
  for (const name of entries) {
    const full = path.join(dir, name);
    if ((await stat(full)).isDirectory()) out.push(...(await walk(full, dump || name === 'db-dumps')));
    else out.push({ file: full, dump });
  }
  return out;
}

/** A NUL byte in the first 8 KiB, as git and grep decide: screenshots (PNG), archives, dumps in binary. */
const isBinary = (bytes: Buffer) => bytes.subarray(0, 8192).includes(0);

/**
 * Binary files have no lines, and their compressed or random bytes hold digit runs by chance, so the
 * Luhn-run rule would only raise noise there. They are searched instead for every known test card as
 * ASCII/UTF-8 and as UTF-16 text (line 0: no lines). A PNG screenshot's pixels are not text; a test that
 * wants to prove a card is absent from what a user saw checks the page's DOM, not its picture.
 */
function scanBinary(file: string, bytes: Buffer): ArtifactFinding[] {
  const found: ArtifactFinding[] = [];
  for (const pan of allTestPans) {
    if (bytes.includes(Buffer.from(pan, 'latin1')) || bytes.includes(Buffer.from(pan, 'utf16le')))
      found.push({ file, line: 0, kind: 'test-pan', sample: mask(pan) });
  }
  return found;
}

const mask = (digits: string) => `${digits.slice(0, 6)}…${digits.slice(-4)}`;
