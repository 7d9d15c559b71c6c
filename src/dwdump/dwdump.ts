// The `dwdump` program: NET_DM packet alerts into a pcap (LINKTYPE_NETLINK), or one query and exit. The one place
// that decides exit codes: expected errors print one line and exit 1; a reader closing the pipe ends a capture
// quietly with 0; a signal ends it cleanly with 0.
import { DropwatchError, isExpected } from '../errors/index.js';
import type { LostCounts, ReceivedMessage } from '../netlink/socket.js';
import { DwdumpNetdm } from './netdm.js';
import { DWDUMP_USAGE, parseDwdumpArgs, type DwdumpOptions } from './options.js';
import { openCaptureTarget, OutputClosedError, PcapSink, type CaptureTarget } from './output.js';

/** Room for the attributes around the payload, as dwdump sizes its snaplen (truncation length + 2048). */
export const SNAPLEN_SLACK = 2048;

export type SignalName = 'SIGINT' | 'SIGTERM' | 'SIGHUP';
const SIGNALS: readonly SignalName[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];

export interface SignalSource {
  on(signal: SignalName, listener: () => void): unknown;
  off(signal: SignalName, listener: () => void): unknown;
}

export interface ExitHooks {
  on(event: 'exit', listener: () => void): unknown;
  off(event: 'exit', listener: () => void): unknown;
}

export interface DwdumpIO {
  /** Text for standard output (-q, -s, --help); never used while capturing, when standard output is the pcap. */
  out(text: string): void;
  err(text: string): void;
  /** Standard output's descriptor, written directly when capturing to it. */
  stdoutFd?: number;
  signals: SignalSource;
  /** Where the last-resort synchronous STOP hooks in (process 'exit'). */
  exitHooks?: ExitHooks;
  now?: () => number;
}

/** Runs dwdump with argv (without node and script); resolves to the exit code. */
export async function dwdumpMain(args: readonly string[], io: DwdumpIO): Promise<number> {
  const complain = (line: string) => io.err(`${line}\n`);
  try {
    const options = parseDwdumpArgs(args, (text) => io.out(text));
    if (options === 'help') return 0;
    const netdm = await DwdumpNetdm.open();
    try {
      switch (options.action) {
        case 'query':
          return await query(netdm, io);
        case 'stats':
          return await stats(netdm, io);
        case 'exit':
          await netdm.stop(options.origin);
          return 0;
        case 'capture':
          return await capture(netdm, options, io);
      }
    } finally {
      netdm.close();
    }
  } catch (err) {
    if (!isExpected(err)) throw err;
    complain(`dwdump: ${err.message}`);
    if (err.code === 'E_USAGE') complain(`Usage: ${DWDUMP_USAGE}`);
    return err.exitCode;
  }
}

// Exactly Debian dwdump's lines (dwdump_config_get).
async function query(netdm: DwdumpNetdm, io: DwdumpIO): Promise<number> {
  const c = await netdm.getConfig();
  io.out(`Alert mode: ${c.alertMode}\nTruncation length: ${c.truncLen}\nQueue length: ${c.queueLen}\n`);
  return 0;
}

// Exactly Debian dwdump's lines (dwdump_stats_get): each block only when the kernel sent it.
async function stats(netdm: DwdumpNetdm, io: DwdumpIO): Promise<number> {
  const s = await netdm.getStats();
  let text = '';
  if (s.software) text += `Software statistics:\nTail dropped: ${s.software.tailDropped}\n`;
  if (s.hardware) text += `Hardware statistics:\nTail dropped: ${s.hardware.tailDropped}\n`;
  io.out(text);
  return 0;
}

const tailDrops = (s: { software?: { tailDropped: bigint }; hardware?: { tailDropped: bigint } }): bigint =>
  (s.software?.tailDropped ?? 0n) + (s.hardware?.tailDropped ?? 0n);

async function tailDropsOrNull(netdm: DwdumpNetdm): Promise<bigint | null> {
  try {
    return tailDrops(await netdm.getStats());
  } catch {
    return null;
  }
}

const ORIGIN_TEXT = { all: 'software and hardware', sw: 'software', hw: 'hardware' } as const;

type Ending = { kind: 'signal'; signal: SignalName } | { kind: 'pipe' } | { kind: 'error'; error: DropwatchError };

async function capture(netdm: DwdumpNetdm, options: DwdumpOptions, io: DwdumpIO): Promise<number> {
  const complain = (line: string) => io.err(`${line}\n`);
  // Opened before anything changes in the kernel, so a refused path leaves the drop monitor as it was.
  const target: CaptureTarget = openCaptureTarget(options.write, { stdoutFd: io.stdoutFd });
  const sink = new PcapSink(target, { snaplen: options.truncLen + SNAPLEN_SLACK, now: io.now });

  let finish!: (e: Ending) => void;
  const ended = new Promise<Ending>((resolve) => (finish = resolve));
  let ending: Ending | null = null;
  const end = (e: Ending): void => {
    if (ending) return;
    ending = e;
    finish(e);
  };

  let alerts = 0;
  let undecodable = 0;
  let warnedLoss = false;
  const onAlerts = (messages: ReceivedMessage[]): void => {
    // After a write failure nothing more can reach the file; the shutdown below is already under way.
    if (ending?.kind === 'pipe' || ending?.kind === 'error' || sink.isClosed) return;
    try {
      sink.writeMessages(messages.map((m) => m.raw));
      alerts += messages.length;
    } catch (err) {
      if (err instanceof OutputClosedError) end({ kind: 'pipe' });
      else if (isExpected(err)) end({ kind: 'error', error: err });
      else throw err;
    }
  };
  const onLost = (delta: LostCounts): void => {
    if (warnedLoss || delta.dropped + delta.truncated === 0) return;
    warnedLoss = true;
    complain('dwdump: alerts are being lost on our socket (queue full): a larger -b or a faster reader helps');
  };
  const onSocketError = (err: DropwatchError): void => {
    if (err.code === 'E_DECODE') undecodable++;
    else end({ kind: 'error', error: err });
  };

  let signals = 0;
  const onSignal = (signal: SignalName) => (): void => {
    signals++;
    if (signals === 1) end({ kind: 'signal', signal });
    // A second signal while shutting down: the user wants out now. STOP without waiting; the pending requests are
    // rejected when the sockets close, which lets the shutdown finish at once.
    else if (!options.passive) netdm.stopSync();
    if (signals === 2) netdm.close();
  };
  const handlers = SIGNALS.map((s) => [s, onSignal(s)] as const);
  for (const [s, h] of handlers) io.signals.on(s, h);
  // Whatever ends the process (an uncaught bug, process.exit), a started kernel must not be left monitoring.
  const exitHook = (): void => netdm.stopSync();
  io.exitHooks?.on('exit', exitHook);

  let baseline: bigint | null = null;
  let capturing = false;
  let lost: LostCounts | null = null;
  let exitCode = 0;
  try {
    try {
      // Header and the family record first: a capture interrupted at any point is a valid file Wireshark can map.
      sink.writeHeader();
      sink.writeMessages([netdm.family.raw]);
      netdm.listen(options.rcvbuf, onAlerts, onLost, onSocketError);
      baseline = await tailDropsOrNull(netdm);
      if (!options.passive && !ending) {
        await netdm.configurePacketMode(options.truncLen, options.queueLen);
        if (!ending) await netdm.start(options.origin);
      }
      capturing = true;
      // The one line before the end (on stderr, like tcpdump's "listening on"): scripts can wait for it.
      if (!ending)
        complain(
          options.passive
            ? `dwdump: listening to NET_DM alerts (passive), writing ${target.name}`
            : `dwdump: capturing ${ORIGIN_TEXT[options.origin]} drops, writing ${target.name}`,
        );
    } catch (err) {
      if (err instanceof OutputClosedError) end({ kind: 'pipe' });
      else if (isExpected(err)) end({ kind: 'error', error: err });
      else throw err;
    }

    const how = await ended;
    if (how.kind === 'error') {
      complain(`dwdump: ${how.error.message}`);
      exitCode = how.error.exitCode;
    }
    lost = await shutdown(netdm, options, complain, (n) => (exitCode ||= n));
  } finally {
    for (const [s, h] of handlers) io.signals.off(s, h);
    try {
      sink.close();
    } catch (err) {
      if (!isExpected(err)) throw err;
      complain(`dwdump: ${err.message}`);
      exitCode ||= err.exitCode;
    }
    // The STOP went out above (or was not ours to send); the hook stays only while that was uncertain.
    if (!netdm.isStarted) io.exitHooks?.off('exit', exitHook);
  }

  // A run that never got to listen (refused config, no privilege) has nothing to count.
  if (!capturing) return exitCode;
  lost ??= netdm.lost();
  const end_ = await tailDropsOrNull(netdm);
  const tail = end_ === null ? 'unknown' : baseline === null ? `${end_} in total` : `${end_ - baseline}`;
  complain(
    `dwdump: ${alerts} packet${alerts === 1 ? '' : 's'} written, ` +
      `${lost.dropped + lost.truncated + undecodable} lost on our socket, ` +
      `${tail} tail-dropped by the kernel`,
  );
  return exitCode;
}

async function shutdown(
  netdm: DwdumpNetdm,
  options: DwdumpOptions,
  complain: (line: string) => void,
  fail: (code: number) => void,
): Promise<LostCounts> {
  if (!options.passive && netdm.isStarted) {
    try {
      await netdm.stopStarted();
    } catch (err) {
      netdm.stopSync();
      if (!isExpected(err)) throw err;
      // A second signal closes the sockets on purpose; anything else is worth a line.
      if (err.code !== 'E_STATE') {
        complain(`dwdump: ${err.message}`);
        fail(err.exitCode);
      }
    }
  }
  // Counted before the drain: the kernel sends no alert after acking STOP, and the drain's own reply, if the full
  // queue drops it, would otherwise be counted as a lost alert.
  const lost = netdm.lost();
  // Alerts the kernel queued before the STOP are still in our receive queue: take them into the file.
  await netdm.drain();
  return lost;
}
