// The monitoring session: runs dropwatch's commands against a backend, routes its events through the filter to the
// observers, the aggregator and the output, and prints what dropwatch prints.
import type { AlertMode, Backend, BackendEvent, MonitorConfig, SourceInfo } from '../backend/types.js';
import { CapabilityWords } from '../backend/words.js';
import { DEFAULT_MAX_KEYS } from '../aggregate/index.js';
import { groupLines, packetEntry, type CgroupLookup, type NamesLookup } from '../aggregate/group.js';
import { DEFAULT_BY, isDefaultBy, NAMED_KEYS, unknownKeys, type ByKey } from '../aggregate/keys.js';
import { DropwatchError, KernelError, isExpected, strerror } from '../errors/index.js';
import type { Command } from './commands.js';
import { helpText } from './commands.js';
import { Delivery } from './delivery.js';
import { helpNotes } from './notes.js';
import type {
  Aggregator,
  Clock,
  DropObserver,
  DropPredicate,
  FilterCompiler,
  Renderer,
  SessionOutput,
  SessionView,
  WorkloadSource,
} from './types.js';
import { UNWRITTEN } from './types.js';

export interface SessionOptions {
  backend: Backend;
  renderer: Renderer;
  aggregator: Aggregator;
  output: SessionOutput;
  clock: Clock;
  /** The source table, so a refusal can say which source has what this one lacks. */
  sources?: readonly SourceInfo[];
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
  /** What summary lines are grouped by from the start (--by); by location, dropwatch's line, when absent. */
  by?: readonly ByKey[];
  /** The run's names for network namespaces, made when a key or filter first asks for them. */
  workloads?: WorkloadSource;
  /** Why summary lines cannot be grouped in this run (JSON output); absent when they can. */
  noGrouping?: string;
  /** Most grouped lines an interval shows; the drops of the rest are one overflow line. */
  maxLines?: number;
}

const EBUSY = 16;

type State = 'idle' | 'starting' | 'monitoring' | 'stopping';
export type StopCause = 'signal' | 'limit' | 'command' | 'exit';
type SetCommand = Extract<Command, { name: 'set' }>;

export class Session {
  private state: State = 'idle';
  private alertLimit: number;
  private alertCount = 0;
  private sw = false;
  private stack = false;
  /** Whether the run being monitored samples call chains (`stack` applies from the next start). */
  private stackInRun = false;
  private hw = false;
  private timer: unknown = null;
  private stopping: Promise<void> | null = null;
  private monitoringEnded: Promise<void> = Promise.resolve();
  private endMonitoring: () => void = () => {};
  private lostSinceStart = new Map<string, number>();
  private readonly intervalMs: number;
  private readonly delivery: Delivery;
  private readonly words: CapabilityWords;
  private by: readonly ByKey[];

  constructor(private readonly opts: SessionOptions) {
    this.alertLimit = opts.alertLimit ?? 0;
    this.by = opts.by ?? DEFAULT_BY;
    this.stack = opts.stack ?? false;
    this.intervalMs = opts.intervalMs ?? 1000;
    this.delivery = new Delivery(opts.output, opts.observer);
    const { name, capabilities } = opts.backend;
    this.words = new CapabilityWords({ name, capabilities, sources: opts.sources ?? [] });
    opts.backend.onEvent((event) => this.onEvent(event));
  }

  /** Where lines go, in order with the packet blocks still pending. */
  private get output(): SessionOutput {
    return this.delivery.output;
  }

  get monitoring(): boolean {
    return this.state === 'monitoring' || this.state === 'starting';
  }

  /** Sends lines and drops to `view` instead of the output until the returned function is called. */
  divert(view: SessionView): () => void {
    return this.delivery.divert(view);
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
    switch (command.name) {
      case 'help':
        for (const line of helpText(helpNotes(this.opts.backend.capabilities, this.words))) this.output.message(line);
        return 'continue';
      case 'exit':
        await this.shutdown('exit');
        return 'exit';
      case 'start':
        await this.start();
        return 'continue';
      case 'stop':
        await (this.monitoring ? this.stop('command') : this.stopIdle());
        return 'continue';
      case 'show':
        await this.show();
        return 'continue';
      case 'stats':
        await this.stats();
        return 'continue';
      case 'set':
        await this.set(command);
        return 'continue';
      case 'top':
        if (!this.opts.view) throw new DropwatchError('E_UNSUPPORTED', 'the live view is not available here');
        await this.opts.view();
        return 'continue';
    }
  }

  /** `stop` while idle is still asked of the kernel, as dropwatch does: it recovers a run killed while monitoring. */
  private async stopIdle(): Promise<void> {
    this.output.message('Deactivation requested, turning off monitoring');
    try {
      await this.opts.backend.stop();
      this.output.message('Got a stop message');
    } catch (err) {
      if (!(err instanceof KernelError)) throw err;
      this.output.message(`Stop request failed, error: ${strerror(err.errno)}`);
    }
  }

  private async show(): Promise<void> {
    this.output.message('Getting existing configuration');
    const config = await this.kernelCall('config', () => this.opts.backend.getConfig());
    if (config) for (const line of this.opts.renderer.config(config.value)) this.output.message(line);
    // After dropwatch's own lines, which stay as they are: these settings are ours.
    this.output.message(`Call chain sampling: ${this.stackSetting()}`);
    this.output.message(`Summary lines grouped by: ${this.by.join(', ')}`);
  }

  /** `on`, `off`, the change waiting for the next start, or why this backend has none. */
  private stackSetting(): string {
    if (!this.opts.backend.capabilities.fields.summary.includes('stack'))
      return `not available (${this.words.noStacks()})`;
    const word = (on: boolean) => (on ? 'on' : 'off');
    if (this.monitoring && this.stackInRun !== this.stack)
      return `${word(this.stack)} from the next start (${word(this.stackInRun)} now)`;
    return word(this.stack);
  }

  private async stats(): Promise<void> {
    this.output.message('Getting statistics');
    const stats = await this.kernelCall('stats', () => this.opts.backend.getStats());
    if (stats) for (const line of this.opts.renderer.stats(stats.value)) this.output.message(line);
  }

  private async set(command: SetCommand): Promise<void> {
    const { settings, modes, fields } = this.opts.backend.capabilities;
    const refuse = (why: string) => new DropwatchError('E_UNSUPPORTED', why);
    const say = (line: string) => this.output.message(line);
    switch (command.key) {
      case 'alertlimit':
        this.alertLimit = command.value;
        return say(`setting alert capture limit to ${command.value}`);
      case 'sw':
        this.sw = command.value;
        return say(`setting software drops monitoring to ${command.value ? 1 : 0}`);
      case 'hw':
        if (command.value && !settings.hw) throw refuse(this.words.noHardware());
        this.hw = command.value;
        return say(`setting hardware drops monitoring to ${command.value ? 1 : 0}`);
      case 'alertmode': {
        if (!modes.includes(command.value)) throw refuse(`${command.value} mode is not available on this backend`);
        // Refused rather than clearing the filter: the user decides what to report instead.
        const refused = (await this.opts.filter?.refuseMode?.(command.value)) ?? this.byRefusesMode(command.value);
        if (refused) throw refuse(refused);
        return this.configure({ alertMode: command.value }, 'Setting alert mode', 'Alert mode successfully set');
      }
      case 'trunc':
        if (!settings.trunc) throw refuse(this.words.noTruncation());
        return this.configure(
          { truncLen: command.value },
          `Setting truncation length to ${command.value}`,
          'Truncation length successfully set',
        );
      case 'queue':
        if (!settings.queue) throw refuse(this.words.noQueue());
        return this.configure(
          { queueLen: command.value },
          `Setting queue length to ${command.value}`,
          'Queue length successfully set',
        );
      case 'stack':
        if (command.value && !fields.summary.includes('stack')) throw refuse(this.words.noStacks());
        this.stack = command.value;
        return say(
          `setting call chain sampling to ${command.value ? 1 : 0}${this.monitoring ? ' (from the next start)' : ''}`,
        );
      case 'filter':
        return this.setFilter(command.value);
      case 'by':
        return this.setBy(command.value);
    }
  }

  /**
   * Groups lines by `keys` from the next interval on (in packet mode, the packets counted into lines); refused for
   * keys this source cannot know in the mode in force.
   */
  private async setBy(keys: readonly ByKey[]): Promise<void> {
    if (!isDefaultBy(keys)) {
      if (this.opts.noGrouping) throw new DropwatchError('E_UNSUPPORTED', `by not set: ${this.opts.noGrouping}`);
      const mode = (await this.opts.backend.getConfig()).alertMode;
      const unknown = unknownKeys(keys, this.opts.backend.capabilities.fields[mode]);
      if (unknown.length > 0)
        throw new DropwatchError('E_UNSUPPORTED', `by not set: ${this.words.notInMode(unknown, mode)}`);
      if (keys.some((k) => NAMED_KEYS.includes(k))) await this.opts.workloads?.need();
    }
    this.by = keys;
    this.output.message(`setting summary lines grouped by ${keys.join(', ')}`);
  }

  /** Why the grouping in force cannot follow a switch to `mode` (a key that mode does not know), or null. */
  private byRefusesMode(mode: AlertMode): string | null {
    if (isDefaultBy(this.by)) return null;
    const unknown = unknownKeys(this.by, this.opts.backend.capabilities.fields[mode]);
    if (unknown.length === 0) return null;
    return `alert mode not set: lines are grouped by ${this.by.join(', ')}: ${this.words.notInMode(unknown, mode)}; set by location first`;
  }

  private async setFilter(expression: string | null): Promise<void> {
    if (!this.opts.filter) throw new DropwatchError('E_UNSUPPORTED', 'filters are not available in this build');
    this.output.message(await this.opts.filter.apply(expression));
    // While idle the mode may still change; start checks then.
    if (this.monitoring) await this.checkFilter();
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
      this.output.message(failureLine(kind, err));
      if (err.errno === EBUSY) this.output.error('monitoring must be stopped first (type stop), then set it again');
      return null;
    }
  }

  private async start(): Promise<void> {
    if (this.monitoring) throw new DropwatchError('E_STATE', 'monitoring is already active (type stop to end it)');
    if (this.state === 'stopping') await this.stopping;
    // The mode can change behind our back (NET_DM's is the kernel's, shared by every client): checked here too.
    const refused = await this.opts.filter?.refuseStart?.();
    if (refused) throw new DropwatchError('E_UNSUPPORTED', refused);
    this.output.message('Enabling monitoring...');
    this.state = 'starting';
    this.alertCount = 0;
    this.lostSinceStart.clear();
    try {
      await this.opts.backend.start({ sw: this.sw, hw: this.hw, stack: this.stack });
      this.stackInRun = this.stack;
    } catch (err) {
      this.state = 'idle';
      if (!(err instanceof KernelError)) throw err;
      this.output.message(failureLine('activation', err));
      return;
    }
    if (this.opts.ready) await this.opts.ready();
    // After ready(): whether symbols can be named is known only once the table is loaded.
    await this.checkFilter();
    this.monitoringEnded = new Promise((resolve) => (this.endMonitoring = resolve));
    this.state = 'monitoring';
    this.output.message('Kernel monitoring activated.');
    this.output.message('Issue Ctrl-C to stop monitoring');
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
    // A stop requested while start is still in flight waits for it, so the kernel is never left monitoring.
    while (this.state === 'starting') await new Promise((r) => setImmediate(r));
    if (this.state !== 'monitoring') return;
    this.state = 'stopping';
    // dropwatch says this for the limit and the stop command; on Ctrl-C its next line is the stop ack.
    if (cause === 'limit' || cause === 'command') this.output.message('Deactivation requested, turning off monitoring');
    this.opts.clock.clearInterval(this.timer);
    this.timer = null;
    let failure: { error: unknown } | null = null;
    try {
      await this.opts.backend.stop();
    } catch (error) {
      failure = { error };
    }
    // Whatever the backend delivered up to the stop is still counted and shown.
    this.flush();
    if (failure?.error instanceof KernelError) {
      this.output.message(`Stop request failed, error: ${strerror(failure.error.errno)}`);
    } else if (failure) {
      this.finishMonitoring();
      throw failure.error;
    } else {
      this.output.message('Got a stop message');
    }
    for (const [where, count] of this.lostSinceStart) this.output.error(this.opts.renderer.lostTotal(count, where));
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
        const entries = pass ? event.entries.flatMap((e) => pass.summary(e) ?? []) : event.entries;
        for (const o of this.delivery.observers) o.drops?.(entries);
        this.opts.aggregator.add(entries);
        return;
      }
      case 'packet': {
        const pass = this.opts.predicate?.();
        if (pass && !pass.packet(event.packet)) return;
        for (const o of this.delivery.observers) o.packet?.(event.packet);
        // Grouped: counted into the interval's lines rather than printed one by one.
        if (!isDefaultBy(this.by)) return this.opts.aggregator.add([packetEntry(event.packet)]);
        if (this.limitReached()) return;
        if (this.delivery.congested()) return this.delivery.skip(1);
        this.delivery.packet(this.opts.renderer.packet(event.packet).join('\n'));
        this.countAlert();
        return;
      }
      case 'lost':
        this.lostSinceStart.set(event.where, (this.lostSinceStart.get(event.where) ?? 0) + event.count);
        for (const o of this.delivery.observers) o.lost?.(event.count, event.where);
        this.output.error(this.opts.renderer.lost(event.count, event.where));
        return;
    }
  }

  private flush(): void {
    const result = this.opts.aggregator.flush();
    const { lines, overflow } = result;
    for (const o of this.delivery.observers) {
      if (overflow) o.overflow?.(overflow);
      o.interval?.(result);
    }
    this.reportUnwritten();
    if (this.limitReached()) return;
    const grouped = isDefaultBy(this.by)
      ? null
      : groupLines(lines, this.by, this.names(), this.maxLines, this.cgroups());
    const shown = grouped?.lines ?? lines;
    if (shown.length > 0 && this.delivery.congested()) {
      for (const entry of shown) this.delivery.skip(entry.count);
      this.reportUnwritten();
    } else
      for (const entry of shown) {
        this.output.data(this.opts.renderer.summary(entry), { drops: entry.count });
        this.countAlert();
      }
    if (overflow) this.output.error(this.opts.renderer.overflow(overflow));
    if (grouped?.overflow) this.output.error(this.opts.renderer.overflow(grouped.overflow));
  }

  private get maxLines(): number {
    return this.opts.maxLines ?? DEFAULT_MAX_KEYS;
  }

  /** The namespaces' names as known now, or null before any were asked for. */
  private names(): NamesLookup {
    const names = this.opts.workloads?.current();
    return names ? (netns) => names.lookup(netns) : null;
  }

  /** The tasks' cgroups as known now, or null where the run resolves none. */
  private cgroups(): CgroupLookup {
    const names = this.opts.workloads?.current();
    return names?.cgroup ? (id) => names.cgroup!(id) : null;
  }

  /** Drops the output could not take since the last report, as one loss: at most once an interval, and at stop. */
  private reportUnwritten(): void {
    const count = this.delivery.takeSkipped();
    if (count > 0) this.onEvent({ kind: 'lost', count, where: UNWRITTEN });
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

/** dropwatch's line for a refused kernel request, with the kernel's extended-ACK text when it gave one. */
function failureLine(kind: 'config' | 'stats' | 'activation', err: KernelError): string {
  const line = `Failed ${kind} request, error: ${strerror(err.errno)}`;
  return err.extack ? `${line} (${err.extack})` : line;
}
