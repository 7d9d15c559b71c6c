// Watches our private instance for every switch another root process can use to silence it, or to fill it with other
// events' records, and puts each back: our event's enable and filter, the instance's tracing_on, triggers (traceoff,
// disable_event, any), other events, pid filters and the CPU mask. Each kind is said once per instance, in one line.
import fs from 'node:fs';
import type { TracefsInstance } from './instance.js';

const EVENT = 'skb:kfree_skb';
const EVENT_DIR = 'events/skb/kfree_skb';
const NOT_SEEN = 'drops in between were not seen';

/** A trigger as the kernel lists it (`traceoff:unlimited`, `stacktrace:count=5 if reason == 3`) and its name. */
interface Trigger {
  listed: string;
  /** The command and its target, without count and filter: `traceoff`, `disable_event:skb:kfree_skb`. */
  name: string;
}

/** The triggers a trigger file lists (the kernel lists the available commands as comments when none is set). */
function parseTriggers(text: string): Trigger[] {
  return text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'))
    .map((listed) => ({
      listed,
      name: listed
        .replace(/ if .*$/, '')
        .replace(/ \[\w+\]$/, '')
        .replace(/:(?:count=\d+|unlimited)$/, ''),
    }));
}

/** What removes a listed trigger: '!' and the trigger as it was written (a count as written, no `unlimited`). */
function removal(listed: string): string {
  return `!${listed
    .replace(/ \[\w+\]$/, '')
    .replace(/:count=(\d+)/, ':$1')
    .replace(/:unlimited/, '')}`;
}

export class InstanceGuard {
  private readonly said = new Set<string>();
  /** The CPU mask the instance was made with (every CPU): what a narrowed one is put back to; null without one. */
  private readonly cpumask: string | null;
  /** The pid filter files this kernel has (set_event_notrace_pid came with 5.8). */
  private readonly pidFiles: ('set_event_pid' | 'set_event_notrace_pid')[];

  /** `filter`: the kernel filter we keep in the instance (null: none). */
  constructor(
    private readonly instance: TracefsInstance,
    private readonly filter: () => string | null,
    private readonly warn: (message: string) => void,
  ) {
    const has = (file: string) => fs.existsSync(instance.path(file));
    this.pidFiles = (['set_event_pid', 'set_event_notrace_pid'] as const).filter(has);
    let cpumask: string | null = null;
    try {
      cpumask = instance.read('tracing_cpumask').trim();
    } catch {
      // A kernel without a per-instance mask: nothing to put back. (Never throws: start() makes it mid-way.)
    }
    this.cpumask = cpumask;
  }

  /** One round of checks and repairs; throws when the instance cannot be read or written. */
  check(): void {
    // Triggers first: removing one (disable_event, traceoff) can leave our event or tracing off, put back below.
    const triggers = this.removeTriggers();
    this.switchOffOtherEvents();
    const back: string[] = [];
    if (this.repairEnable()) back.push(EVENT);
    if (this.repairTracingOn()) back.push('tracing');
    const done = back.length === 0 ? 'removed' : `removed, and ${back.join(' and ')} switched back on: ${NOT_SEEN}`;
    for (const what of triggers) this.say(what, done);
    if (triggers.length === 0) {
      if (back.includes(EVENT)) this.say(`${EVENT} was switched off`, `switched back on: ${NOT_SEEN}`);
      if (back.includes('tracing')) this.say('tracing was switched off', `switched back on: ${NOT_SEEN}`);
    }
    this.repairFilter();
    this.repairPidFilters();
    this.repairCpumask();
  }

  private say(what: string, done: string): void {
    if (this.said.has(what)) return;
    this.said.add(what);
    this.warn(`${what} in our tracefs instance (${this.instance.name}) from outside; ${done}`);
  }

  /** Events listed in our set_event: ours, and any other enabled, or soft-enabled by a trigger on it. */
  private enabledEvents(): string[] {
    return this.instance
      .read('set_event')
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l !== '');
  }

  /** Removes every trigger on our event and on any other enabled event; returns what to say about each. */
  private removeTriggers(): string[] {
    const out: string[] = [];
    const events = new Set([EVENT, ...this.enabledEvents()]);
    for (const event of events) {
      const file = `events/${event.replace(':', '/')}/trigger`;
      for (const t of parseTriggers(this.instance.read(file))) {
        this.instance.write(file, removal(t.listed));
        out.push(`a trigger (${t.name}) was set on ${event}`);
      }
    }
    return out;
  }

  private switchOffOtherEvents(): void {
    for (const event of this.enabledEvents()) {
      if (event === EVENT) continue;
      this.instance.write(`events/${event.replace(':', '/')}/enable`, '0');
      this.say(`${event} was enabled`, 'switched off');
    }
  }

  /** Puts our event back on (hard: a soft-disabled one reads `0*`); true when it was off. */
  private repairEnable(): boolean {
    if (this.instance.read(`${EVENT_DIR}/enable`).trim() === '1') return false;
    this.instance.write(`${EVENT_DIR}/enable`, '1');
    return true;
  }

  private repairTracingOn(): boolean {
    if (this.instance.read('tracing_on').trim() !== '0') return false;
    this.instance.write('tracing_on', '1');
    return true;
  }

  private repairFilter(): void {
    const wanted = this.filter();
    const expected = wanted ?? 'none';
    if (this.instance.filter() === expected) return;
    if (wanted === null) this.instance.clearFilter();
    else this.instance.setFilter(wanted);
    this.say(
      'the kernel filter was changed',
      `put back to ${expected}: drops in between may have been filtered otherwise`,
    );
  }

  private repairPidFilters(): void {
    for (const file of this.pidFiles) {
      const whose = file === 'set_event_pid' ? 'other processes' : 'those processes';
      if (this.instance.read(file).trim() === '') continue;
      this.instance.write(file, ''); // opened with O_TRUNC: clears the list
      this.say(`a pid filter (${file}) was set`, `cleared: drops of ${whose} in between were not seen`);
    }
  }

  private repairCpumask(): void {
    if (this.cpumask === null || this.instance.read('tracing_cpumask').trim() === this.cpumask) return;
    this.instance.write('tracing_cpumask', this.cpumask);
    this.say(
      'the CPU mask (tracing_cpumask) was changed',
      `put back to ${this.cpumask}: drops on the CPUs left out were not seen`,
    );
  }
}
