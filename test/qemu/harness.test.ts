// The harness's own unit checks. Its boot check (the guest comes up with drop_monitor loaded and Debian's dropwatch
// counts exactly the 100 drops we make at __udp4_lib_rcv, with the PC of the fixtures) runs in the netdm session's
// boot (test/netdm/qemu.int.test.ts, "guest boots with drop_monitor ..."), which makes the same run anyway: a boot of its
// own cost about 10 s of TCG.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildCpio } from './harness.js';

test('newc writer emits parents, aligned entries and a trailer', () => {
  const b = buildCpio(new Map([['a/b', Buffer.from('xyz')]]));
  const text = b.toString('latin1');
  assert.ok(text.startsWith('070701'));
  assert.equal(b.length % 4, 0);
  assert.ok(text.includes('a\0') && text.includes('a/b\0') && text.includes('TRAILER!!!\0'));
});
