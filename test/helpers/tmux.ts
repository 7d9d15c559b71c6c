// A real terminal for the live view's integration tests: a private tmux server, keys sent, the pane read back.
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';
import { BIN, findDropwatch } from './cli.js';
import { integrationOnly } from './suite.js';

integrationOnly('test/helpers/tmux.ts (a terminal running the built CLI)');

export function hasTmux(): boolean {
  try {
    execFileSync('tmux', ['-V'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** A terminal of our own: a private tmux server with one window running `command`. */
export class Terminal {
  private readonly socket = `dwtest-top-${randomBytes(4).toString('hex')}`;
  /** tmux leaves its socket file behind when the server is killed; close() removes it. */
  private readonly socketPath: string;
  constructor(command: string, columns = 120, rows = 30) {
    this.tmux('new-session', '-d', '-s', 'dw', '-x', String(columns), '-y', String(rows), command);
    this.socketPath = this.flag('socket_path');
  }
  tmux(...args: string[]): string {
    return execFileSync('tmux', ['-L', this.socket, ...args], { encoding: 'utf8' });
  }
  /** What the pane shows; with `scrollback`, the lines scrolled off its top too. */
  screen(scrollback = false): string {
    return this.tmux('capture-pane', '-p', '-t', 'dw', ...(scrollback ? ['-S', '-'] : []));
  }
  keys(...keys: string[]): void {
    this.tmux('send-keys', '-t', 'dw', ...keys);
  }
  type(text: string): void {
    this.tmux('send-keys', '-t', 'dw', '-l', text);
  }
  flag(name: string): string {
    return this.tmux('display', '-p', '-t', 'dw', `#{${name}}`).trim();
  }
  /** The dropwatch under the pane's shell. */
  dropwatch(): number | null {
    return findDropwatch(Number(this.flag('pane_pid')));
  }
  resize(columns: number, rows: number): void {
    this.tmux('resize-window', '-t', 'dw', '-x', String(columns), '-y', String(rows));
  }
  async until(check: (screen: string) => boolean, what: string, timeoutMs = 20_000): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const screen = this.screen();
      if (check(screen)) return screen;
      if (Date.now() > deadline) throw new Error(`never saw ${what}; the screen:\n${screen}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  close(): void {
    try {
      this.tmux('kill-server');
    } catch {
      // Already gone.
    }
    rmSync(this.socketPath, { force: true });
  }
}

/**
 * The shell command a test's terminal runs: a marker line, the built CLI with `args` (no colour, no CI variables:
 * they make the terminal library print only the last frame), its exit code and the terminal's line mode after it.
 */
export const viewCommand = (args: string): string =>
  `printf 'BEFORE-TOP\\n'; env -u CI -u CONTINUOUS_INTEGRATION NO_COLOR=1 ${process.execPath} ${BIN} ${args}; ` +
  `echo "EXIT=$?"; stty -a | grep -o -- '-\\?icanon'; sleep 120`;
