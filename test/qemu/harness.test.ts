// The harness's own unit checks. Its boot check (the guest comes up with drop_monitor loaded and Debian's dropwatch
// counts exactly the 100 drops we make at __udp4_lib_rcv, with the PC of the fixtures) runs in the netdm session's
// boot (test/netdm/qemu.int.test.ts, "guest boots with drop_monitor ..."), which makes the same run anyway: a boot of its
// own cost about 10 s of TCG.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildCpio, parseSessions } from './harness.js';

test('newc writer emits parents, aligned entries and a trailer', () => {
  const b = buildCpio(new Map([['a/b', Buffer.from('xyz')]]));
  const text = b.toString('latin1');
  assert.ok(text.startsWith('070701'));
  assert.equal(b.length % 4, 0);
  assert.ok(text.includes('a\0') && text.includes('a/b\0') && text.includes('TRAILER!!!\0'));
});

test('a shared boot splits into its sessions: stdout, stderr, exit codes, timeouts, unfinished ones', () => {
  const out =
    '@@DWQ-BEGIN@@\n@@DWQ-SESSION 1@@\none\n@@DWQ-SESSION-END 1 rc=0 timeout=0 up=5.10 9.20@@\n' +
    'late\n@@DWQ-SESSION 2@@\nno newline@@DWQ-SESSION-END 2 rc=137 timeout=1 up=9.50 20.00@@\n' +
    '@@DWQ-SESSION 3@@\nhalf';
  const err = '@@DWQ-MODULE drop_monitor ok@@\n@@DWQ-SESSION 1@@\nwarn\n@@DWQ-SESSION 2@@\n@@DWQ-MODULE x@@\n';
  const [a, b, c, d] = parseSessions(out, err, 4);
  assert.deepEqual(a, {
    stdout: 'one\n',
    stderr: '@@DWQ-MODULE drop_monitor ok@@\nwarn\n',
    exitCode: 0,
    timedOut: false,
    uptimeS: [5.1, 9.2],
  });
  assert.equal(b?.stdout, 'no newline');
  assert.equal(b?.stderr, '@@DWQ-MODULE x@@\n');
  assert.equal(b?.exitCode, 137);
  assert.equal(b?.timedOut, true);
  assert.deepEqual(c, { stdout: 'half', stderr: '', timedOut: false });
  assert.deepEqual(d, { stderr: '', timedOut: false });
});
