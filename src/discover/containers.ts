import { createReadStream } from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import tar from 'tar-stream';
import yauzl from 'yauzl';
import type { DiscoverySink, FindingLocation } from './finding.ts';
import { readError, redactDigitRuns } from './masking.ts';
import { TextScanner } from './text-scan.ts';

export interface ContainerLimits {
  /** Archives inside archives are opened this many levels deep; deeper ones are scanned as raw bytes. */
  maxArchiveDepth: number;
  /** Decompressed bytes allowed per top-level input (zip-bomb bound); beyond it the input is abandoned. */
  maxArchiveBytes: number;
  /** A zip inside another archive is read into memory (zip needs random access) up to this size. */
  maxNestedZipBytes: number;
}

export const defaultContainerLimits: ContainerLimits = {
  maxArchiveDepth: 5,
  maxArchiveBytes: 4 * 1024 ** 3,
  maxNestedZipBytes: 256 * 1024 ** 2,
};

/** The decompressed-bytes budget of one top-level input has run out. */
class ArchiveCapReached extends Error {}

/** One input being scanned: its limits, where it reports, and its shared decompression budget. */
interface InputScan {
  limits: ContainerLimits;
  sink: DiscoverySink;
  decompressed: number;
  location: (name: string) => FindingLocation;
}

const readChunk = 1024 * 1024;

/**
 * Scans one file, archives included (gzip, tar, zip, nested), with what it finds reported under
 * `displayName` (members as `displayName!member`).
 */
export async function scanFile(
  filePath: string,
  displayName: string,
  limits: ContainerLimits,
  sink: DiscoverySink,
): Promise<void> {
  const input = inputScan(limits, sink, (name) => ({ source: 'file', path: redactDigitRuns(name) }));
  await guarded(input, displayName, () =>
    scanContent(createReadStream(filePath, { highWaterMark: readChunk }), displayName, 0, input, filePath),
  );
}

/** Scans standard input (or any stream) like a file named `-`. */
export async function scanStdin(
  stream: AsyncIterable<Buffer>,
  limits: ContainerLimits,
  sink: DiscoverySink,
): Promise<void> {
  const input = inputScan(limits, sink, (name) =>
    name === '-' ? { source: 'stdin', path: '-' } : { source: 'file', path: redactDigitRuns(name) },
  );
  await guarded(input, '-', () => scanContent(stream, '-', 0, input, undefined));
}

function inputScan(limits: ContainerLimits, sink: DiscoverySink, location: InputScan['location']): InputScan {
  return { limits, sink, decompressed: 0, location };
}

async function guarded(input: InputScan, name: string, run: () => Promise<void>): Promise<void> {
  try {
    await run();
  } catch (error) {
    if (error instanceof ArchiveCapReached) {
      input.sink.warning({
        source: redactDigitRuns(name),
        message: `decompressed more than ${input.limits.maxArchiveBytes} bytes (zip-bomb cap); the rest of this input was not scanned`,
      });
    } else input.sink.error({ source: redactDigitRuns(name), message: readError(error) });
  }
}

type Kind = 'gzip' | 'zip' | 'tar' | 'text';

function kindOf(head: Buffer): Kind {
  if (head.length >= 2 && head[0] === 0x1f && head[1] === 0x8b) return 'gzip';
  if (head.length >= 4 && head.readUInt32LE(0) === 0x04034b50) return 'zip';
  if (head.length >= 4 && head.readUInt32LE(0) === 0x06054b50) return 'zip'; // empty archive
  if (looksLikeTar(head)) return 'tar';
  return 'text';
}

/** A tar header: its checksum (sum of the 512 header bytes, the checksum field read as spaces) matches. */
function looksLikeTar(head: Buffer): boolean {
  if (head.length < 512) return false;
  const field = head
    .subarray(148, 156)
    .toString('latin1')
    .replace(/[\0 ]+$/, '')
    .trim();
  if (!/^[0-7]{1,7}$/.test(field)) return false;
  let sum = 0;
  for (let i = 0; i < 512; i++) sum += i >= 148 && i < 156 ? 32 : (head[i] as number);
  return sum === Number.parseInt(field, 8);
}

/**
 * Reads the first bytes, decides what the content is, and scans it: archives open recursively (depth
 * permitting), everything else is text. `filePath` is set for a file on disk, which a zip reads directly.
 */
async function scanContent(
  source: AsyncIterable<Buffer>,
  name: string,
  depth: number,
  input: InputScan,
  filePath: string | undefined,
): Promise<void> {
  const iterator = source[Symbol.asyncIterator]();
  const headChunks: Buffer[] = [];
  let headLength = 0;
  let exhausted = false;
  while (headLength < 512) {
    const next = await iterator.next();
    if (next.done) {
      exhausted = true;
      break;
    }
    headChunks.push(next.value);
    headLength += next.value.length;
  }
  const head = Buffer.concat(headChunks);
  const whole = (async function* () {
    if (head.length > 0) yield head;
    if (exhausted) return;
    for (let next = await iterator.next(); !next.done; next = await iterator.next()) yield next.value;
  })();
  const kind = kindOf(head);
  if (kind !== 'text' && depth >= input.limits.maxArchiveDepth) {
    input.sink.warning({
      source: redactDigitRuns(name),
      message: `archive nested deeper than ${input.limits.maxArchiveDepth} levels: not opened, scanned as raw bytes`,
    });
    return scanText(whole, name, input);
  }
  switch (kind) {
    case 'gzip':
      return scanGzip(whole, name, depth, input);
    case 'tar':
      return scanTar(whole, name, depth, input);
    case 'zip':
      if (filePath) return scanZip(await yauzl.openPromise(filePath, zipOptions), name, depth, input);
      return scanZip(
        await yauzl.fromBufferPromise(await buffered(whole, name, input), zipOptions),
        name,
        depth,
        input,
      );
    case 'text':
      return scanText(whole, name, input);
  }
}

async function scanText(source: AsyncIterable<Buffer>, name: string, input: InputScan): Promise<void> {
  const scanner = new TextScanner(input.location(name), input.sink);
  for await (const chunk of source) scanner.push(chunk);
  scanner.end();
}

/** Counts decompressed bytes against the input's budget, stopping the stream when it runs out. */
async function* budgeted(source: AsyncIterable<Buffer>, input: InputScan): AsyncGenerator<Buffer> {
  for await (const chunk of source) {
    input.decompressed += chunk.length;
    if (input.decompressed > input.limits.maxArchiveBytes) throw new ArchiveCapReached();
    yield chunk;
  }
}

async function scanGzip(
  source: AsyncIterable<Buffer>,
  name: string,
  depth: number,
  input: InputScan,
): Promise<void> {
  const gunzip = createGunzip({ chunkSize: 256 * 1024 });
  const feeding = pipeline(Readable.from(source), gunzip);
  const base = path.posix.basename(name.split('!').at(-1) ?? name);
  const innerName = base.endsWith('.tgz')
    ? `${base.slice(0, -4)}.tar`
    : base.replace(/\.gz$/i, '') || 'content';
  try {
    await scanContent(budgeted(gunzip, input), `${name}!${innerName}`, depth + 1, input, undefined);
  } finally {
    gunzip.destroy();
    await feeding.catch(() => {});
  }
}

async function scanTar(
  source: AsyncIterable<Buffer>,
  name: string,
  depth: number,
  input: InputScan,
): Promise<void> {
  const extract = tar.extract();
  const feeding = pipeline(Readable.from(source), extract);
  let failed: unknown;
  feeding.catch((error: unknown) => {
    failed = error;
  });
  try {
    for await (const entry of extract) {
      const memberName = `${name}!${entry.header.name}`;
      if (entry.header.type === 'file' || entry.header.type === 'contiguous-file') {
        await scanMember(budgeted(entry as AsyncIterable<Buffer>, input), memberName, depth, input);
      }
      entry.resume();
    }
  } finally {
    extract.destroy();
  }
  await feeding.catch(() => {});
  if (failed) throw failed;
}

/** A member's own read errors are reported and the archive goes on; the zip-bomb cap stops everything. */
async function scanMember(
  source: AsyncIterable<Buffer>,
  name: string,
  depth: number,
  input: InputScan,
): Promise<void> {
  try {
    await scanContent(source, name, depth + 1, input, undefined);
  } catch (error) {
    if (error instanceof ArchiveCapReached) throw error;
    input.sink.error({ source: redactDigitRuns(name), message: readError(error) });
  }
}

const zipOptions = { lazyEntries: true, autoClose: true, validateEntrySizes: true } as const;

async function scanZip(zip: yauzl.ZipFile, name: string, depth: number, input: InputScan): Promise<void> {
  try {
    for (;;) {
      const entry = await new Promise<yauzl.Entry | undefined>((resolve, reject) => {
        const onEntry = (e: yauzl.Entry) => done(() => resolve(e));
        const onEnd = () => done(() => resolve(undefined));
        const onError = (error: Error) => done(() => reject(error));
        const done = (then: () => void) => {
          zip.off('entry', onEntry).off('end', onEnd).off('error', onError);
          then();
        };
        zip.on('entry', onEntry).on('end', onEnd).on('error', onError);
        zip.readEntry();
      });
      if (!entry) return;
      const memberName = `${name}!${entry.fileName}`;
      if (entry.fileName.endsWith('/')) continue;
      if (entry.isEncrypted()) {
        input.sink.warning({
          source: redactDigitRuns(memberName),
          message: 'encrypted zip member: not scanned',
        });
        continue;
      }
      if (input.decompressed + entry.uncompressedSize > input.limits.maxArchiveBytes)
        throw new ArchiveCapReached();
      let stream: Readable;
      try {
        stream = await zip.openReadStreamPromise(entry);
      } catch (error) {
        input.sink.error({ source: redactDigitRuns(memberName), message: readError(error) });
        continue;
      }
      try {
        await scanMember(budgeted(stream, input), memberName, depth, input);
      } finally {
        stream.destroy();
      }
    }
  } finally {
    zip.close();
  }
}

/** A nested zip in memory, bounded: zip's directory is at its end, so it cannot be streamed. */
async function buffered(source: AsyncIterable<Buffer>, name: string, input: InputScan): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let length = 0;
  for await (const chunk of source) {
    length += chunk.length;
    if (length > input.limits.maxNestedZipBytes) {
      throw new Error(
        `nested zip larger than ${input.limits.maxNestedZipBytes} bytes: not opened (${redactDigitRuns(path.posix.basename(name))})`,
      );
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}
