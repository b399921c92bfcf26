// Parses and validates an AsyncAPI document with @asyncapi/parser; exits 1
// on any error-level diagnostic, printing each with its path.
import { readFile } from 'node:fs/promises';
import { Parser, DiagnosticSeverity } from '@asyncapi/parser';

const file = process.argv[2];
if (!file) {
  console.error('usage: node check.mjs FILE');
  process.exit(2);
}
const parser = new Parser();
const { document, diagnostics } = await parser.parse(await readFile(file, 'utf8'), { source: file });
const errors = diagnostics.filter((d) => d.severity === DiagnosticSeverity.Error);
const warnings = diagnostics.filter((d) => d.severity === DiagnosticSeverity.Warning);
for (const d of [...errors, ...warnings]) {
  const level = d.severity === DiagnosticSeverity.Error ? 'error' : 'warning';
  console.error(`${file}: ${level}: ${d.message} (${d.code}) at ${d.path.join('.')}`);
}
if (!document || errors.length > 0) {
  console.error(`${file}: ${errors.length} error(s)`);
  process.exit(1);
}
const channels = document.channels().all().map((c) => c.address());
console.log(`${file}: valid AsyncAPI ${document.version()}: ${channels.length} channels (${channels.join(', ')}), ${warnings.length} warning(s)`);
