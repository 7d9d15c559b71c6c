// Smoke test for the benchmark harness: a tiny storm, startup and resolver run must complete and write a report.
// It proves the harness works in CI; it asserts nothing about speed (the figures on a shared machine are noise).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const runJs = fileURLToPath(new URL('../../bench/run.js', import.meta.url));

function unavailable(): string | null {
  if (process.getuid?.() !== 0) return 'needs root';
  if (!existsSync('/sys/kernel/tracing/events/skb/kfree_skb/format')) return 'needs tracefs with skb:kfree_skb';
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
        '--only',
        'storm,startup,resolver,netdm',
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
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
