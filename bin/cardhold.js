#!/usr/bin/env node
// Plain JavaScript so that it runs on any Node.js and can refuse the ones cardhold does not support.
const [major, minor] = process.versions.node.split('.').map(Number);
if (major < 22 || (major === 22 && minor < 18)) {
  process.stderr.write(
    `cardhold needs Node.js 24 LTS (22.18 or later is supported); this is ${process.versions.node}.\n` +
      'Node.js 20 and older are end of life and must not run a PCI system. See the README for installing Node.js 24.\n',
  );
  process.exit(1);
}
// Node.js runs the TypeScript sources directly (type stripping, on by default since 22.18 and 23.6).
// `cardhold scan` loads only the scanner (src/cli/scan-main.ts), not the whole platform.
await import(process.argv[2] === 'scan' ? '../src/cli/scan-main.ts' : '../src/cli/main.ts');
