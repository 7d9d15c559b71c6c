// Call chains on the real kernel, at the backend: a kernel_stack format that cannot be read leaves nothing behind,
// and chains never make a ring-buffer loss look bigger than the drops lost. Drops are IPv6 datagrams to a closed port
// in a namespace of ours, so the exact sums are not disturbed by the IPv4 floods other test runs make.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import { openTracefsBackend } from '../../src/tracefs/index.js';
import type { BackendEvent } from '../../src/backend/types.js';
import { canRunKernelTests, ourInstances, TEST_PREFIX, TRACEFS } from '../helpers/kernel.js';
import { Netns } from '../helpers/netns.js';

const skip = canRunKernelTests();
const INDEX = fileURLToPath(new URL('../../src/tracefs/index.js', import.meta.url));

describe('call chains on the real kernel', { skip }, () => {
  let ns: Netns;

  before(() => {
    ns = new Netns();
  });

  after(() => {
    ns?.delete();
    for (const n of ourInstances()) fs.rmdirSync(`${TRACEFS}/instances/${n}`); // only if a test failed mid-way
  });

  test('kernel_stack format unreadable: start with stacks is a one-line error and leaves no instance', async () => {
    // A private mount namespace: tracefs mounted again at a directory of ours, with /dev/null over the format file.
    const dir = fs.mkdtempSync('/tmp/dwtest-tracefs-');
    const code =
      `const { openTracefsBackend } = await import(${JSON.stringify(INDEX)});` +
      `const fs = await import('node:fs');` +
      `const b = await openTracefsBackend({ root: ${JSON.stringify(dir)}, instancePrefix: '${TEST_PREFIX}' });` +
      `let error = null; try { await b.start({ sw: true, hw: false, stack: true }); } catch (e) { error = { code: e.code, message: e.message }; }` +
      `const left = fs.readdirSync(${JSON.stringify(`${dir}/instances`)}).filter((n) => n.startsWith('${TEST_PREFIX}-'));` +
      `console.log(JSON.stringify({ error, left })); await b.close();`;
    const script =
      `mount -t tracefs nodev ${dir} && mount --bind /dev/null ${dir}/events/ftrace/kernel_stack/format && ` +
      `exec ${process.execPath} --input-type=module -e "$0"`;
    try {
      const out = await new Promise<string>((resolve, reject) => {
        const child = spawn('unshare', ['-m', '--propagation', 'private', 'sh', '-c', script, code], {
          stdio: ['ignore', 'pipe', 'pipe'],
        });
        let s = '';
        let err = '';
        child.stdout.on('data', (d: Buffer) => (s += d.toString()));
        child.stderr.on('data', (d: Buffer) => (err += d.toString()));
        child.on('exit', (c) => (c === 0 ? resolve(s) : reject(new Error(`child exited ${c}: ${err}`))));
      });
      const r = JSON.parse(out) as { error: { code: string; message: string } | null; left: string[] };
      assert.ok(r.error, 'start failed');
      assert.equal(r.error.code, 'E_DECODE');
      assert.doesNotMatch(r.error.message, /\n/);
      assert.deepEqual(r.left, [], 'no instance left after the failed start');
    } finally {
      fs.rmdirSync(dir);
    }
  });

  test('stacks on, the ring buffer shrunk from outside: what is lost counts drops only (counted + lost = sent)', async () => {
    const sent = 3000;
    // A reader that looks only every 1.5 s: the 8 KiB buffer overruns many times over.
    const b = await openTracefsBackend({
      instancePrefix: TEST_PREFIX,
      pollIntervalMs: 1500,
      flushIntervalMs: 50,
    });
    const events: BackendEvent[] = [];
    b.onEvent((e) => events.push(e));
    const noSocket = [...b.layout.reasons].find(([, n]) => n === 'NO_SOCKET')![0];
    try {
      await b.setFilter(`reason == ${noSocket} && protocol == ${0x86dd}`);
      await b.start({ sw: true, hw: false, stack: true });
      fs.writeFileSync(`${b.instance!.dir}/buffer_size_kb`, '8');
      await new Promise((r) => setTimeout(r, 100));
      await ns.sendUdp('::1', sent);
      await b.stop();
    } finally {
      await b.close();
    }
    let counted = 0;
    let lost = 0;
    for (const e of events) {
      if (e.kind === 'summary') for (const x of e.entries) counted += x.count;
      if (e.kind === 'lost') lost += e.count;
    }
    assert.ok(lost > 0, 'the shrunk buffer overran');
    // Other processes' IPv6 NO_SOCKET drops could add a few; chain records lost with them must not.
    assert.ok(counted + lost >= sent && counted + lost <= sent + 20, `counted ${counted} + lost ${lost}, sent ${sent}`);
  });
});
