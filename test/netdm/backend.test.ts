// Host-side NetdmBackend checks: this host's kernel has no NET_DM, so opening must say so the way dropwatch does.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { DropwatchError } from '../../src/errors/index.js';
import { openNetdmBackend, NETDM_MISSING_MESSAGE } from '../../src/netdm/index.js';
import { openBackend } from '../../src/cli/backend.js';
import { loadNative } from '../../src/netlink/index.js';

function hostHasNetdm(): boolean {
  return existsSync('/sys/module/drop_monitor');
}

test("open on a kernel without NET_DM: E_NETDM_MISSING with dropwatch's sentence; auto falls back", async (t) => {
  try {
    loadNative();
  } catch (e) {
    t.skip(`netlink addon not built: ${(e as Error).message}`);
    return;
  }
  if (hostHasNetdm()) {
    t.skip('this host has NET_DM (the qemu tests cover it)');
    return;
  }
  await assert.rejects(openNetdmBackend(), (e: unknown) => {
    assert.ok(e instanceof DropwatchError);
    assert.equal(e.code, 'E_NETDM_MISSING');
    assert.equal(e.message, NETDM_MISSING_MESSAGE);
    assert.equal(e.message, "Unable to find NET_DM family, dropwatch can't work");
    return true;
  });
  await assert.rejects(openBackend('netdm', { notice: () => undefined }), { code: 'E_NETDM_MISSING' });
});
