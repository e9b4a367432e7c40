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

const CVV_VALUE = new RegExp(
  `"(?:cvv|cvc|card_cvv|security_code)"\\s*:\\s*"(?:${Object.values(testCvvs).join('|')})"`,
  'i',
);

/** Scans every file under `dir` for card data: the known test PANs, any Luhn-valid run, and CVV values. */
export async function scanArtifacts(dir: string): Promise<{ files: number; findings: ArtifactFinding[] }> {
  const findings: ArtifactFinding[] = [];
  let files = 0;
  for (const file of await walk(dir)) {
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
      for (const m of findPans(line))
        findings.push({ file, line: i + 1, kind: 'luhn-valid-run', sample: mask(m.digits) });
      if (CVV_VALUE.test(line)) findings.push({ file, line: i + 1, kind: 'cvv-value', sample: '"cvv":"…"' });
    }
  }
  return { files, findings };
}

async function walk(dir: string): Promise<string[]> {
  const out: string[] = [];
  let entries: string[];
  try {
    entries = await readdir(dir);
  } catch {
    return out;
  }
  for (const name of entries) {
    // Database dumps hold hex ciphertext and hashes, whose digit stretches this line-oriented scan (no
    // word boundaries) would take for card numbers; `cardhold discover` scans them in CI instead.
    if (name === 'db-dumps') continue;
    const full = path.join(dir, name);
    if ((await stat(full)).isDirectory()) out.push(...(await walk(full)));
    else out.push(full);
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
