// The live view's I/O shell: takes the terminal (alternate screen, Ink, keys, signals), diverts the session to the
// view, and gives everything back on every way out. Imported only when `--top` or `top` is used: Ink and React load here.
import ansiEscapes from 'ansi-escapes';
import { createElement as h } from 'react';
import { render, type Instance } from 'ink';
import type { BackendCapabilities, SourceInfo } from '../backend/types.js';
import type { Command } from '../engine/commands.js';
import { STOP_SIGNALS, type SignalSource } from '../process/signals.js';
import type { SessionOutput, SessionView } from '../engine/types.js';
import type { StopCause } from '../engine/session.js';
import type { Resolved } from '../symbols/kallsyms.js';
import { sources } from '../sources/index.js';
import type { WorkloadNames } from '../workload/types.js';
import { TopController, type TopFilter } from './controller.js';
import { locationLabel } from './layout.js';
import { formatChain } from '../output/format.js';
import { terminalRefusal, utf8Locale } from './terminal.js';
import { TopApp } from './view.js';

/** What the view needs of the Session. */
export interface TopSession {
  readonly monitoring: boolean;
  run(command: Command): Promise<'exit' | 'continue'>;
  stop(cause: StopCause): Promise<void>;
  divert(view: SessionView): () => void;
}

export interface TopIO {
  stdin: NodeJS.ReadableStream & { isTTY?: boolean; setRawMode?: (on: boolean) => unknown };
  stdout: NodeJS.WritableStream & { isTTY?: boolean };
  stderr: NodeJS.WritableStream;
  env: Readonly<Record<string, string | undefined>>;
  signals: SignalSource;
  /** Wall clock, ms. */
  now: () => number;
  /** Runs `fn` synchronously if the process exits while the view is up (a crash); returns its removal. */
  onExit: (fn: () => void) => () => void;
}

export interface TopOptions {
  session: TopSession;
  backend: { name: string; capabilities: BackendCapabilities };
  lookup: (pc: bigint) => Resolved | null;
  filter?: TopFilter;
  /** Names for the namespaces drops happened in, for the rows grouped by workload; absent: a namespace is its inode. */
  workloads?: WorkloadNames;
  /** The source table, for what the view says a backend lacks; the table of src/sources by default. */
  sources?: readonly SourceInfo[];
  io: TopIO;
  /** Where lines the view could not show go once it has closed: a failed start, losses reported at stop. */
  output: SessionOutput;
  /** How the user asked, for the error when there is no terminal. */
  asked: '--top' | 'top';
  intervalMs?: number;
}

/** 'quit' after the user left the view; 'not-started' when monitoring could not start (the reason was printed). */
export type TopResult = 'quit' | 'not-started';

export async function runTop(options: TopOptions): Promise<TopResult> {
  const { io, session } = options;
  const refusal = terminalRefusal(io, options.asked);
  if (refusal) throw refusal;
  const controller = newController(options);
  const said = new Said();
  const undivert = session.divert({ observer: controller.observer, output: said.relay(controller.output) });
  // Wrapped, so a quit without an error is told apart from one whose error is undefined.
  const quit = new Promise<{ failed: boolean; error: unknown }>((resolve) =>
    controller.onQuit((error) => resolve({ failed: error !== undefined, error })),
  );
  const onSignal = () => controller.quit();
  for (const s of STOP_SIGNALS) io.signals.on(s, onSignal);
  const screen = takeScreen(io);
  let instance: Instance | null = null;
  let startedHere = false;
  let result: TopResult = 'quit';
  try {
    instance = mountView(io, controller);
    if (!session.monitoring) {
      await session.run({ name: 'start' });
      startedHere = session.monitoring;
      if (!startedHere) return (result = 'not-started');
    }
    // "Issue Ctrl-C to stop monitoring" and the rest of start's chatter are not news inside the view.
    controller.setStatus(null);
    said.forget();
    const ended = await quit;
    if (ended.failed) throw ended.error;
    return result;
  } finally {
    for (const s of STOP_SIGNALS) io.signals.off(s, onSignal);
    if (instance) {
      instance.unmount();
      await instance.waitUntilExit().catch(() => {});
    }
    screen.restore();
    said.keep();
    try {
      if (startedHere) await session.stop('signal');
    } finally {
      undivert();
      // A failed start says why; a stop may report losses. Both are news after the view has gone.
      said.replay(options.output, result === 'not-started');
    }
  }
}

function newController(options: TopOptions): TopController {
  return new TopController({
    backend: options.backend.name,
    capabilities: options.backend.capabilities,
    sources: options.sources ?? sources(),
    ...(options.workloads ? { workloads: options.workloads } : {}),
    label: (drop) => locationLabel(drop, options.lookup),
    chainLabel: (frames) => formatChain(frames, options.lookup),
    now: options.io.now,
    ascii: !utf8Locale(options.io.env),
    ...(options.filter ? { filter: options.filter } : {}),
    ...(options.intervalMs === undefined ? {} : { intervalMs: options.intervalMs }),
  });
}

/**
 * Lines the session says while the view is up are its status. Those of the start and the stop are also kept, to
 * print after the view has closed: why a start failed, losses totalled at stop. Only then: a long run keeps nothing.
 */
class Said {
  private keeping = true;
  private readonly lines: { error: boolean; line: string }[] = [];

  /** The session's output while the view is up: to the view's status, and kept while keeping. */
  relay(status: Pick<SessionOutput, 'message' | 'error'>): SessionOutput {
    return {
      data: () => {},
      message: (line) => {
        if (this.keeping) this.lines.push({ error: false, line });
        status.message(line);
      },
      error: (line) => {
        if (this.keeping) this.lines.push({ error: true, line });
        status.error(line);
      },
    };
  }

  forget(): void {
    this.keeping = false;
    this.lines.length = 0;
  }

  keep(): void {
    this.keeping = true;
  }

  /** Prints what was kept: everything after a failed start, else only the errors. */
  replay(output: SessionOutput, all: boolean): void {
    for (const s of all ? this.lines : this.lines.filter((l) => l.error)) {
      if (s.error) output.error(s.line);
      else output.message(s.line);
    }
  }
}

/** Ink on the terminal. The view ends through the controller: an Ink exit of its own ends it too, and a render that
 * throws is rethrown as the bug it is. */
function mountView(io: TopIO, controller: TopController): Instance {
  const instance = render(h(TopApp, { controller, colour: io.env.NO_COLOR === undefined }), {
    stdout: io.stdout as NodeJS.WriteStream,
    stdin: io.stdin as NodeJS.ReadStream,
    stderr: io.stderr as NodeJS.WriteStream,
    exitOnCtrlC: false,
    patchConsole: false,
  });
  instance.waitUntilExit().then(
    () => controller.quit(),
    (err: unknown) => controller.quit(err ?? new Error('the view failed')),
  );
  return instance;
}

/** The alternate screen, so the user's screen comes back as it was; restore() also runs if the process exits. */
function takeScreen(io: TopIO): { restore(): void } {
  io.stdout.write(ansiEscapes.enterAlternativeScreen + ansiEscapes.clearViewport);
  let restored = false;
  let removeHook: () => void = () => {};
  const restore = () => {
    if (restored) return;
    restored = true;
    removeHook();
    io.stdin.setRawMode?.(false);
    io.stdout.write(ansiEscapes.cursorShow + ansiEscapes.exitAlternativeScreen);
  };
  removeHook = io.onExit(restore);
  return { restore };
}
