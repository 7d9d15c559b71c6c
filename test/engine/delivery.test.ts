// Delivery: packet blocks are batched into writes that keep their order and say which drops each carries, and a flood
// goes out in writes small enough to stay out of V8's large-object space.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Delivery, WRITE_CHARS } from '../../src/engine/delivery.js';
import type { Reported } from '../../src/engine/types.js';

function recordingOutput() {
  const writes: { text: string; reported?: Reported }[] = [];
  return {
    writes,
    output: {
      data: (text: string, reported?: Reported) => writes.push({ text, reported }),
      message: () => {},
      error: () => {},
    },
  };
}

test('a flood of packet blocks goes out in writes of at most WRITE_CHARS (or one block), in order, each drop once', async () => {
  const { writes, output } = recordingOutput();
  const delivery = new Delivery(output, undefined);
  const blocks = Array.from({ length: 3000 }, (_, i) => `drop at: block ${i}\n${'x'.repeat(300)}\n`);
  for (const block of blocks) delivery.packet(block);
  await Promise.resolve();
  assert.ok(writes.length > 1);
  for (const w of writes) assert.ok(w.text.length <= WRITE_CHARS || w.reported?.drops === 1, `${w.text.length} chars`);
  assert.equal(writes.map((w) => w.text).join('\n'), blocks.join('\n'));
  assert.equal(
    writes.reduce((n, w) => n + (w.reported?.drops ?? 0), 0),
    blocks.length,
  );
  // Where each drop's text ends, within its own write.
  for (const w of writes) {
    assert.equal(w.reported?.ends?.length, w.reported?.drops);
    assert.equal(w.reported?.ends?.at(-1), w.text.length);
  }
});
