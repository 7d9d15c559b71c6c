// The live view's state machine, without I/O: the session's intervals and lines in, keys in, frames out.
import { provides, type BackendCapabilities, type PacketDrop, type SourceInfo } from '../backend/types.js';
import { CapabilityWords } from '../backend/words.js';
import { isExpected } from '../errors/index.js';
import type { FlushResult } from '../aggregate/index.js';
import type { DropObserver, SessionOutput } from '../engine/types.js';
import type { WorkloadNames } from '../workload/types.js';
import { GROUPINGS } from './groups.js';
import { buildFrame, INITIAL_VIEW_STATE, shownRows, type Frame, type Size, type ViewState } from './layout.js';
import { SORT_KEYS, TopModel, type SiteDrop } from './model.js';

/** A key as the view reads it; the terminal library's key event is mapped onto this. */
export interface KeyPress {
  input: string;
  up?: boolean;
  down?: boolean;
  pageUp?: boolean;
  pageDown?: boolean;
  home?: boolean;
  end?: boolean;
  enter?: boolean;
  escape?: boolean;
  backspace?: boolean;
  ctrl?: boolean;
}

/** The filter control the REPL's `set filter` goes through. */
export interface TopFilter {
  /** Compiles and applies an expression (null clears); returns the line to show; throws E_BAD_INPUT on bad syntax. */
  apply(expression: string | null): Promise<string>;
  /** The filter in force, or null. */
  describe(): string | null;
}

export interface ControllerOptions {
  backend: string;
  capabilities: BackendCapabilities;
  /** The source table, so a sentence about what this backend lacks names the sources that have it. */
  sources?: readonly SourceInfo[];
  /** Names for the namespaces drops happened in, when grouped by workload; without it a namespace is its inode. */
  workloads?: WorkloadNames;
  /** Location text for a new site: `sym+off [module]`, an address, or a trap name. */
  label: (drop: SiteDrop) => string;
  /** Names a call chain for the expanded row; without it chains are counted, not listed. */
  chainLabel?: (frames: readonly bigint[]) => string;
  filter?: TopFilter;
  /** Wall clock, ms. */
  now: () => number;
  /** ASCII stand-ins for the view's glyphs: the terminal's locale is not UTF-8. */
  ascii?: boolean;
  intervalMs?: number;
  maxSites?: number;
}

export type QuitListener = (error?: unknown) => void;

export class TopController {
  readonly model: TopModel;
  private frozen: { model: TopModel; at: number } | null = null;
  private readonly startedAt: number;
  private state: ViewState = { ...INITIAL_VIEW_STATE };
  /** Rows the last frame had room for: a page for PgUp and PgDn. */
  private page = 10;
  private readonly listeners = new Set<() => void>();
  private readonly quitListeners = new Set<QuitListener>();
  private quitting = false;
  /** Whether the backend says where drops happened (namespace, device), so rows can be grouped by workload. */
  private readonly places: boolean;

  /** What the session sees: each interval's aggregated lines, packet-mode drops, losses. */
  readonly observer: DropObserver;
  /** The session's lines while the view is up: drop lines are drawn, not printed; messages become the status. */
  readonly output: SessionOutput;

  constructor(private readonly opts: ControllerOptions) {
    this.places = provides(opts.capabilities, 'summary', 'device');
    this.model = new TopModel({
      label: opts.label,
      groups: this.places,
      ...(opts.chainLabel ? { chainLabel: opts.chainLabel } : {}),
      ...(opts.intervalMs === undefined ? {} : { intervalMs: opts.intervalMs }),
      ...(opts.maxSites === undefined ? {} : { maxSites: opts.maxSites }),
    });
    this.startedAt = opts.now();
    this.observer = {
      interval: (result) => this.interval(result),
      packet: (packet) => this.model.add([packetDrop(packet)]),
      lost: (count, where) => {
        this.model.lost(count, where);
        if (!this.state.paused) this.changed();
      },
    };
    this.output = {
      data: () => {},
      message: (line) => this.setStatus(line, false),
      error: (line) => this.setStatus(line, true),
    };
  }

  get view(): Readonly<ViewState> {
    return this.state;
  }

  /** Called on every change worth a redraw. */
  subscribe(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Called once, when the user quits or the view fails (with the error). */
  onQuit(listener: QuitListener): void {
    this.quitListeners.add(listener);
  }

  quit(error?: unknown): void {
    if (this.quitting) return;
    this.quitting = true;
    for (const l of this.quitListeners) l(error);
  }

  setStatus(text: string | null, error = false): void {
    this.state = { ...this.state, status: text === null ? null : { text, error } };
    this.changed();
  }

  private interval(result: FlushResult): void {
    this.model.add(result.lines);
    if (result.overflow) this.model.addOverflow(result.overflow.drops);
    this.model.tick();
    if (!this.state.paused) this.changed();
  }

  /** The screen for a terminal of `size`: the frozen counts while paused, else the live ones. */
  frame(size: Size): Frame {
    const model = this.frozen?.model ?? this.model;
    const at = this.frozen?.at ?? this.opts.now();
    const { capabilities } = this.opts;
    const frame = buildFrame(
      model,
      this.state,
      {
        backend: this.opts.backend,
        filter: this.opts.filter?.describe() ?? null,
        elapsedSeconds: (at - this.startedAt) / 1000,
        stacks: provides(capabilities, 'summary', 'stack'),
        flows: provides(capabilities, 'summary', 'flow'),
        ascii: this.opts.ascii ?? false,
        workloads: this.opts.workloads ?? null,
      },
      size,
    );
    // Header (3), column heading and footer (2) aside, the rest is rows.
    this.page = Math.max(1, size.rows - 1 - 6);
    this.state = { ...this.state, scroll: frame.scroll };
    return frame;
  }

  key(k: KeyPress): void {
    // Keys typed quickly, or pasted, can arrive as one chunk: each character is a key of its own.
    const plain = !k.ctrl && !k.up && !k.down && !k.pageUp && !k.pageDown && !k.home && !k.end && !k.escape;
    if (plain && !k.enter && !k.backspace && Array.from(k.input).length > 1) {
      for (const c of k.input) this.key(c === '\r' || c === '\n' ? { input: '', enter: true } : { input: c });
      return;
    }
    if (k.ctrl && k.input === 'c') return this.quit();
    if (this.state.help) return this.update({ help: false });
    if (this.state.input !== null) return this.editFilter(k);
    if (k.up) return this.move(-1);
    if (k.down) return this.move(1);
    if (k.pageUp) return this.move(-this.page);
    if (k.pageDown) return this.move(this.page);
    if (k.home) return this.move(-Infinity);
    if (k.end) return this.move(Infinity);
    if (k.enter) return this.toggleExpanded();
    if (k.escape) return this.update({ expanded: null });
    if (k.ctrl) return;
    switch (k.input) {
      case 'q':
        return this.quit();
      case 'p':
        return this.togglePause();
      case 's':
        return this.update({ sort: SORT_KEYS[(SORT_KEYS.indexOf(this.state.sort) + 1) % SORT_KEYS.length]! });
      case 'g':
        return this.nextGrouping();
      case '/':
        return this.update({ input: '', status: null });
      case '?':
        return this.update({ help: true });
    }
  }

  private update(change: Partial<ViewState>): void {
    this.state = { ...this.state, ...change };
    this.changed();
  }

  private changed(): void {
    for (const l of this.listeners) l();
  }

  private togglePause(): void {
    if (this.state.paused) {
      this.frozen = null;
      this.update({ paused: false });
    } else {
      this.frozen = { model: this.model.clone(), at: this.opts.now() };
      this.update({ paused: true });
    }
  }

  private shownRows() {
    return shownRows(this.frozen?.model ?? this.model, this.state, this.opts.workloads ?? null);
  }

  /** The next grouping, with nothing selected; on a source that does not say where drops happened, why not. */
  private nextGrouping(): void {
    if (!this.places) {
      const { backend: name, capabilities, sources = [] } = this.opts;
      const why = new CapabilityWords({ name, capabilities, sources }).noPlaceCounts();
      return this.update({ status: { text: `rows stay by location: ${why}`, error: false } });
    }
    const group = GROUPINGS[(GROUPINGS.indexOf(this.state.group) + 1) % GROUPINGS.length]!;
    this.update({ group, selected: null, expanded: null, scroll: 0 });
  }

  private move(by: number): void {
    const rows = this.shownRows();
    if (rows.length === 0) return;
    const at = this.state.selected === null ? -1 : rows.findIndex((s) => s.key === this.state.selected);
    const from = at < 0 ? (by > 0 ? -1 : rows.length) : at;
    const to = Math.max(0, Math.min(rows.length - 1, from + by));
    this.update({ selected: rows[to]!.key });
  }

  private toggleExpanded(): void {
    const rows = this.shownRows();
    let selected = this.state.selected;
    if (selected === null || !rows.some((s) => s.key === selected)) selected = rows[0]?.key ?? null;
    if (selected === null) return;
    this.update({ selected, expanded: this.state.expanded === selected ? null : selected });
  }

  private editFilter(k: KeyPress): void {
    const text = this.state.input ?? '';
    if (k.escape) return this.update({ input: null, status: null });
    if (k.backspace) return this.update({ input: Array.from(text).slice(0, -1).join('') });
    if (k.ctrl && k.input === 'u') return this.update({ input: '' });
    if (k.enter) return void this.submitFilter(text.trim());
    if (k.ctrl || k.up || k.down || k.pageUp || k.pageDown || k.home || k.end) return;
    // Printable text only: a paste may bring several characters, and never a control character.
    const typed = Array.from(k.input)
      .filter((c) => c >= ' ' && c !== '\x7f')
      .join('');
    if (typed) this.update({ input: text + typed });
  }

  private async submitFilter(text: string): Promise<void> {
    if (text === '') return this.update({ input: null, status: null });
    const filter = this.opts.filter;
    if (!filter) return this.update({ status: { text: 'filters are not available here', error: true } });
    this.update({ status: { text: 'applying the filter…', error: false } });
    try {
      const said = await filter.apply(text === 'none' ? null : text);
      this.update({ input: null, status: { text: said, error: false } });
    } catch (err) {
      if (!isExpected(err)) return this.quit(err);
      // The expression stays in the input line, so it can be corrected.
      this.update({ status: { text: err.message, error: true } });
    }
  }
}

/** A packet-mode drop counted like a summary line of 1, in its namespace and on its input device where known. */
function packetDrop(p: PacketDrop): SiteDrop {
  const drop: SiteDrop = {
    origin: p.origin,
    pc: p.pc ?? 0n,
    trap: p.trapName,
    reason: p.reason ?? null,
    count: 1,
    symbol: p.symbol,
  };
  if (p.netns !== undefined || p.inPort)
    drop.places = [
      { netns: p.netns ?? null, ifindex: p.inPort?.ifindex ?? null, ifname: p.inPort?.name ?? null, count: 1 },
    ];
  return drop;
}
