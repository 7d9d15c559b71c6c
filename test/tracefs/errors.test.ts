// Error paths that need no kernel: a missing tracefs, a tracefs without the event, a symlinked instances directory.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { openTracefsBackend } from '../../src/tracefs/index.js';
import { DropwatchError } from '../../src/errors/index.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'dwtest-tracefs-'));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));
const isCode = (code: string) => (e: unknown) =>
  e instanceof DropwatchError && e.code === code && !e.message.includes('\n');

test('a root without tracefs is E_TRACEFS_MISSING', async () => {
  await assert.rejects(
    openTracefsBackend({ root: path.join(tmp, 'nothing-here'), mount: false }),
    isCode('E_TRACEFS_MISSING'),
  );
});

test('a tracefs without skb:kfree_skb is E_EVENT_MISSING, and nothing is created', async () => {
  const root = path.join(tmp, 'noevent');
  fs.mkdirSync(path.join(root, 'instances'), { recursive: true });
  fs.mkdirSync(path.join(root, 'events'));
  await assert.rejects(openTracefsBackend({ root, instancePrefix: 'dwtest' }), isCode('E_EVENT_MISSING'));
  assert.deepEqual(fs.readdirSync(path.join(root, 'instances')), []);
});

test('an instances directory that is a symlink is refused, not followed', async () => {
  const root = path.join(tmp, 'symlinked');
  const elsewhere = path.join(tmp, 'elsewhere');
  fs.mkdirSync(elsewhere);
  fs.mkdirSync(path.join(root, 'events/skb/kfree_skb'), { recursive: true });
  fs.writeFileSync(path.join(root, 'events/skb/kfree_skb/format'), '');
  fs.symlinkSync(elsewhere, path.join(root, 'instances'));
  await assert.rejects(openTracefsBackend({ root, instancePrefix: 'dwtest' }), isCode('E_TRACEFS_MISSING'));
  assert.deepEqual(fs.readdirSync(elsewhere), []);
});

test('a bad instance prefix is E_USAGE (it becomes a directory name)', async () => {
  const root = path.join(tmp, 'prefix');
  fs.mkdirSync(path.join(root, 'instances'), { recursive: true });
  await assert.rejects(openTracefsBackend({ root, instancePrefix: '../x' }), isCode('E_USAGE'));
});

test('reclaim: a dead run leaves its instance and its chain instance; both go, a live pid keeps both', async () => {
  const { reclaimStale } = await import('../../src/tracefs/index.js');
  const root = path.join(tmp, 'reclaim');
  const names = [
    'dwtest-100',
    'dwtest-100-chains',
    'dwtest-100-2-chains',
    'dwtest-200',
    'dwtest-200-chains',
    'dwtest-x',
  ];
  for (const n of names) fs.mkdirSync(path.join(root, 'instances', n), { recursive: true });
  const removed = reclaimStale(root, 'dwtest', (pid) => pid === 200);
  assert.deepEqual(removed.sort(), ['dwtest-100', 'dwtest-100-2-chains', 'dwtest-100-chains']);
  assert.deepEqual(fs.readdirSync(path.join(root, 'instances')).sort(), [
    'dwtest-200',
    'dwtest-200-chains',
    'dwtest-x',
  ]);
});
