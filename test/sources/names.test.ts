// Only a backend's own folder, the backend interface, the source table and dwdump may name a backend in a string:
// everything else words what a source cannot do from its capabilities, so a new source makes no message wrong.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import ts from 'typescript';
import { projectRoot as repoRoot } from '../helpers/paths.js';

const SRC = join(repoRoot, 'src');
const NAMES = /\b(tracefs|NET_DM|netdm|bpf)\b/;
const ALLOWED = [/^netdm\//, /^tracefs\//, /^bpf\//, /^dwdump\//, /^sources\//, /^backend\/types\.ts$/];

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? sourceFiles(path) : path.endsWith('.ts') ? [path] : [];
  });
}

/** Every string and template literal's text in a file, with its line. */
function literals(path: string): { line: number; text: string }[] {
  const file = ts.createSourceFile(path, readFileSync(path, 'utf8'), ts.ScriptTarget.Latest, true);
  const found: { line: number; text: string }[] = [];
  const visit = (node: ts.Node): void => {
    if (ts.isStringLiteralLike(node) || ts.isTemplateLiteralToken(node)) {
      // Module specifiers name files, not backends.
      if (
        !ts.isImportDeclaration(node.parent) &&
        !ts.isExportDeclaration(node.parent) &&
        !ts.isImportTypeNode(node.parent.parent)
      )
        found.push({ line: file.getLineAndCharacterOfPosition(node.getStart()).line + 1, text: node.text });
    }
    ts.forEachChild(node, visit);
  };
  visit(file);
  return found;
}

test('no string outside a backend, the backend interface, the source table and dwdump names a backend', () => {
  const offenders: string[] = [];
  for (const path of sourceFiles(SRC)) {
    const rel = relative(SRC, path);
    if (ALLOWED.some((a) => a.test(rel))) continue;
    for (const { line, text } of literals(path)) if (NAMES.test(text)) offenders.push(`src/${rel}:${line}: ${text}`);
  }
  assert.deepEqual(offenders, []);
});

test('the check sees a backend named in a string (it can fail)', () => {
  const file = join(repoRoot, 'test', 'sources', 'names.test.ts');
  assert.ok(literals(file).some((l) => NAMES.test(l.text) && l.text.includes('bpf')));
});
