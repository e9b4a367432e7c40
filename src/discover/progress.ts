/**
 * A one-line progress indicator on a terminal: counts and speed only, never a path or a value, so it
 * cannot show card data. It redraws a few times a second and clears itself at the end.
 */
export class Progress {
  private readonly stream: NodeJS.WriteStream;
  private readonly started = Date.now();
  private timer: NodeJS.Timeout | undefined;
  bytes = 0;
  inputs = 0;
  findings = 0;

  constructor(stream: NodeJS.WriteStream) {
    this.stream = stream;
    if (stream.isTTY) {
      this.timer = setInterval(() => this.draw(), 250);
      this.timer.unref();
    }
  }

  private draw(): void {
    const seconds = (Date.now() - this.started) / 1000;
    const mb = this.bytes / 1e6;
    this.stream.write(
      `\r\x1b[2Kcardhold discover: ${this.inputs} inputs, ${mb.toFixed(1)} MB (${(mb / Math.max(seconds, 0.001)).toFixed(0)} MB/s), ${this.findings} found`,
    );
  }

  stop(): void {
    if (!this.timer) return;
    clearInterval(this.timer);
    this.timer = undefined;
    this.stream.write('\r\x1b[2K');
  }
}
