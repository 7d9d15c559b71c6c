// The `dwdump` program: NET_DM packet alerts into a pcap (LINKTYPE_NETLINK), or one query and exit. The one place
// that decides exit codes: expected errors print one line and exit 1; a reader closing the pipe ends a capture
// quietly with 0; a signal ends it cleanly with 0.
import type { StartOptions } from '../backend/types.js';
import { DropwatchError, isExpected, KernelError, strerror } from '../errors/index.js';
import type { ReceivedMessage } from '../netlink/socket.js';
import { LOST_SOCKET, NetdmRefusal, openNetdmClient, type NetdmClient, type NetdmLost } from '../netdm/client.js';
import { DWDUMP_USAGE, parseDwdumpArgs, type DwdumpOptions, type DwdumpOrigin } from './options.js';
import { openCaptureTarget, OutputClosedError, PcapSink, type CaptureTarget } from './output.js';

/** Room for the attributes around the payload, as dwdump sizes its snaplen (truncation length + 2048). */
export const SNAPLEN_SLACK = 2048;

export const FAMILY_MISSING_MESSAGE =
  'Failed to resolve ID of "NET_DM" family: this kernel has no drop monitor (CONFIG_NET_DROP_MONITOR / drop_monitor.ko)';
const CONTROL_TIMEOUT_MS = 5_000;
const EPERM = 1;

const flags = (origin: DwdumpOrigin): StartOptions => ({ sw: origin !== 'hw', hw: origin !== 'sw' });

/** Opens the NET_DM client with dwdump's wording for a missing family and its own remedies for refusals. */
function openNetdm(): Promise<NetdmClient> {
  return openNetdmClient({
    missingMessage: FAMILY_MISSING_MESSAGE,
    timeoutMs: CONTROL_TIMEOUT_MS,
    remedies: {
      busy: 'another process is monitoring: dwdump -p listens without reconfiguring',
      hardware: 'hardware drops need a devlink device (try -o sw)',
    },
  });
}

/** A kernel refusal as one dwdump line: what failed (Debian dwdump's words), the kernel's text, then the hint. */
async function attempt(what: string, call: () => Promise<void>): Promise<void> {
  try {
    await call();
  } catch (err) {
    if (!(err instanceof NetdmRefusal)) throw err;
    let line = `${what}: ${strerror(err.errno)}`;
    if (err.kernelText) line += ` (${err.kernelText})`;
    if (err.hint) line += `; ${err.hint}`;
    if (err.errno === EPERM) throw new DropwatchError('E_PRIVILEGE', line, { cause: err });
    throw new KernelError(err.errno, line, err.extack);
  }
}

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
  /** Calls `onGone` when the reader of standard output goes away; returns how to stop, or null (nothing to watch). */
  watchStdout?: (onGone: () => void) => (() => void) | null;
  now?: () => number;
}

/** Runs dwdump with argv (without node and script); resolves to the exit code. */
export async function dwdumpMain(args: readonly string[], io: DwdumpIO): Promise<number> {
  const complain = (line: string) => io.err(`${line}\n`);
  try {
    const options = parseDwdumpArgs(args, (text) => io.out(text));
    if (options === 'help') return 0;
    const netdm = await openNetdm();
    try {
      switch (options.action) {
        case 'query':
          return await query(netdm, io);
        case 'stats':
          return await stats(netdm, io);
        case 'exit':
          await attempt('Failed to stop monitoring', () => netdm.stop(flags(options.origin)));
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
async function query(netdm: NetdmClient, io: DwdumpIO): Promise<number> {
  const c = await netdm.getConfig();
  io.out(`Alert mode: ${c.alertMode}\nTruncation length: ${c.truncLen}\nQueue length: ${c.queueLen}\n`);
  return 0;
}

// Exactly Debian dwdump's lines (dwdump_stats_get): each block only when the kernel sent it.
async function stats(netdm: NetdmClient, io: DwdumpIO): Promise<number> {
  const s = await netdm.getStats();
  let text = '';
  if (s.software) text += `Software statistics:\nTail dropped: ${s.software.tailDropped}\n`;
  if (s.hardware) text += `Hardware statistics:\nTail dropped: ${s.hardware.tailDropped}\n`;
  io.out(text);
  return 0;
}

const tailDrops = (s: { software?: { tailDropped: bigint }; hardware?: { tailDropped: bigint } }): bigint =>
  (s.software?.tailDropped ?? 0n) + (s.hardware?.tailDropped ?? 0n);

async function tailDropsOrNull(netdm: NetdmClient): Promise<bigint | null> {
  try {
    return tailDrops(await netdm.getStats());
  } catch {
    return null;
  }
}

const ORIGIN_TEXT = { all: 'software and hardware', sw: 'software', hw: 'hardware' } as const;

type Ending = { kind: 'signal'; signal: SignalName } | { kind: 'pipe' } | { kind: 'error'; error: DropwatchError };

async function capture(netdm: NetdmClient, options: DwdumpOptions, io: DwdumpIO): Promise<number> {
  const complain = (line: string) => io.err(`${line}\n`);
  // Opened before anything changes in the kernel, so a refused path leaves the drop monitor as it was.
  const target: CaptureTarget = openCaptureTarget(options.write, { stdoutFd: io.stdoutFd });
  let sink: PcapSink;
  try {
    // The header goes out with the file: from here on, however the run ends, the file is a valid pcap.
    sink = new PcapSink(target, { snaplen: options.truncLen + SNAPLEN_SLACK, now: io.now });
  } catch (err) {
    // The reader left before the header: nothing was captured and nothing changed in the kernel.
    if (err instanceof OutputClosedError) return 0;
    throw err;
  }

  let finish!: (e: Ending) => void;
  const ended = new Promise<Ending>((resolve) => (finish = resolve));
  let ending: Ending | null = null;
  const end = (e: Ending): void => {
    if (ending) return;
    ending = e;
    finish(e);
  };

  let alerts = 0;
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
  const onLost = (_count: number, where: string): void => {
    if (warnedLoss || where !== LOST_SOCKET) return;
    warnedLoss = true;
    complain('dwdump: alerts are being lost on our socket (queue full): a larger -b or a faster reader helps');
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
  // A reader of standard output that leaves while no drops come would otherwise be noticed only at the next write.
  const unwatch = target.owned ? null : (io.watchStdout?.(() => end({ kind: 'pipe' })) ?? null);
  // Whatever ends the process (an uncaught bug, process.exit), a started kernel must not be left monitoring.
  const exitHook = (): void => netdm.stopSync();
  io.exitHooks?.on('exit', exitHook);

  let baseline: bigint | null = null;
  let capturing = false;
  let lost: NetdmLost | null = null;
  let exitCode = 0;
  try {
    try {
      // The family record first: a capture interrupted at any point is a file Wireshark can map.
      sink.writeMessages([netdm.family.raw]);
      // Listener in place before the join, so nothing is missed.
      netdm.listen(options.rcvbuf, { alerts: onAlerts, lost: onLost, error: (error) => end({ kind: 'error', error }) });
      netdm.join();
      baseline = await tailDropsOrNull(netdm);
      if (!options.passive && !ending) {
        // CONFIG as dwdump sends it: packet mode with the truncation and queue lengths, all three every time.
        const { truncLen, queueLen } = options;
        await attempt('Failed to configure drop monitor kernel module', () =>
          netdm.setConfig({ alertMode: 'packet', truncLen, queueLen }),
        );
        if (!ending) await attempt('Failed to start monitoring', () => netdm.start(flags(options.origin)));
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
    unwatch?.();
    for (const [s, h] of handlers) io.signals.off(s, h);
    try {
      sink.close();
    } catch (err) {
      if (!isExpected(err)) throw err;
      complain(`dwdump: ${err.message}`);
      exitCode ||= err.exitCode;
    }
    // The STOP went out above (or was not ours to send); the hook stays only while that was uncertain.
    if (netdm.started === null) io.exitHooks?.off('exit', exitHook);
  }

  // A run that never got to listen (refused config, no privilege) has nothing to count.
  if (!capturing) return exitCode;
  lost ??= netdm.lost();
  const end_ = await tailDropsOrNull(netdm);
  const tail = end_ === null ? 'unknown' : baseline === null ? `${end_} in total` : `${end_ - baseline}`;
  complain(
    `dwdump: ${alerts} packet${alerts === 1 ? '' : 's'} written, ` +
      `${lost.socket + lost.undecodable} lost on our socket, ` +
      `${tail} tail-dropped by the kernel`,
  );
  return exitCode;
}

async function shutdown(
  netdm: NetdmClient,
  options: DwdumpOptions,
  complain: (line: string) => void,
  fail: (code: number) => void,
): Promise<NetdmLost> {
  if (!options.passive && netdm.started !== null) {
    try {
      await attempt('Failed to stop monitoring', () => netdm.stop());
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
  // Counted before the drain: in a passive run the other session's alerts keep coming, and a drain reply the full
  // queue dropped would be counted as a lost alert (after our STOP the client already leaves such drops out).
  const lost = netdm.lost();
  // Alerts queued before now are still in our receive queue: take them into the file (STOP drained already).
  await netdm.drain();
  return lost;
}
