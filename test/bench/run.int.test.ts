// Smoke test for the benchmark harness: a tiny storm, startup and resolver run must complete and write a report.
// It proves the harness works in CI; it asserts nothing about speed (the figures on a shared machine are noise).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { analyseRun, summarizeNetdm, type GuestRun } from '../../bench/netdm.js';
import { canRunKernelTests } from '../helpers/kernel.js';

const runJs = fileURLToPath(new URL('../../bench/run.js', import.meta.url));

function unavailable(): string | null {
  const kernel = canRunKernelTests();
  if (kernel) return kernel;
  if (!existsSync('/usr/bin/python3') && spawnSync('sh', ['-c', 'command -v python3']).status !== 0)
    return 'needs python3';
  return null;
}

test('bench harness runs a tiny configuration end to end', { timeout: 180_000 }, (t) => {
  const why = unavailable();
  if (why) {
    t.skip(why);
    return;
  }
  const dir = mkdtempSync(join(tmpdir(), 'dwbench-smoke-'));
  try {
    const out = join(dir, 'BENCHMARKS.md');
    const r = spawnSync(
      process.execPath,
      [
        runJs,
        '--quick',
        // netdm boots qemu for minutes; its accounting is tested below without a guest, and the report still has
        // its section ("not run in this invocation").
        '--only',
        'storm,startup,resolver',
        '--configs',
        'none,dropwatch',
        '--count',
        '20000',
        '--startup-runs',
        '2',
        '--rescan-cap-ms',
        '200',
        '--out',
        out,
      ],
      { encoding: 'utf8', timeout: 170_000 },
    );
    assert.equal(r.status, 0, `bench failed:\n${r.stdout}\n${r.stderr}`);
    const md = readFileSync(out, 'utf8');
    for (const heading of [
      '# Benchmarks',
      '## Targets',
      '## 1. tracefs drop storm',
      '## 2. Startup',
      '## 3. Symbol resolver',
      '## 4. NET_DM',
    ])
      assert.ok(md.includes(heading), `report lacks ${heading}`);
    // The CLI ran and its output was read back: an accounting row for the one round exists.
    assert.match(md, /round 1: sent 20000, counted \d+, lost \d+/);
    // The second startup anchor ran (hyperfine fails a command that exits non-zero) and was reported.
    assert.match(md, /\| floor: commander \+ readline prompt \| \d/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

// The NET_DM bench's arithmetic, on runs shaped like the guest script's records: no qemu, no root.
test('NET_DM bench: sustained rate, first loss and accounting of a guest run', () => {
  const step = (target: number, sent: number, socketDrops = 0, tailDrops = 0) => ({
    target,
    sent,
    seconds: sent / target,
    achieved: target,
    socketDrops,
    tailDrops,
    cpuTicks: 10,
    drained: true,
  });
  const base: GuestRun = {
    kind: 'run',
    reader: 'dwdump',
    round: 0,
    startupSeconds: 1,
    steps: [step(500, 1500), step(750, 2250), step(1125, 3375, 40, 2)],
    sent: 1 + 1500 + 2250 + 3375,
    socketDrops: 40,
    tailDrops: 2,
    writes: 1 + 1500 + 2250 + 3375 - 42,
    writesPerAlert: 1,
    stderrDuring: 0,
    printed: null,
    cpuTicks: 30,
    exitCode: 0,
    stderrAfterStop: '',
    stderr: '',
  };
  const anchor = analyseRun(base);
  assert.equal(anchor.sustained, 750);
  assert.equal(anchor.firstLossRate, 1125);
  assert.equal(anchor.senderLimited, false);
  assert.equal(anchor.balance, 0);
  assert.ok(anchor.exact);

  // Our dwdump: its own summary line is the accounting; one alert missing from it shows as a balance of -1.
  const ours = analyseRun({
    ...base,
    reader: 'ours-dwdump',
    steps: [step(500, 1500), step(750, 2250), step(1125, 3375), step(1687.5, 5062)],
    sent: 1 + 1500 + 2250 + 3375 + 5062,
    socketDrops: 0,
    tailDrops: 0,
    stderr: 'dwdump: 12187 packets written, 0 lost on our socket, 0 tail-dropped by the kernel\n',
  });
  assert.equal(ours.sustained, 1687.5);
  assert.equal(ours.senderLimited, true);
  assert.equal(ours.balance, -1);
  assert.equal(ours.exact, false);

  // Our dropwatch: written is the alert blocks it printed, lost its own total line at the stop.
  const dw = analyseRun({
    ...base,
    reader: 'ours-dropwatch',
    writes: 123456,
    writesPerAlert: 944,
    printed: base.sent - 42,
    stderrAfterStop:
      'Lost 2 drop events before they reached dropwatch (netlink socket)\n' +
      'In total, 40 drop events were lost before they reached dropwatch (netlink socket)\n',
  });
  assert.equal(dw.written, base.sent - 42);
  assert.equal(dw.ownLost, 40);
  assert.equal(dw.balance, 0);

  const summary = summarizeNetdm([anchor, ours, dw]);
  assert.equal(summary.find((s) => s.reader === 'ours-dwdump')?.ratio.median, 1687.5 / 750);
  assert.equal(summary.find((s) => s.reader === 'ours-dropwatch')?.ratio.median, 1);
});
