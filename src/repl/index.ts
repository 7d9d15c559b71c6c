// The REPL front end: reads commands with Node's readline (never blocking the loop), drives a Session, handles signals.
import * as readline from 'node:readline';
import type { Readable, Writable } from 'node:stream';
import { DropwatchError, errnoText, isExpected } from '../errors/index.js';
import { complete, parseCommand } from '../engine/commands.js';
import type { Session } from '../engine/session.js';
import type { SessionOutput } from '../engine/types.js';
import type { SignalSource } from '../process/signals.js';

export const PROMPT = 'dropwatch> ';

export interface ReplIO {
  input: Readable;
  output: Writable;
  errorOutput: Writable;
  /** A person at a terminal: line editing, completion, Ctrl-C stops monitoring and `stop` works while monitoring. */
  interactive: boolean;
  signals: SignalSource;
  /** Where JSON mode sends dropwatch's chatter; defaults to output. */
  messageOutput?: Writable;
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

/** How the run ends when asked from outside: an exit code, or an error to report. */
type Exit = { code: number; error?: DropwatchError };
type Next = { kind: 'line'; line: string } | { kind: 'eof' } | ({ kind: 'exit' } & Exit);
/** What the loop does after one input: read the next one, or end with an exit code. */
type Step = { done: false } | ({ done: true } & Exit);
const CONTINUE: Step = { done: false };

export function createRepl(io: ReplIO): Repl {
  const rl = readline.createInterface({
    input: io.input,
    output: io.interactive ? io.output : undefined,
    terminal: io.interactive,
    prompt: PROMPT,
    completer: (line: string) => complete(line),
    historySize: 1000,
    crlfDelay: Infinity,
  });
  let exit: (how: Exit) => void = () => {};
  const exited = new Promise<Exit>((resolve) => (exit = resolve));
  const resolveExit = (code: number) => exit({ code });
  // readline passes its input's errors on as its own; an 'error' nobody listens to would crash the process.
  const onInputError = (err: unknown) =>
    exit({
      code: 1,
      error: new DropwatchError('E_IO', `cannot read standard input: ${errnoText(err)}`, { cause: err }),
    });
  rl.on('error', onInputError);
  const input = inputQueue(rl, exited);
  const screen = promptScreen(io, rl);
  const { output, messages } = screen;

  /** Waits for the monitoring run to end, unless an exit is requested first: then how to exit. */
  const untilIdle = (session: Session): Promise<Exit | null> =>
    Promise.race([session.whenIdle().then(() => null), exited]);

  async function step(session: Session, next: Next): Promise<Step> {
    if (next.kind === 'exit') {
      // Whatever the shutdown prints starts on its own line, not after the prompt.
      (io.interactive ? io.output : messages).write('\n');
      await session.shutdown('signal');
      return { done: true, code: next.code, ...(next.error ? { error: next.error } : {}) };
    }
    if (next.kind === 'eof') {
      // Piped input: end of input does not end a monitoring run; the limit or a signal does.
      const how = io.interactive ? null : await untilIdle(session);
      if (how?.error) {
        await session.shutdown('signal');
        return { done: true, ...how };
      }
      output.message('Terminating dropwatch...');
      await session.shutdown('exit');
      return { done: true, code: how?.code ?? 0 };
    }
    // GNU readline echoes a piped line after the prompt; dropwatch's logs show `dropwatch> start`, so ours do too.
    if (!io.interactive) messages.write(`${next.line}\n`);
    let command;
    try {
      command = parseCommand(next.line);
    } catch (err) {
      if (!isExpected(err)) throw err;
      output.error(err.message);
      return CONTINUE;
    }
    if (!command) return CONTINUE;
    if ((await session.run(command)) === 'exit') return { done: true, code: 0 };
    if (!io.interactive && command.name === 'start') {
      // Piped input waits, as dropwatch does, until this run ends before reading the next command.
      const how = await untilIdle(session);
      if (how !== null) {
        await session.shutdown('signal');
        return { done: true, ...how };
      }
    }
    return CONTINUE;
  }

  async function run(session: Session): Promise<number> {
    const report = (err: unknown) => output.error(isExpected(err) ? err.message : String(err));
    const onInterrupt = () => {
      if (session.monitoring) void session.stop('signal').catch(report);
      else resolveExit(0);
    };
    const onTerminate = () => resolveExit(0);
    rl.on('SIGINT', () => {
      // At a terminal, Ctrl-C with text typed just clears the line; on an empty prompt it quits.
      if (!session.monitoring && rl.line.length > 0) {
        rl.write(null, { ctrl: true, name: 'u' });
        return;
      }
      onInterrupt();
    });
    io.signals.on('SIGINT', onInterrupt);
    io.signals.on('SIGTERM', onTerminate);
    io.signals.on('SIGHUP', onTerminate);
    try {
      for (;;) {
        screen.showPrompt();
        const next = await input.next();
        screen.promptGone();
        const result = await step(session, next);
        if (result.done) {
          // An input error is reported by the caller's one handler, in place of the orderly goodbye.
          if (result.error) throw result.error;
          output.message('Shutting down ...');
          return result.code;
        }
      }
    } finally {
      io.signals.off('SIGINT', onInterrupt);
      io.signals.off('SIGTERM', onTerminate);
      io.signals.off('SIGHUP', onTerminate);
      rl.close();
    }
  }

  /**
   * Readline keeps reading whatever the view reads and refreshes its line on every resize, so its key and resize
   * listeners step aside meanwhile; the view turns raw mode off and unrefs stdin when it leaves, so both come back.
   * Not rl.pause(): pausing process.stdin stops its reads a tick later, under a view that has just started reading.
   */
  async function handOver<T>(fn: () => Promise<T>): Promise<T> {
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

  return { output, run, requestExit: resolveExit, handOver };
}

/** Lines and end of input from readline, in order; an exit request overtakes whatever is queued. */
function inputQueue(rl: readline.Interface, exited: Promise<Exit>): { next(): Promise<Next> } {
  const queued: Next[] = [];
  let waiter: ((next: Next) => void) | null = null;
  const push = (next: Next) => {
    if (waiter) {
      const w = waiter;
      waiter = null;
      w(next);
    } else queued.push(next);
  };
  rl.on('line', (line) => push({ kind: 'line', line }));
  rl.on('close', () => push({ kind: 'eof' }));
  const exit = exited.then((how): Next => ({ kind: 'exit', ...how }));
  return {
    next: () => {
      const first = queued.shift();
      return Promise.race([exit, first ? Promise.resolve(first) : new Promise<Next>((resolve) => (waiter = resolve))]);
    },
  };
}

/** The prompt and the lines printed around it: at a terminal, a line printed while the prompt shows goes above it. */
function promptScreen(io: ReplIO, rl: readline.Interface) {
  let promptShown = false;
  rl.on('line', () => (promptShown = false));
  const messages = io.messageOutput ?? io.output;
  const write = (stream: Writable, line: string) => {
    if (io.interactive && promptShown && stream === io.output) {
      readline.clearLine(io.output, 0);
      readline.cursorTo(io.output, 0);
      io.output.write(`${line}\n`);
      rl.prompt(true);
    } else {
      stream.write(`${line}\n`);
    }
  };
  const output: SessionOutput = {
    data: (line) => write(io.output, line),
    message: (line) => write(messages, line),
    error: (line) => write(io.errorOutput, line),
  };
  return {
    output,
    messages,
    showPrompt: () => {
      if (io.interactive) {
        promptShown = true;
        rl.prompt();
      } else {
        // GNU readline prints the prompt even when stdin is a pipe; dropwatch's piped output has it, so ours does too.
        messages.write(PROMPT);
      }
    },
    promptGone: () => (promptShown = false),
  };
}
