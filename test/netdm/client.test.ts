// Host-side NetdmClient checks: the refusal shape both tools print from, and the missing-family error (this host's
// kernel has no NET_DM). Requests, listening and loss accounting need the kernel: test/netdm/qemu.test.ts and
// test/dwdump/qemu.test.ts drive them through the backend and dwdump.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { DropwatchError, KernelError } from '../../src/errors/index.js';
import { ALREADY_MONITORING_HINT, NetdmRefusal, openNetdmClient } from '../../src/netdm/index.js';
import { loadNative } from '../../src/netlink/index.js';

test('a refusal with a hint names the request and appends the hint to the kernel text', () => {
  const kernel = new KernelError(11, 'Resource temporarily unavailable', 'drop_monitor: Trace state already set');
  const r = new NetdmRefusal('start', kernel, ALREADY_MONITORING_HINT);
  assert.ok(r instanceof KernelError);
  assert.equal(r.errno, 11);
  assert.equal(r.message, 'NET_DM start: Resource temporarily unavailable');
  assert.equal(r.extack, `drop_monitor: Trace state already set; ${ALREADY_MONITORING_HINT}`);
  assert.equal(r.kernelText, 'drop_monitor: Trace state already set');
  assert.equal(r.hint, ALREADY_MONITORING_HINT);
  // Without kernel text the hint stands alone.
  assert.equal(new NetdmRefusal('config', new KernelError(1, 'Operation not permitted'), 'h').extack, 'h');
});

test("a refusal without a hint is the kernel's error unchanged", () => {
  const kernel = new KernelError(16, 'Device or resource busy', 'drop_monitor: Cannot configure drop monitor');
  const r = new NetdmRefusal('config', kernel, undefined);
  assert.equal(r.message, 'Device or resource busy');
  assert.equal(r.extack, 'drop_monitor: Cannot configure drop monitor');
  assert.equal(r.hint, undefined);
});

test("open on a kernel without NET_DM: E_NETDM_MISSING in the caller's words", async (t) => {
  try {
    loadNative();
  } catch (e) {
    t.skip(`netlink addon not built: ${(e as Error).message}`);
    return;
  }
  if (existsSync('/sys/module/drop_monitor')) {
    t.skip('this host has NET_DM (the qemu tests cover it)');
    return;
  }
  await assert.rejects(openNetdmClient({ missingMessage: 'no NET_DM here' }), (e: unknown) => {
    assert.ok(e instanceof DropwatchError);
    assert.equal(e.code, 'E_NETDM_MISSING');
    assert.equal(e.message, 'no NET_DM here');
    return true;
  });
});
