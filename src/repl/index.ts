// The REPL front end: reads commands with Node's readline (never blocking the loop), drives a Session, handles signals.
import * as readline from 'node:readline';
import type { Readable, Writable } from 'node:stream';
import { isExpected } from '../errors/index.js';
import { complete, parseCommand } from './commands.js';
import type { Session, SessionOutput } from './session.js';

export { Session } from './session.js';
export type {
  SessionOutput,
  SessionOptions,
  Renderer,
  Aggregator,
  Clock,
  DropObserver,
  DropPredicate,
  FilterCompiler,
} from './session.js';
export { parseCommand, helpText, complete } from './commands.js';
export type { Command } from './commands.js';

export const PROMPT = 'dropwatch> ';

export type SignalName = 'SIGINT' | 'SIGTERM' | 'SIGHUP';

/** The process's signals, or an EventEmitter in tests. */
export interface SignalSource {
  on(signal: SignalName, listener: () => void): unknown;
  off(signal: SignalName, listener: () => void): unknown;
}

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
  /** Runs until exit, end of input or a terminating signal; resolves to the exit code. */
  run(session: Session): Promise<number>;
  /** Ends the run from outside (e.g. stdout closed): stops monitoring, releases the backend. */
  requestExit(code: number): void;
}

type Next = { kind: 'line'; line: string } | { kind: 'eof' } | { kind: 'exit'; code: number };

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
  let promptShown = false;
  const lines: Next[] = [];
  let waiter: ((next: Next) => void) | null = null;
  let resolveExit: (code: number) => void = () => {};
  const exited = new Promise<number>((resolve) => (resolveExit = resolve));
  const exitRequested = () => exited.then((code) => ({ code }));

  const push = (next: Next) => {
    if (waiter) {
      const w = waiter;
      waiter = null;
      w(next);
    } else lines.push(next);
  };
  /** The next line or end of input, unless an exit is requested first. */
  const nextInput = (): Promise<Next> => {
    const queued = lines.shift();
    const line = queued ? Promise.resolve(queued) : new Promise<Next>((resolve) => (waiter = resolve));
    return Promise.race([exited.then((code): Next => ({ kind: 'exit', code })), line]);
  };
  const requestExit = (code: number) => resolveExit(code);

  rl.on('line', (line) => {
    promptShown = false;
    push({ kind: 'line', line });
  });
  rl.on('close', () => push({ kind: 'eof' }));

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
  const messages = io.messageOutput ?? io.output;
  const output: SessionOutput = {
    data: (line) => write(io.output, line),
    message: (line) => write(messages, line),
    error: (line) => write(io.errorOutput, line),
  };

  const showPrompt = () => {
    if (io.interactive) {
      promptShown = true;
      rl.prompt();
    } else {
      // GNU readline prints the prompt even when stdin is a pipe; dropwatch's piped output has it, so ours does too.
      messages.write(PROMPT);
    }
  };

  async function run(session: Session): Promise<number> {
    const onInterrupt = () => {
      if (session.monitoring) void session.stop('signal').catch(report);
      else requestExit(0);
    };
    const onTerminate = () => requestExit(0);
    const report = (err: unknown) => output.error(isExpected(err) ? err.message : String(err));
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
    let code = 0;
    try {
      for (;;) {
        showPrompt();
        const next = await nextInput();
        promptShown = false;
        if (next.kind === 'exit') {
          code = next.code;
          // Whatever the shutdown prints starts on its own line, not after the prompt.
          (io.interactive ? io.output : messages).write('\n');
          await session.shutdown('signal');
          break;
        }
        if (next.kind === 'eof') {
          if (!io.interactive) {
            // Piped input: end of input does not end a monitoring run; the limit or a signal does.
            const exit = await Promise.race([session.whenIdle().then(() => null), exitRequested()]);
            if (exit) code = exit.code;
          }
          output.message('Terminating dropwatch...');
          await session.shutdown('exit');
          break;
        }
        // GNU readline echoes a piped line after the prompt; dropwatch's logs show `dropwatch> start`, so ours do too.
        if (!io.interactive) messages.write(`${next.line}\n`);
        let command;
        try {
          command = parseCommand(next.line);
        } catch (err) {
          if (!isExpected(err)) throw err;
          output.error(err.message);
          continue;
        }
        if (!command) continue;
        if ((await session.run(command)) === 'exit') break;
        if (!io.interactive && command.name === 'start') {
          // Piped input waits, as dropwatch does, until this run ends before reading the next command.
          const exit = await Promise.race([session.whenIdle().then(() => null), exitRequested()]);
          if (exit) {
            code = exit.code;
            await session.shutdown('signal');
            break;
          }
        }
      }
      output.message('Shutting down ...');
    } finally {
      io.signals.off('SIGINT', onInterrupt);
      io.signals.off('SIGTERM', onTerminate);
      io.signals.off('SIGHUP', onTerminate);
      rl.close();
    }
    return code;
  }

  return {
    output,
    run,
    requestExit,
  };
}
