import { CardNumberDetector, type Detection } from './detector.ts';
import type { DiscoverySink, FindingLocation } from './finding.ts';
import { detectEncoding, encodingSampleSize, type TextEncoding, Utf16Narrower } from './text-encoding.ts';

/**
 * Scans one stream of content as text: the first 4 KiB decide the encoding (UTF-16 by BOM or NUL
 * pattern, else bytes), then every chunk goes through the detector, narrowed first if UTF-16.
 */
export class TextScanner {
  private readonly location: FindingLocation;
  private readonly sink: DiscoverySink;
  private readonly detector: CardNumberDetector;
  private head: Buffer[] | undefined = [];
  private headLength = 0;
  private encoding: TextEncoding = 'utf-8';
  private narrower: Utf16Narrower | undefined;

  constructor(location: FindingLocation, sink: DiscoverySink) {
    this.location = location;
    this.sink = sink;
    this.detector = new CardNumberDetector((d) => this.report(d));
  }

  push(chunk: Buffer): void {
    this.sink.scanned(chunk.length);
    if (this.head) {
      this.head.push(chunk);
      this.headLength += chunk.length;
      if (this.headLength >= encodingSampleSize) this.startBody();
      return;
    }
    this.feed(chunk);
  }

  end(): void {
    if (this.head) this.startBody();
    this.detector.end();
  }

  private startBody(): void {
    const head = this.head?.length === 1 ? (this.head[0] as Buffer) : Buffer.concat(this.head ?? []);
    this.head = undefined;
    const { encoding, bom } = detectEncoding(head);
    this.encoding = encoding;
    if (encoding !== 'utf-8') this.narrower = new Utf16Narrower(encoding);
    this.feed(bom > 0 ? head.subarray(bom) : head);
  }

  private feed(chunk: Buffer): void {
    this.detector.push(this.narrower ? this.narrower.narrow(chunk) : chunk);
  }

  private report(d: Detection): void {
    this.sink.finding({
      ...this.location,
      line: d.line,
      column: d.column,
      brand: d.brand,
      length: d.length,
      masked: d.masked,
      confidence: d.confidence,
      test_card: d.testCard,
      encoding: this.encoding,
      separated: d.separated,
      json_escaped: d.escaped,
    });
  }
}

/** Scans one complete value (a database field, a Redis value). */
export function scanValue(value: Buffer, location: FindingLocation, sink: DiscoverySink): void {
  const scanner = new TextScanner(location, sink);
  scanner.push(value);
  scanner.end();
}
