// A libbpf failure worded as one line naming the cause and the fallback; with a short why for auto's notice.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { bpfError, memoryCgroup } from '../../src/bpf/errors.js';

const fail = (stage: string, errno: number, log = '', memcg: string | null = null) =>
  bpfError({ stage, errno, log, message: 'x' }, { memoryCgroup: memcg });

// As libbpf 1.1 logs a map the memory cgroup's limit refused (captured on 6.18).
const MEMCG_LOG =
  'libbpf: Error in bpf_create_map_xattr(active.inner):Cannot allocate memory(-12). Retrying without BTF.\n' +
  "libbpf: map 'active': failed to create inner map: -12\n" +
  "libbpf: map 'active': failed to create: Cannot allocate memory(-12)\n" +
  "libbpf: failed to load object 'dropwatch'\n";
// As libbpf logs a map RLIMIT_MEMLOCK refused on a kernel before 5.11, for root.
const MEMLOCK_LOG =
  "libbpf: map 'counts0': failed to create: Operation not permitted(-1)\n" +
  "libbpf: permission error while running as root; try raising 'ulimit -l'? current value: 8192 kB\n";

test("a map the memory cgroup's limit refused: the cgroup named, its limit the cause, -b tracefs", () => {
  const err = fail('load', 12, MEMCG_LOG, '/system.slice/app.service');
  assert.equal(
    err.message,
    "the kernel would not create dropwatch's BPF maps (Cannot allocate memory): since Linux 5.11 they count against " +
      "the memory limit of this process's memory cgroup (/system.slice/app.service), which leaves too little room; " +
      'raise that limit or use -b tracefs',
  );
  assert.equal(err.code, 'E_BPF_MISSING');
  assert.equal(err.why, 'the memory limit of its memory cgroup leaves no room for its maps');
  assert.match(fail('load', 12, MEMCG_LOG).message, /this process's memory cgroup, which leaves too little room;/);
});

test('a map RLIMIT_MEMLOCK refused (before Linux 5.11): the limit and its value named, not privileges', () => {
  const err = fail('load', 1, MEMLOCK_LOG);
  assert.equal(
    err.message,
    "the kernel would not create dropwatch's BPF maps (Operation not permitted): before Linux 5.11 they count " +
      'against the locked-memory limit (ulimit -l, RLIMIT_MEMLOCK: 8192 kB), which is too low; raise it or use -b tracefs',
  );
  assert.equal(err.why, 'the locked-memory limit (ulimit -l) leaves no room for its maps');
});

test("each failure has a short why for auto's notice", () => {
  assert.equal(fail('load', 1).why, 'no privilege to load BPF programs (CAP_BPF, CAP_PERFMON)');
  assert.equal(fail('btf', 2).why, 'no usable BTF');
  assert.equal(fail('open', 22).why, 'its BPF object is corrupt');
  assert.equal(fail('attach', 2).why, 'no BPF attachment to skb:kfree_skb');
});

test("the memory cgroup from /proc/self/cgroup: v1's memory line, else v2's unified one", () => {
  const v1 = '12:pids:/user.slice\n7:memory:/dwtest-memcg-1\n0::/user.slice/session-1.scope\n';
  assert.equal(memoryCgroup(v1), '/dwtest-memcg-1');
  assert.equal(memoryCgroup('0::/system.slice/app.service\n'), '/system.slice/app.service');
  assert.equal(memoryCgroup('3:memory,cpu:/a\n'), '/a');
  assert.equal(memoryCgroup(''), null);
});
