// The live view's shell on a scripted terminal: the screen, the cursor and raw mode come back on every way out, and
// the session is started, stopped and given back as found.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import ansiEscapes from 'ansi-escapes';
import { runTop, type TopIO, type TopSession } from '../../src/top/run.js';
import { DropwatchError } from '../../src/errors/index.js';
import type { SessionView } from '../../src/engine/types.js';
import { SOFTWARE_ONLY } from '../helpers/backend.js';

const ENTER = ansiEscapes.enterAlternativeScreen;
const RESTORE = ansiEscapes.cursorShow + ansiEscapes.exitAlternativeScreen;

class FakeStdin extends EventEmitter {
  isTTY = true;
  raw: boolean[] = [];
  private pending: string | null = null;
  setRawMode(on: boolean) {
    this.raw.push(on);
    return this;
  }
  setEncoding() {}
  ref() {}
  unref() {}
  read() {
    const d = this.pending;
    this.pending = null;
    return d;
  }
  type(text: string) {
    this.pending = text;
    this.emit('readable');
  }
}

class FakeStdout extends EventEmitter {
  isTTY = true;
  columns = 100;
  rows = 20;
  written = '';
  write(s: string, cb?: () => void) {
    this.written += s;
    cb?.();
    return true;
  }
}

class FakeSession implements TopSession {
  monitoring = false;
  calls: string[] = [];
  failStart = false;
  crash: Error | null = null;
  private view: SessionView | null = null;
  async run() {
    this.calls.push('start');
    if (this.crash) throw this.crash;
    this.view?.output.message('Enabling monitoring...');
    if (this.failStart) {
      this.view?.output.message('Failed activation request, error: Operation not permitted');
      return 'continue' as const;
    }
    this.monitoring = true;
    this.view?.output.message('Kernel monitoring activated.');
    return 'continue' as const;
  }
  async stop() {
    this.calls.push('stop');
    this.monitoring = false;
    this.view?.output.message('Got a stop message');
    this.view?.output.error('Lost 3 drop events before they reached dropwatch (cpu0)');
  }
  divert(view: SessionView) {
    this.calls.push('divert');
    this.view = view;
    return () => {
      this.calls.push('undivert');
      this.view = null;
    };
  }
}

function setup(session = new FakeSession(), tty = true) {
  const stdin = new FakeStdin();
  const stdout = new FakeStdout();
  stdin.isTTY = tty;
  const signals = new EventEmitter();
  const hooks = new Set<() => void>();
  const printed: string[] = [];
  // Ink adds its 'readable' listener when React runs the view's effects; 'newListener' says so, with no polling.
  const listening = new Promise<void>((resolve) => {
    const added = (event: string | symbol) => {
      if (event !== 'readable') return;
      stdin.off('newListener', added);
      resolve();
    };
    stdin.on('newListener', added);
  });
  const io: TopIO = {
    stdin: stdin as unknown as TopIO['stdin'],
    stdout: stdout as unknown as TopIO['stdout'],
    stderr: new FakeStdout() as unknown as TopIO['stderr'],
    env: { NO_COLOR: '1' },
    signals,
    now: Date.now,
    onExit: (fn) => {
      hooks.add(fn);
      return () => hooks.delete(fn);
    },
  };
  const running = runTop({
    session,
    backend: {
      name: 'tracefs',
      capabilities: SOFTWARE_ONLY,
    },
    lookup: () => null,
    io,
    output: {
      data: (l) => printed.push(`data ${l}`),
      message: (l) => printed.push(`message ${l}`),
      error: (l) => printed.push(`error ${l}`),
    },
    asked: '--top',
  });
  /** Resolves once the view reads keys. */
  const ready = async () => {
    await listening;
    assert.ok(stdin.listenerCount('readable') > 0, 'the view listens for keys');
  };
  return { session, stdin, stdout, signals, hooks, printed, running, ready };
}

function assertRestored(t: ReturnType<typeof setup>) {
  assert.ok(t.stdout.written.startsWith(ENTER), 'entered the alternate screen first');
  assert.ok(t.stdout.written.endsWith(RESTORE), 'cursor shown and the screen given back last');
  assert.equal(t.stdout.written.split(ansiEscapes.exitAlternativeScreen).length, 2, 'restored once');
  assert.equal(t.stdin.raw.at(-1), false, 'raw mode off');
  assert.equal(t.hooks.size, 0, 'the exit hook is removed');
  assert.equal(t.signals.listenerCount('SIGTERM'), 0);
}

test('q: the view starts monitoring, stops it, and gives the terminal back; losses at stop are printed after', async () => {
  const t = setup();
  await t.ready();
  assert.equal(t.hooks.size, 1, 'an exit hook guards the screen while the view is up');
  t.stdin.type('q');
  assert.equal(await t.running, 'quit');
  assertRestored(t);
  assert.deepEqual(t.session.calls, ['divert', 'start', 'stop', 'undivert']);
  assert.deepEqual(t.printed, ['error Lost 3 drop events before they reached dropwatch (cpu0)']);
});

test('SIGTERM, SIGINT and SIGHUP each end the view the same clean way', async () => {
  for (const signal of ['SIGTERM', 'SIGINT', 'SIGHUP']) {
    const t = setup();
    await t.ready();
    t.signals.emit(signal);
    assert.equal(await t.running, 'quit');
    assertRestored(t);
    assert.equal(t.session.monitoring, false, signal);
  }
});

test('a start the kernel refuses: the screen comes back and says why; nothing to stop', async () => {
  const session = new FakeSession();
  session.failStart = true;
  const t = setup(session);
  assert.equal(await t.running, 'not-started');
  assertRestored(t);
  assert.deepEqual(session.calls, ['divert', 'start', 'undivert']);
  assert.deepEqual(t.printed, [
    'message Enabling monitoring...',
    'message Failed activation request, error: Operation not permitted',
  ]);
});

test('a crash inside the view still restores the terminal, then goes on up as the bug it is', async () => {
  const session = new FakeSession();
  session.crash = new TypeError('boom');
  const t = setup(session);
  await assert.rejects(t.running, /boom/);
  assertRestored(t);
});

test('the process exiting while the view is up restores the screen through the exit hook, once', async () => {
  const t = setup();
  await t.ready();
  for (const hook of t.hooks) hook();
  assert.ok(t.stdout.written.endsWith(RESTORE));
  assert.equal(t.stdin.raw.at(-1), false);
  // Here the process lives on (a real exit would end it): the way out must not leave the screen a second time.
  t.stdin.type('q');
  await t.running;
  assert.equal(t.stdout.written.split(ansiEscapes.exitAlternativeScreen).length, 2);
  assert.equal(t.hooks.size, 0);
});

test('monitoring already on (the prompt ran start): the view neither starts nor stops it', async () => {
  const session = new FakeSession();
  session.monitoring = true;
  const t = setup(session);
  await t.ready();
  t.stdin.type('q');
  await t.running;
  assert.deepEqual(session.calls, ['divert', 'undivert']);
  assert.equal(session.monitoring, true);
  assertRestored(t);
});

test('no terminal: one error saying what to use instead, and nothing written or started', async () => {
  const t = setup(new FakeSession(), false);
  await assert.rejects(
    t.running,
    (err: unknown) => err instanceof DropwatchError && err.code === 'E_NO_TTY' && /use -s/.test(err.message),
  );
  assert.equal(t.stdout.written, '');
  assert.deepEqual(t.session.calls, []);
});
