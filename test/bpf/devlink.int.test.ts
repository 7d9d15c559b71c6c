// `set hw true` on the bpf source against this machine's kernel, through the built CLI: where the kernel has no devlink
// (its BTF has no devlink:devlink_trap_report) it is refused in one line, `help` says so, and the prompt goes on;
// where it has, it is taken. The qemu guest (test/bpf/hardware.int.test.ts) checks the drops.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { canRunKernelTests } from '../helpers/kernel.js';
import { runCli } from '../helpers/cli.js';

const skip = canRunKernelTests();

/** Whether the running kernel has the tracepoint, as libbpf finds a tp_btf target: btf_trace_<name> in its BTF. */
function kernelHasDevlink(): boolean {
  return readFileSync('/sys/kernel/btf/vmlinux').includes('btf_trace_devlink_trap_report\0');
}

test('set hw true on bpf: one line where the kernel has no devlink, taken where it has', { skip }, async () => {
  const done = await runCli(['-b', 'bpf', '-l', 'none'], 'help\nset hw true\nset alertlimit 1\nexit\n');
  assert.equal(done.code, 0, done.stderr);
  assert.doesNotMatch(done.stderr, /\n\s+at /, 'no stack trace');
  if (kernelHasDevlink()) {
    assert.match(done.stdout, /^setting hardware drops monitoring to 1$/m);
    assert.doesNotMatch(done.stdout + done.stderr, /no devlink/);
  } else {
    assert.match(
      done.stderr,
      /^this kernel has no devlink \(no devlink:devlink_trap_report tracepoint\), so the bpf backend sees no hardware drops$/m,
    );
    assert.match(
      done.stdout,
      /^This kernel has no devlink \(devlink:devlink_trap_report\): this backend sees software drops only\.$/m,
    );
    assert.doesNotMatch(done.stdout, /setting hardware drops monitoring to 1/);
  }
  assert.match(done.stdout, /^setting alert capture limit to 1$/m, 'the prompt went on');
});
