// The live view in a real terminal (tmux): the built CLI, real drops from a namespace, keys, a resize, the screen
// as a user sees it, and the terminal and tracefs as they were after every way out.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { BIN, runCli } from '../helpers/cli.js';
import { canRunKernelTests, TRACEFS, tracefsSnapshot } from '../helpers/kernel.js';
import { Netns } from '../helpers/netns.js';
import { hasTmux, Terminal, viewCommand } from '../helpers/tmux.js';

const skip = canRunKernelTests() || (hasTmux() ? false : 'needs tmux for a real terminal');

const ROW = /^\s*>?\s*\d+\s+([\d,.]+[kMG]?)\s+([\d,.]+[kMG]?)\s.*__udp4_lib_rcv\+[0-9a-f]+\s+software\s+NO_SOCKET/m;
const rateOf = (screen: string): number | null => {
  const m = ROW.exec(screen);
  return m ? Number(m[1]!.replace(/,/g, '')) : null;
};
const totalOf = (screen: string): number => Number(/total ([\d,]+) /.exec(screen)![1]!.replace(/,/g, ''));

function instancesOf(pid: number | null): string[] {
  return readdirSync(`${TRACEFS}/instances`).filter((n) => pid !== null && n.startsWith(`dropwatch-${pid}`));
}

test(
  '--top at ~100 drops/s: the row, keys, pause, a resize, and q leaves all as found',
  { skip, timeout: 120_000 },
  async () => {
    const before = tracefsSnapshot();
    const ns = new Netns();
    const sender = ns.pacedUdp('127.0.0.1', 100);
    const term = new Terminal(viewCommand('--top -l kas'));
    let pid: number | null = null;
    try {
      await term.until((s) => s.includes('dropwatch top'), 'the view');
      pid = term.dropwatch();
      assert.ok(pid !== null, 'dropwatch runs in the terminal');
      assert.equal(term.flag('alternate_on'), '1', 'the view is on the alternate screen');
      await term.until((s) => !s.includes('Enabling monitoring'), 'monitoring on');
      // Within 3 s of monitoring: the site, its reason, and about the rate sent (other tests' drops may add a little).
      const started = Date.now();
      const shown = await term.until(
        (s) => {
          const rate = rateOf(s);
          return rate !== null && rate >= 70 && rate <= 130;
        },
        'a __udp4_lib_rcv NO_SOCKET row at about 100/s',
        3000,
      );
      assert.ok(Date.now() - started <= 3500);
      assert.match(shown, /drops\/s▼/);
      assert.doesNotMatch(shown, /\u001b\[/, 'no colour with NO_COLOR');

      term.keys('s');
      await term.until((s) => /total▼/.test(s), 'sorted by total');
      term.keys('s');
      await term.until((s) => /location▼/.test(s), 'sorted by name');
      term.keys('s');
      await term.until((s) => /drops\/s▼/.test(s), 'sorted by rate again');

      term.keys('p');
      const paused = await term.until((s) => /PAUSED/.test(s), 'paused');
      await new Promise((r) => setTimeout(r, 2500));
      assert.equal(totalOf(term.screen()), totalOf(paused), 'the screen holds still while paused');
      term.keys('p');
      await term.until((s) => !/PAUSED/.test(s) && totalOf(s) > totalOf(paused), 'counting went on meanwhile');

      const history = (s: string) => Number(/last (\d+)s/.exec(s)?.[1] ?? 0);
      const wide = history(term.screen());
      term.resize(80, 20);
      const small = await term.until((s) => history(s) < wide && /origin/.test(s), 'a shorter sparkline');
      const lines = small.replace(/\n$/, '').split('\n');
      assert.ok(lines.length <= 20);
      for (const line of lines) assert.ok(Array.from(line).length <= 80, line);
      assert.match(small, ROW);

      term.keys('q');
      const after = await term.until((s) => /EXIT=\d+\n.*icanon/.test(s), 'the exit', 15_000);
      assert.match(after, /EXIT=0/);
      // The smaller window pushed the top of the screen from before into the scrollback.
      assert.match(term.screen(true), /BEFORE-TOP/, 'the screen from before is back');
      assert.doesNotMatch(after, /drops\/s/, 'and the view is gone from it');
      assert.match(after, /\bicanon\b/, 'the terminal is in line mode again');
      assert.doesNotMatch(after, /-icanon/);
      assert.equal(term.flag('alternate_on'), '0');
      assert.equal(term.flag('cursor_flag'), '1', 'the cursor shows');
      assert.deepEqual(instancesOf(pid), [], 'no tracefs instance left');
      assert.deepEqual(tracefsSnapshot(), before, 'tracefs as found');
    } finally {
      term.close();
      sender.kill();
      ns.delete();
    }
  },
);

test(
  'top at the prompt returns to it, twice, and the prompt still takes commands',
  { skip, timeout: 120_000 },
  async () => {
    const term = new Terminal(viewCommand('-l kas'));
    let pid: number | null = null;
    try {
      // capture-pane drops trailing blanks, the prompt's space among them.
      await term.until((s) => s.trimEnd().endsWith('dropwatch>'), 'the prompt');
      pid = term.dropwatch();
      for (const round of [1, 2]) {
        term.type('top');
        term.keys('Enter');
        await term.until((s) => s.includes('dropwatch top'), `the view, round ${round}`);
        await term.until((s) => !s.includes('Enabling monitoring'), 'monitoring on');
        term.keys('s');
        await term.until((s) => /total▼/.test(s), `keys reach the view, round ${round}`);
        term.keys('q');
        await term.until(
          (s) => !s.includes('dropwatch top') && s.trimEnd().endsWith('dropwatch>'),
          `the prompt, round ${round}`,
        );
        assert.equal(term.flag('alternate_on'), '0');
        assert.deepEqual(instancesOf(pid), [], 'monitoring the view started has stopped');
      }
      term.type('exit');
      term.keys('Enter');
      const after = await term.until((s) => /EXIT=\d+\n.*icanon/.test(s), 'the exit');
      assert.match(after, /EXIT=0/);
      assert.match(after, /\bicanon\b/);
    } finally {
      term.close();
    }
  },
);

test(
  'SIGTERM during --top: exit 0 with the terminal restored and no instance left',
  { skip, timeout: 60_000 },
  async () => {
    const term = new Terminal(viewCommand('--top -l kas'));
    try {
      await term.until((s) => s.includes('dropwatch top') && !s.includes('Enabling monitoring'), 'the view');
      const pid = term.dropwatch();
      assert.ok(pid !== null);
      process.kill(pid, 'SIGTERM');
      const after = await term.until((s) => /EXIT=\d+\n.*icanon/.test(s), 'the exit');
      assert.match(after, /EXIT=0/);
      assert.match(after, /\bicanon\b/);
      assert.equal(term.flag('alternate_on'), '0');
      assert.equal(term.flag('cursor_flag'), '1');
      assert.deepEqual(instancesOf(pid), []);
    } finally {
      term.close();
    }
  },
);

test(
  '--top without a terminal: one line saying to use -s, exit 1, tracefs untouched',
  { skip: canRunKernelTests() },
  async () => {
    const before = tracefsSnapshot();
    const r = await runCli(['--top']);
    assert.equal(r.code, 1);
    assert.equal(r.stdout, '');
    assert.equal(
      r.stderr,
      'dropwatch: --top needs a terminal; for a log or a pipe use -s (-s -f json for JSON Lines)\n',
    );
    assert.deepEqual(tracefsSnapshot(), before);
  },
);

/** The built CLI at a pseudo-terminal of util-linux `script`, in the environment given: every byte it writes. */
function atScript(args: string, env: Record<string, string>) {
  const vars = Object.entries(env)
    .map(([k, v]) => `${k}=${v}`)
    .join(' ');
  // A pty made from a pipe has no size: give it one, as a terminal window has.
  const command = `stty cols 100 rows 30; env -u LC_ALL -u LC_CTYPE -u CI -u CONTINUOUS_INTEGRATION ${vars} ${process.execPath} ${BIN} ${args}`;
  const child = spawn('script', ['-qfec', command, '/dev/null'], { stdio: ['pipe', 'pipe', 'pipe'] });
  const chunks: Buffer[] = [];
  child.stdout.on('data', (d: Buffer) => chunks.push(d));
  const closed = new Promise<number | null>((resolve) => child.on('close', resolve));
  const bytes = () => Buffer.concat(chunks);
  return { child, bytes, closed };
}

const scriptSkip = canRunKernelTests() || (existsSync('/usr/bin/script') ? false : 'needs util-linux script for a pty');

test('--top on TERM=dumb: one line, exit 1, no screen drawn, tracefs untouched', { skip: scriptSkip }, async () => {
  const before = tracefsSnapshot();
  const run = atScript('--top', { LANG: 'C', TERM: 'dumb', NO_COLOR: '1' });
  assert.equal(await run.closed, 1);
  assert.equal(
    run.bytes().toString(),
    'dropwatch: --top needs a terminal that can move the cursor (TERM=dumb); for a log or a pipe use -s (-s -f json for JSON Lines)\r\n',
  );
  assert.deepEqual(tracefsSnapshot(), before);
});

test(
  '--top where the locale is not UTF-8 (LANG=C): every byte ASCII, bars and marks included',
  { skip: scriptSkip, timeout: 60_000 },
  async () => {
    const ns = new Netns();
    const run = atScript('--top -l kas', { LANG: 'C', TERM: 'xterm', NO_COLOR: '1' });
    try {
      const deadline = Date.now() + 20_000;
      while (!run.bytes().toString().includes('q quit')) {
        assert.ok(Date.now() < deadline, `never saw the view: ${run.bytes().toString()}`);
        await new Promise((r) => setTimeout(r, 100));
      }
      // Drops over two seconds: a row with its bars.
      await ns.sendUdp('127.0.0.1', 50);
      await new Promise((r) => setTimeout(r, 1500));
      await ns.sendUdp('127.0.0.1', 50);
      await new Promise((r) => setTimeout(r, 1500));
      run.child.stdin.write('q');
      assert.equal(await run.closed, 0);
      const out = run.bytes();
      const high = out.findIndex((b) => b >= 0x80);
      assert.equal(
        high,
        -1,
        `a non-ASCII byte at ${high}: ${JSON.stringify(out.subarray(Math.max(0, high - 40), high + 10).toString('latin1'))}`,
      );
      assert.match(out.toString(), /drops\/s\*/);
      assert.match(out.toString(), /__udp4_lib_rcv/);
      assert.match(out.toString(), /Up\/Down select/);
    } finally {
      run.child.kill('SIGKILL');
      ns.delete();
    }
  },
);
