import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { DropwatchError, KernelError, isExpected, oneLine, strerror } from '../../src/errors/index.js';

test('error messages are one printable line whatever they echo', () => {
  const err = new DropwatchError('E_USAGE', 'Unknown lookup method kas\nfake line\r\x1b[2J\u2028');
  assert.equal(err.message, 'Unknown lookup method kas\\nfake line\\r\\x1b[2J\\u2028');
  assert.ok(!/[\x00-\x1f\x7f-\x9f\u2028\u2029]/.test(err.message));
  assert.equal(oneLine('plain text'), 'plain text');
});

// Unicode's control (Cc), format (Cf: bidi overrides and isolates, zero-width marks), separator and lone surrogate
// code points: none may reach a terminal or a log unescaped.
const UNPRINTABLE = /[\p{Cc}\p{Cf}\p{Zl}\p{Zp}\p{Cs}]/u;

test('bidi controls, zero-width marks and lone surrogates are escaped too, not only C0 and C1', () => {
  assert.equal(
    oneLine('a\u202eb\u2066c\u200fd\u061ce\u200bf\ufeffg\u{e0041}h\ud800i'),
    'a\\u202eb\\u2066c\\u200fd\\u061ce\\u200bf\\ufeffg\\u{e0041}h\\ud800i',
  );
  assert.equal(oneLine('é ✓ 😀 日本'), 'é ✓ 😀 日本');
  fc.assert(
    fc.property(fc.string({ unit: 'binary' }), (text) => {
      assert.doesNotMatch(oneLine(text), UNPRINTABLE);
    }),
  );
});

test('kernel errors keep errno and extack; strerror matches glibc', () => {
  const err = new KernelError(16, 'busy', 'Cannot configure drop monitor during monitoring');
  assert.equal(err.code, 'E_KERNEL');
  assert.equal(err.exitCode, 1);
  assert.equal(err.extack, 'Cannot configure drop monitor during monitoring');
  assert.ok(isExpected(err));
  assert.ok(!isExpected(new TypeError('bug')));
  assert.equal(strerror(16), 'Device or resource busy');
  assert.equal(strerror(-11), 'Resource temporarily unavailable');
  assert.equal(strerror(4242), 'Unknown error 4242');
});
