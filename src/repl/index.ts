// The REPL front end: reads commands with Node's readline (never blocking the loop), drives a Session, handles signals.
import * as readline from 'node:readline';
import type { Readable } from 'node:stream';
import { DropwatchError, errnoText, isExpected } from '../errors/index.js';
import { complete, parseCommand } from '../engine/commands.js';
import type { Session } from '../engine/session.js';
import type { SessionOutput } from '../engine/types.js';
import type { SignalSource } from '../process/signals.js';
import { inputQueue, type Exit, type Next } from './input.js';
import { PROMPT, promptScreen, type ScreenIO } from './screen.js';

export { PROMPT };

export interface ReplIO extends ScreenIO {
  input: Readable;
  signals: SignalSource;
}

export interface Repl {
  /** Lines written through this keep the prompt intact on a terminal. */
  output: SessionOutput;
  /**
   * Runs until exit, end of input or a terminating signal; resolves to the exit code. Rejects with a DropwatchError,
   * after stopping monitoring, when the input fails (stdin a directory, a terminal gone).
   */
  run(session: Session): Promise<number>;
  /** Ends the run from outside (e.g. stdout closed): stops monitoring, releases the backend. */
  requestExit(code: number): void;
  /** Lends the terminal to a full-screen view (`top`) while `fn` runs, and takes it back after. */
  handOver<T>(fn: () => Promise<T>): Promise<T>;
}

/** What the loop does after one input: read the next one, or end with an exit code. */
type Step = { done: false } | ({ done: true } & Exit);
const CONTINUE: Step = { done: false };

class Prompt implements Repl {
  readonly output: SessionOutput;
  private readonly rl: readline.Interface;
  private readonly exited: Promise<Exit>;
  private exit: (how: Exit) => void = () => {};
  private readonly input: { next(): Promise<Next> };
  private readonly screen: ReturnType<typeof promptScreen>;

  constructor(private readonly io: ReplIO) {
    this.rl = readline.createInterface({
      input: io.input,
      output: io.interactive ? io.output : undefined,
      terminal: io.interactive,
      prompt: PROMPT,
      completer: (line: string) => complete(line),
      historySize: 1000,
      crlfDelay: Infinity,
    });
    this.exited = new Promise<Exit>((resolve) => (this.exit = resolve));
    // readline passes its input's errors on as its own; an 'error' nobody listens to would crash the process.
    this.rl.on('error', (err: unknown) =>
      this.exit({
        code: 1,
        error: new DropwatchError('E_IO', `cannot read standard input: ${errnoText(err)}`, { cause: err }),
      }),
    );
    this.input = inputQueue(this.rl, this.exited);
    this.screen = promptScreen(io, this.rl);
    this.output = this.screen.output;
  }

  readonly requestExit = (code: number): void => this.exit({ code });

  async run(session: Session): Promise<number> {
    const release = this.listen(session);
    try {
      for (;;) {
        this.screen.showPrompt();
        const next = await this.input.next();
        this.screen.promptGone();
        const result = await this.step(session, next);
        if (result.done) {
          // An input error is reported by the caller's one handler, in place of the orderly goodbye.
          if (result.error) throw result.error;
          this.output.message('Shutting down ...');
          return result.code;
        }
      }
    } finally {
      release();
      this.rl.close();
    }
  }

  /** Ctrl-C stops monitoring (or quits when idle); SIGTERM and SIGHUP quit. Returns the removal. */
  private listen(session: Session): () => void {
    const { signals } = this.io;
    const report = (err: unknown) => this.output.error(isExpected(err) ? err.message : String(err));
    const onInterrupt = () => {
      if (session.monitoring) void session.stop('signal').catch(report);
      else this.requestExit(0);
    };
    const onTerminate = () => this.requestExit(0);
    this.rl.on('SIGINT', () => {
      // At a terminal, Ctrl-C with text typed just clears the line; on an empty prompt it quits.
      if (!session.monitoring && this.rl.line.length > 0) {
        this.rl.write(null, { ctrl: true, name: 'u' });
        return;
      }
      onInterrupt();
    });
    signals.on('SIGINT', onInterrupt);
    signals.on('SIGTERM', onTerminate);
    signals.on('SIGHUP', onTerminate);
    return () => {
      signals.off('SIGINT', onInterrupt);
      signals.off('SIGTERM', onTerminate);
      signals.off('SIGHUP', onTerminate);
    };
  }

  /** Waits for the monitoring run to end, unless an exit is requested first: then how to exit. */
  private untilIdle(session: Session): Promise<Exit | null> {
    return Promise.race([session.whenIdle().then(() => null), this.exited]);
  }

  private async step(session: Session, next: Next): Promise<Step> {
    if (next.kind === 'exit') {
      // Whatever the shutdown prints starts on its own line, not after the prompt.
      (this.io.interactive ? this.io.output : this.screen.messages).write('\n');
      await session.shutdown('signal');
      return { done: true, code: next.code, ...(next.error ? { error: next.error } : {}) };
    }
    if (next.kind === 'eof') return this.endOfInput(session);
    // GNU readline echoes a piped line after the prompt; dropwatch's logs show `dropwatch> start`, so ours do too.
    if (!this.io.interactive) this.screen.messages.write(`${next.line}\n`);
    let command;
    try {
      command = parseCommand(next.line);
    } catch (err) {
      if (!isExpected(err)) throw err;
      this.output.error(err.message);
      return CONTINUE;
    }
    if (!command) return CONTINUE;
    if ((await session.run(command)) === 'exit') return { done: true, code: 0 };
    if (!this.io.interactive && command.name === 'start') {
      // Piped input waits, as dropwatch does, until this run ends before reading the next command.
      const how = await this.untilIdle(session);
      if (how !== null) {
        await session.shutdown('signal');
        return { done: true, ...how };
      }
    }
    return CONTINUE;
  }

  /** Piped input: end of input does not end a monitoring run; the limit or a signal does. */
  private async endOfInput(session: Session): Promise<Step> {
    const how = this.io.interactive ? null : await this.untilIdle(session);
    if (how?.error) {
      await session.shutdown('signal');
      return { done: true, ...how };
    }
    this.output.message('Terminating dropwatch...');
    await session.shutdown('exit');
    return { done: true, code: how?.code ?? 0 };
  }

  /**
   * Readline keeps reading whatever the view reads and refreshes its line on every resize, so its key and resize
   * listeners step aside meanwhile; the view turns raw mode off and unrefs stdin when it leaves, so both come back.
   * Not rl.pause(): pausing process.stdin stops its reads a tick later, under a view that has just started reading.
   */
  async handOver<T>(fn: () => Promise<T>): Promise<T> {
    const { io } = this;
    if (!io.interactive) return fn();
    const input = io.input as Readable & { setRawMode?(on: boolean): unknown; ref?(): unknown };
    const keypress = input.listeners('keypress') as ((...args: unknown[]) => void)[];
    const resize = io.output.listeners('resize') as ((...args: unknown[]) => void)[];
    for (const l of keypress) input.off('keypress', l);
    for (const l of resize) io.output.off('resize', l);
    try {
      return await fn();
    } finally {
      for (const l of resize) io.output.on('resize', l);
      for (const l of keypress) input.on('keypress', l);
      input.setRawMode?.(true);
      input.ref?.();
    }
  }
}

export function createRepl(io: ReplIO): Repl {
  return new Prompt(io);
}
