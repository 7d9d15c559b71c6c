// Boots the NET_DM guest and checks the reference tool there: Debian's dropwatch must see exactly
// the drops we make (one NO_SOCKET drop per datagram to a closed UDP port on the guest loopback).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { guestUnavailable, runInGuest, buildCpio, projectRoot } from './harness.js';

test('newc writer emits parents, aligned entries and a trailer', () => {
  const b = buildCpio(new Map([['a/b', Buffer.from('xyz')]]));
  const text = b.toString('latin1');
  assert.ok(text.startsWith('070701'));
  assert.equal(b.length % 4, 0);
  assert.ok(text.includes('a\0') && text.includes('a/b\0') && text.includes('TRAILER!!!\0'));
});

test('guest boots with drop_monitor and Debian dropwatch counts 100 drops', async (t) => {
  const why = await guestUnavailable();
  if (why !== null) {
    t.skip(why);
    return;
  }
  // busybox has no UDP sender that exits by itself; node's dgram is in the image anyway.
  const script = `
grep -q '^drop_monitor ' /proc/modules && echo MODULE=loaded
cat > /tmp/send.mjs <<'JS'
import dgram from 'node:dgram';
const s = dgram.createSocket('udp4');
for (let i = 0; i < 100; i++) await new Promise((r) => s.send('x', 9, '127.0.0.1', r));
s.close();
JS
# With alertlimit 1 dropwatch stops after the first alert, goes back to its prompt, reads EOF and
# exits, so it needs no signal. The sender waits until dropwatch has surely activated.
printf 'set alertlimit 1\\nstart\\n' | timeout 60 dropwatch -l kas > /tmp/dw.txt 2>&1 &
dw=$!
sleep 2
node /tmp/send.mjs
wait $dw
echo DROPWATCH_RC=$?
cat /tmp/dw.txt
grep ' __udp4_lib_rcv$' /proc/kallsyms
`;
  const r = await runInGuest(script, { timeoutMs: 120_000 });
  t.diagnostic(`guest run took ${r.durationMs} ms (kernel ${r.kernelRelease})`);
  assert.equal(r.moduleLoaded, true, r.moduleError ?? '');
  assert.match(r.stdout, /^MODULE=loaded$/m);
  const line = /^100 drops at __udp4_lib_rcv\+([0-9a-f]+) \(0x([0-9a-f]+)\) \[software\]$/m.exec(r.stdout);
  assert.ok(line, r.stdout);
  // dropwatch's symbol+offset must agree with the guest's own kallsyms.
  const sym = /^([0-9a-f]+) T __udp4_lib_rcv$/m.exec(r.stdout);
  assert.ok(sym, 'no __udp4_lib_rcv in /proc/kallsyms');
  assert.equal(BigInt(`0x${line[2]!}`) - BigInt(`0x${sym[1]!}`), BigInt(`0x${line[1]!}`));

  // The fixtures were captured on this kernel with nokaslr: the same PC must come back, or the
  // fixtures no longer describe the kernel the harness boots (Debian replaced the package).
  const manifest = JSON.parse(readFileSync(join(projectRoot, 'test/fixtures/netdm/manifest.json'), 'utf8')) as {
    kernel: { release: string };
  };
  const expected = readFileSync(join(projectRoot, 'test/fixtures/netdm/dropwatch-summary.txt'), 'utf8');
  if (manifest.kernel.release === r.kernelRelease) {
    assert.ok(expected.includes(line[0]), `fixture dropwatch-summary.txt has no line "${line[0]}"`);
  } else {
    t.diagnostic(`fixtures are from ${manifest.kernel.release}, guest runs ${r.kernelRelease}: PC not compared`);
  }
});
