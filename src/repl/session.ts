// The monitoring state machine behind the prompt: runs parsed commands against a backend and prints what dropwatch prints.
import type {
  AlertMode,
  Backend,
  BackendEvent,
  DropField,
  PacketDrop,
  SummaryEntry,
  Stats,
  MonitorConfig,
} from '../backend/types.js';
import type { FlushResult, Overflow } from '../aggregate/index.js';
import { DropwatchError, KernelError, isExpected, strerror } from '../errors/index.js';
import type { Command } from './commands.js';
import { helpText } from './commands.js';
import { FIELDS, FLOW_FIELDS } from '../filter/index.js';

/** Where lines go. `data` carries drop reports; `message` dropwatch's chatter; `error` our one-line complaints. */
export interface SessionOutput {
  /** `reported`: the drops the text reports, so drops that never reach the reader can be counted. */
  data(line: string, reported?: Reported): void;
  message(line: string): void;
  error(line: string): void;
  /**
   * True while the reader of the drop reports is so far behind that more would only pile up in memory: the session then
   * counts drops instead of printing them, and reports them as lost (UNWRITTEN).
   */
  congested?(): boolean;
}

/**
 * The drops a piece of output reports: `drops` in all, and where one drop's text per entry ends when the piece holds
 * several (string index just past it), so a piece cut short can be told apart drop by drop.
 */
export interface Reported {
  drops: number;
  ends?: readonly number[];
}

/** Where drops that were counted but could not be printed, because the output fell behind, are reported lost. */
export const UNWRITTEN = 'dropwatch output';

/** Packet blocks written at once; it keeps the congestion check current in a batch of thousands of packets. */
const BLOCKS_PER_WRITE = 1024;

/** Turns values into lines; the CLI picks text or JSON and the symbol lookup method. */
export interface Renderer {
  summary(entry: SummaryEntry): string;
  packet(packet: PacketDrop): string[];
  config(config: MonitorConfig): string[];
  stats(stats: Stats): string[];
  /** Locations that did not fit in the aggregator this interval. */
  overflow(overflow: Overflow): string;
  /** One loss report, printed as it comes. */
  lost(count: number, where: string): string;
  /** A place's total at stop, worded apart from lost() so the two are never summed together. */
  lostTotal(count: number, where: string): string;
}

/** Per-interval summing, bounded; the session owns the timer. */
export interface Aggregator {
  add(entries: readonly SummaryEntry[]): void;
  flush(): FlushResult;
}

/** Sees every drop that passed the filter and every loss, whatever gets printed: metrics, JSON loss objects. */
export interface DropObserver {
  drops?(entries: readonly SummaryEntry[]): void;
  packet?(packet: PacketDrop): void;
  lost?(count: number, where: string): void;
  overflow?(overflow: Overflow): void;
  /** Every interval's aggregated lines, the very ones the output renders; empty intervals too, so it can keep time. */
  interval?(result: FlushResult): void;
}

/** A full-screen view while it owns the terminal: the session's lines go to it, and it observes every drop. */
export interface SessionView {
  output: SessionOutput;
  observer: DropObserver;
}

export interface Clock {
  setInterval(fn: () => void, ms: number): unknown;
  clearInterval(handle: unknown): void;
}

export type DropPredicate = (drop: SummaryEntry | PacketDrop) => boolean;

export interface FilterCompiler {
  /** Compiles an expression (throws DropwatchError E_BAD_INPUT) and applies it; null clears it. Returns what to say. */
  apply(expression: string | null): Promise<string>;
  /** One line when the filter in force can never match (or lets every drop through) as things are; else null. */
  check?(): Promise<string | null>;
  /** One line refusing a switch to `mode` when the filter in force reads a field that mode cannot know; else null. */
  refuseMode?(mode: AlertMode): Promise<string | null>;
  /** One line refusing to start when the filter in force reads a field the current mode cannot know; else null. */
  refuseStart?(): Promise<string | null>;
}

export interface SessionOptions {
  backend: Backend;
  renderer: Renderer;
  aggregator: Aggregator;
  output: SessionOutput;
  clock: Clock;
  /** Called before the first summary is rendered, so symbol loading can run off the prompt path. */
  ready?: () => Promise<void>;
  filter?: FilterCompiler;
  /** The user-space predicate currently in force (set by the filter compiler). */
  predicate?: () => DropPredicate | null;
  alertLimit?: number;
  /** Sample call chains from the first start (as `set stack true`). */
  stack?: boolean;
  intervalMs?: number;
  observer?: DropObserver;
  /** Runs the full-screen view (`top`) until the user leaves it. */
  view?: () => Promise<void>;
}

const EBUSY = 16;

type State = 'idle' | 'starting' | 'monitoring' | 'stopping';
export type StopCause = 'signal' | 'limit' | 'command' | 'exit';

export class Session {
  private state: State = 'idle';
  private alertLimit: number;
  private alertCount = 0;
  private sw = false;
  private stack = false;
  private hw = false;
  private timer: unknown = null;
  private stopping: Promise<void> | null = null;
  private monitoringEnded: Promise<void> = Promise.resolve();
  private endMonitoring: () => void = () => {};
  private lostSinceStart = new Map<string, number>();
  private readonly intervalMs: number;
  /** Packet blocks rendered from the backend's current delivery, not yet written. */
  private pendingBlocks: string[] = [];
  /** Where each pending block ends in their joined text. */
  private pendingEnds: number[] = [];
  private writeQueued = false;
  private readonly writePending = (): void => {
    this.writeQueued = false;
    if (this.pendingBlocks.length === 0) return;
    const text = this.pendingBlocks.join('\n');
    const reported = { drops: this.pendingBlocks.length, ends: this.pendingEnds };
    this.pendingBlocks = [];
    this.pendingEnds = [];
    this.sink.data(text, reported);
  };
  /** Drops not printed because the output was congested, and how many of them have been reported lost. */
  private unwritten = 0;
  private unwrittenReported = 0;
  /** opts.output, but pending packet blocks are written before anything else, so lines keep their order. */
  private readonly output: SessionOutput;
  private diverted: SessionView | null = null;
  /** opts.observer and the view's: kept as an array so a packet storm allocates nothing per drop. */
  private observers: DropObserver[];
  /** Where lines go now: the view's output while one is up. */
  private get sink(): SessionOutput {
    return this.diverted?.output ?? this.opts.output;
  }

  constructor(private readonly opts: SessionOptions) {
    this.alertLimit = opts.alertLimit ?? 0;
    this.stack = opts.stack ?? false;
    this.intervalMs = opts.intervalMs ?? 1000;
    this.observers = opts.observer ? [opts.observer] : [];
    this.output = {
      data: (line, reported) => {
        this.writePending();
        this.sink.data(line, reported);
      },
      message: (line) => {
        this.writePending();
        this.sink.message(line);
      },
      error: (line) => {
        this.writePending();
        this.sink.error(line);
      },
    };
    opts.backend.onEvent((event) => this.onEvent(event));
  }

  get monitoring(): boolean {
    return this.state === 'monitoring' || this.state === 'starting';
  }

  /** Sends lines and drops to `view` instead of the output until the returned function is called. */
  divert(view: SessionView): () => void {
    this.writePending();
    this.diverted = view;
    this.observers = [...(this.opts.observer ? [this.opts.observer] : []), view.observer];
    return () => {
      if (this.diverted !== view) return;
      this.writePending();
      this.diverted = null;
      this.observers = this.opts.observer ? [this.opts.observer] : [];
    };
  }

  /** Resolves when the current monitoring run (if any) has fully stopped. */
  whenIdle(): Promise<void> {
    return this.monitoringEnded;
  }

  /** Runs one command. Resolves to 'exit' when the session should end. Never rejects for expected errors. */
  async run(command: Command): Promise<'exit' | 'continue'> {
    try {
      return await this.dispatch(command);
    } catch (err) {
      if (!isExpected(err)) throw err;
      this.output.error(err.message);
      return 'continue';
    }
  }

  private async dispatch(command: Command): Promise<'exit' | 'continue'> {
    const { backend, renderer } = this.opts;
    const output = this.output;
    switch (command.name) {
      case 'help':
        for (const line of helpText(this.backendNotes())) output.message(line);
        return 'continue';
      case 'exit':
        await this.shutdown('exit');
        return 'exit';
      case 'start':
        await this.start();
        return 'continue';
      case 'stop':
        if (!this.monitoring) {
          output.message('Deactivation requested, turning off monitoring');
          // Still asked of the kernel, as dropwatch does: it is how a run killed while monitoring is recovered.
          try {
            await backend.stop();
            output.message('Got a stop message');
          } catch (err) {
            if (!(err instanceof KernelError)) throw err;
            output.message(`Stop request failed, error: ${strerror(err.errno)}`);
          }
          return 'continue';
        }
        await this.stop('command');
        return 'continue';
      case 'show': {
        output.message('Getting existing configuration');
        const config = await this.kernelCall('config', () => backend.getConfig());
        if (config) for (const line of renderer.config(config.value)) output.message(line);
        return 'continue';
      }
      case 'stats': {
        output.message('Getting statistics');
        const stats = await this.kernelCall('stats', () => backend.getStats());
        if (stats) for (const line of renderer.stats(stats.value)) output.message(line);
        return 'continue';
      }
      case 'set':
        await this.set(command);
        return 'continue';
      case 'top':
        if (!this.opts.view) throw new DropwatchError('E_UNSUPPORTED', 'the live view is not available here');
        await this.opts.view();
        return 'continue';
    }
  }

  private backendNotes(): string[] {
    const { name, capabilities } = this.opts.backend;
    const { settings, modes, fields } = capabilities;
    const notes: string[] = [];
    notes.push(`Backend: ${name}. When neither sw nor hw is set, software drops are monitored.`);
    if (!settings.hw) notes.push('This backend sees software drops only: set hw needs NET_DM.');
    if (!settings.trunc || !settings.queue)
      notes.push('This backend captures no packet payload: set trunc and set queue need NET_DM.');
    if (modes.includes('packet') && !fields.packet.includes('payload'))
      notes.push(`Packet mode here reports ${describeFields(fields.packet)} for each drop, without the packet.`);
    if (fields.packet.includes('flow'))
      notes.push(
        'Packet mode ends each drop with its flow, e.g. "flow: IP 10.0.0.1.40001 > 10.0.0.2.9: UDP, length 1"; ' +
          'JSON has it as l3, src, dst, l4, sport, dport.',
      );
    notes.push(filterFieldsNote(capabilities));
    return notes;
  }

  private async set(command: Extract<Command, { name: 'set' }>): Promise<void> {
    const { backend } = this.opts;
    const output = this.output;
    switch (command.key) {
      case 'alertlimit':
        this.alertLimit = command.value;
        output.message(`setting alert capture limit to ${command.value}`);
        return;
      case 'sw':
        this.sw = command.value;
        output.message(`setting software drops monitoring to ${command.value ? 1 : 0}`);
        return;
      case 'hw':
        if (command.value && !backend.capabilities.settings.hw)
          throw new DropwatchError(
            'E_UNSUPPORTED',
            `hardware drops are reported only by NET_DM (devlink traps); the ${backend.name} backend sees software drops only`,
          );
        this.hw = command.value;
        output.message(`setting hardware drops monitoring to ${command.value ? 1 : 0}`);
        return;
      case 'alertmode': {
        if (!backend.capabilities.modes.includes(command.value))
          throw new DropwatchError('E_UNSUPPORTED', `${command.value} mode is not available on this backend`);
        // Refused rather than clearing the filter: the user decides what to report instead.
        const refused = await this.opts.filter?.refuseMode?.(command.value);
        if (refused) throw new DropwatchError('E_UNSUPPORTED', refused);
        return this.configure({ alertMode: command.value }, 'Setting alert mode', 'Alert mode successfully set');
      }
      case 'trunc':
        if (!backend.capabilities.settings.trunc)
          throw new DropwatchError(
            'E_UNSUPPORTED',
            `truncation applies to NET_DM packet payloads; the ${backend.name} backend captures no payload`,
          );
        return this.configure(
          { truncLen: command.value },
          `Setting truncation length to ${command.value}`,
          'Truncation length successfully set',
        );
      case 'queue':
        if (!backend.capabilities.settings.queue)
          throw new DropwatchError(
            'E_UNSUPPORTED',
            `the queue length is NET_DM's per-CPU packet queue; the ${backend.name} backend has none`,
          );
        return this.configure(
          { queueLen: command.value },
          `Setting queue length to ${command.value}`,
          'Queue length successfully set',
        );
      case 'stack':
        if (command.value && !backend.capabilities.fields.summary.includes('stack'))
          throw new DropwatchError(
            'E_UNSUPPORTED',
            `the ${backend.name} backend reports no call chains; the tracefs backend does (-b tracefs)`,
          );
        this.stack = command.value;
        output.message(
          `setting call chain sampling to ${command.value ? 1 : 0}${this.monitoring ? ' (from the next start)' : ''}`,
        );
        return;
      case 'filter': {
        if (!this.opts.filter) throw new DropwatchError('E_UNSUPPORTED', 'filters are not available in this build');
        output.message(await this.opts.filter.apply(command.value));
        // While idle the mode may still change; start checks then.
        if (this.monitoring) await this.checkFilter();
        return;
      }
    }
  }

  /** Says so when the filter cannot do what it reads as (a field this source never reports, symbols hidden). */
  private async checkFilter(): Promise<void> {
    const line = await this.opts.filter?.check?.();
    if (line) this.output.error(line);
  }

  /** A config change with dropwatch's before and after lines; EBUSY (while monitoring) also says what to do. */
  private async configure(change: Partial<MonitorConfig>, doing: string, done: string): Promise<void> {
    this.output.message(doing);
    if (await this.kernelCall('config', () => this.opts.backend.setConfig(change))) this.output.message(done);
  }

  /** Runs a kernel request; on KernelError prints dropwatch's failure line and returns null. */
  private async kernelCall<T>(kind: 'config' | 'stats', call: () => Promise<T>): Promise<{ value: T } | null> {
    try {
      return { value: await call() };
    } catch (err) {
      if (!(err instanceof KernelError)) throw err;
      let line = `Failed ${kind} request, error: ${strerror(err.errno)}`;
      if (err.extack) line += ` (${err.extack})`;
      this.output.message(line);
      if (err.errno === EBUSY) this.output.error('monitoring must be stopped first (type stop), then set it again');
      return null;
    }
  }

  private async start(): Promise<void> {
    const { backend } = this.opts;
    const output = this.output;
    if (this.monitoring) throw new DropwatchError('E_STATE', 'monitoring is already active (type stop to end it)');
    if (this.state === 'stopping') await this.stopping;
    // The mode can change behind our back (NET_DM's is the kernel's, shared by every client): checked here too.
    const refused = await this.opts.filter?.refuseStart?.();
    if (refused) throw new DropwatchError('E_UNSUPPORTED', refused);
    output.message('Enabling monitoring...');
    this.state = 'starting';
    this.alertCount = 0;
    this.lostSinceStart.clear();
    try {
      await backend.start({ sw: this.sw, hw: this.hw, stack: this.stack });
    } catch (err) {
      this.state = 'idle';
      if (err instanceof KernelError) {
        let line = `Failed activation request, error: ${strerror(err.errno)}`;
        if (err.extack) line += ` (${err.extack})`;
        output.message(line);
        return;
      }
      throw err;
    }
    if (this.opts.ready) await this.opts.ready();
    // After ready(): whether symbols can be named is known only once the table is loaded.
    await this.checkFilter();
    this.monitoringEnded = new Promise((resolve) => (this.endMonitoring = resolve));
    this.state = 'monitoring';
    output.message('Kernel monitoring activated.');
    output.message('Issue Ctrl-C to stop monitoring');
    this.timer = this.opts.clock.setInterval(() => this.flush(), this.intervalMs);
  }

  /** Stops monitoring; safe to call in any state and more than once. */
  stop(cause: StopCause): Promise<void> {
    if (this.stopping) return this.stopping;
    if (this.state !== 'monitoring' && this.state !== 'starting') return Promise.resolve();
    this.stopping = this.doStop(cause).finally(() => {
      this.stopping = null;
    });
    return this.stopping;
  }

  private async doStop(cause: StopCause): Promise<void> {
    const { backend } = this.opts;
    const output = this.output;
    // A stop requested while start is still in flight waits for it, so the kernel is never left monitoring.
    while (this.state === 'starting') await new Promise((r) => setImmediate(r));
    if (this.state !== 'monitoring') return;
    this.state = 'stopping';
    // dropwatch says this for the limit and the stop command; on Ctrl-C its next line is the stop ack.
    if (cause === 'limit' || cause === 'command') output.message('Deactivation requested, turning off monitoring');
    this.opts.clock.clearInterval(this.timer);
    this.timer = null;
    let failure: { error: unknown } | null = null;
    try {
      await backend.stop();
    } catch (error) {
      failure = { error };
    }
    // Whatever the backend delivered up to the stop is still counted and shown.
    this.flush();
    if (failure?.error instanceof KernelError) {
      output.message(`Stop request failed, error: ${strerror(failure.error.errno)}`);
    } else if (failure) {
      this.finishMonitoring();
      throw failure.error;
    } else {
      output.message('Got a stop message');
    }
    for (const [where, count] of this.lostSinceStart) output.error(this.opts.renderer.lostTotal(count, where));
    this.finishMonitoring();
  }

  private finishMonitoring(): void {
    this.state = 'idle';
    this.endMonitoring();
  }

  /** Stops monitoring if needed and releases the backend. */
  async shutdown(cause: StopCause): Promise<void> {
    try {
      await this.stop(cause);
    } finally {
      await this.opts.backend.close();
    }
  }

  private onEvent(event: BackendEvent): void {
    if (this.state !== 'monitoring' && this.state !== 'stopping') return;
    switch (event.kind) {
      case 'summary': {
        const pass = this.opts.predicate?.();
        const entries = pass ? event.entries.filter(pass) : event.entries;
        for (const o of this.observers) o.drops?.(entries);
        this.opts.aggregator.add(entries);
        return;
      }
      case 'packet': {
        const pass = this.opts.predicate?.();
        if (pass && !pass(event.packet)) return;
        for (const o of this.observers) o.packet?.(event.packet);
        if (this.limitReached()) return;
        if (this.sink.congested?.()) {
          this.unwritten++;
          return;
        }
        // One write per receive batch, not per block or line: a write(2) each was most of packet mode's cost per alert.
        const block = this.opts.renderer.packet(event.packet).join('\n');
        const start = this.pendingBlocks.length === 0 ? 0 : this.pendingEnds.at(-1)! + 1;
        this.pendingEnds.push(start + block.length);
        this.pendingBlocks.push(block);
        if (this.pendingBlocks.length >= BLOCKS_PER_WRITE) this.writePending();
        else if (!this.writeQueued) {
          this.writeQueued = true;
          queueMicrotask(this.writePending);
        }
        this.countAlert();
        return;
      }
      case 'lost':
        this.lostSinceStart.set(event.where, (this.lostSinceStart.get(event.where) ?? 0) + event.count);
        for (const o of this.observers) o.lost?.(event.count, event.where);
        this.output.error(this.opts.renderer.lost(event.count, event.where));
        return;
    }
  }

  private flush(): void {
    const result = this.opts.aggregator.flush();
    const { lines, overflow } = result;
    for (const o of this.observers) {
      if (overflow) o.overflow?.(overflow);
      o.interval?.(result);
    }
    this.reportUnwritten();
    if (this.limitReached()) return;
    if (lines.length > 0 && this.sink.congested?.()) {
      for (const entry of lines) this.unwritten += entry.count;
      this.reportUnwritten();
    } else
      for (const entry of lines) {
        this.output.data(this.opts.renderer.summary(entry), { drops: entry.count });
        this.countAlert();
      }
    if (overflow) this.output.error(this.opts.renderer.overflow(overflow));
  }

  /** Drops the output could not take since the last report, as one loss: at most once an interval, and at stop. */
  private reportUnwritten(): void {
    const count = this.unwritten - this.unwrittenReported;
    if (count === 0) return;
    this.unwrittenReported = this.unwritten;
    this.onEvent({ kind: 'lost', count, where: UNWRITTEN });
  }

  private limitReached(): boolean {
    return this.alertLimit > 0 && this.alertCount >= this.alertLimit;
  }

  /** dropwatch counts every printed entry and deactivates when the count reaches the limit. */
  private countAlert(): void {
    this.alertCount++;
    if (this.alertLimit > 0 && this.alertCount === this.alertLimit) {
      this.output.message('Alert limit reached, deactivating!');
      // After the current batch, as dropwatch finishes printing the alert it is in before deactivating.
      queueMicrotask(() => void this.stop('limit').catch((err: unknown) => this.output.error(String(err))));
    }
  }
}

const FIELD_WORDS: Partial<Record<DropField, string>> = {
  reason: 'reason',
  protocol: 'protocol',
  time: 'time',
  device: 'input device',
  trap: 'trap',
  stack: 'call chain',
  flow: 'flow',
  process: 'process',
};

/** "location, reason, protocol and time": what a packet-mode drop carries, in words. */
/** The filter's fields, and where this backend knows the flow ones (set filter refuses them elsewhere). */
function filterFieldsNote({ modes, fields }: Backend['capabilities']): string {
  const always = FIELDS.filter((f) => !FLOW_FIELDS.includes(f)).join(', ');
  const flow = FLOW_FIELDS.join(', ');
  const flowIn = modes.filter((m) => fields[m].includes('flow'));
  return flowIn.length > 0
    ? `Filter fields: ${always}; in ${flowIn.join(' and ')} mode also ${flow} (e.g. dport == 53 && dst in 10.0.0.0/8).`
    : `Filter fields: ${always}; the flow fields (${flow}) need NET_DM's packet mode.`;
}

function describeFields(fields: readonly DropField[]): string {
  const words = ['location', ...fields.flatMap((f) => FIELD_WORDS[f] ?? [])];
  return words.length === 1 ? words[0]! : `${words.slice(0, -1).join(', ')} and ${words.at(-1)!}`;
}
