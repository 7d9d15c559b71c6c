// The `dwdump` program: NET_DM packet alerts into a pcap (LINKTYPE_NETLINK), or one query and exit; on a kernel without
// NET_DM (or with -B bpf) the same alerts built from the bpf source's packets (bpf.ts). The one place
// that decides exit codes: expected errors print one line and exit 1; a reader closing the pipe ends a capture
// quietly with 0; a signal ends it cleanly with 0.
import type { StartOptions } from '../backend/types.js';
import { DropwatchError, isExpected, KernelError, strerror } from '../errors/index.js';
import type { ReceivedMessage } from '../netlink/socket.js';
import { LOST_SOCKET, NetdmRefusal, openNetdmClient, type NetdmClient, type NetdmLost } from '../netdm/client.js';
import { STOP_SIGNALS, type SignalName } from '../process/signals.js';
import { DWDUMP_USAGE, parseDwdumpArgs, type DwdumpOptions, type DwdumpOrigin } from './options.js';
import { openCaptureTarget, OutputClosedError, PcapSink, type CaptureTarget } from './output.js';
import { endings, endOnFailure, SNAPLEN_SLACK, type DwdumpIO, type Endings } from './capture.js';
import { writeOut } from '../output/stdout.js';

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

export type { DwdumpIO, ExitHooks } from './capture.js';

/** Runs dwdump with argv (without node and script); resolves to the exit code. */
export async function dwdumpMain(args: readonly string[], io: DwdumpIO): Promise<number> {
  const complain = (line: string) => io.err(`${line}\n`);
  try {
    let help = '';
    const options = parseDwdumpArgs(args, (text) => (help += text));
    if (options === 'help') return await print(io, help);
    if (options.action === 'capture' && options.backend === 'bpf') return await captureOnBpf(options, io);
    let netdm: NetdmClient;
    try {
      netdm = await openNetdm();
    } catch (err) {
      if (!(err instanceof DropwatchError) || !takesBpfInstead(err, options)) throw err;
      complain('dwdump: using bpf (this kernel has no drop monitor, NET_DM)');
      return await captureOnBpf(options, io);
    }
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

/** `auto` captures from bpf when the kernel has no NET_DM, unless an option only NET_DM understands was given. */
const takesBpfInstead = (err: DropwatchError, options: DwdumpOptions): boolean =>
  err.code === 'E_NETDM_MISSING' &&
  options.action === 'capture' &&
  options.backend === 'auto' &&
  options.netdmOnly.length === 0;

/** The bpf capture's modules (the addon, libbpf) load only for it. */
async function captureOnBpf(options: DwdumpOptions, io: DwdumpIO): Promise<number> {
  const { captureBpf } = await import('./bpf.js');
  return captureBpf(options, io);
}

/** Text that is the whole of a run's output: 0 once written, or the failed write as the run's error. */
async function print(io: DwdumpIO, text: string): Promise<number> {
  const failure = await writeOut(io.out, text);
  if (failure) throw failure;
  return 0;
}

// Exactly Debian dwdump's lines (dwdump_config_get).
async function query(netdm: NetdmClient, io: DwdumpIO): Promise<number> {
  const c = await netdm.getConfig();
  return print(io, `Alert mode: ${c.alertMode}\nTruncation length: ${c.truncLen}\nQueue length: ${c.queueLen}\n`);
}

// Exactly Debian dwdump's lines (dwdump_stats_get): each block only when the kernel sent it.
async function stats(netdm: NetdmClient, io: DwdumpIO): Promise<number> {
  const s = await netdm.getStats();
  let text = '';
  if (s.software) text += `Software statistics:\nTail dropped: ${s.software.tailDropped}\n`;
  if (s.hardware) text += `Hardware statistics:\nTail dropped: ${s.hardware.tailDropped}\n`;
  return print(io, text);
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

async function capture(netdm: NetdmClient, options: DwdumpOptions, io: DwdumpIO): Promise<number> {
  const complain = (line: string) => io.err(`${line}\n`);
  // Opened before anything changes in the kernel, so a refused path leaves the drop monitor as it was.
  const target: CaptureTarget = openCaptureTarget(options.write, { stdoutFd: io.stdoutFd });
  let sink: PcapSink;
  try {
    // The header goes out with the file: from here on, however the run ends, the file is a valid pcap.
    sink = new PcapSink(target, {
      snaplen: options.truncLen + SNAPLEN_SLACK,
      now: io.now,
      netdmFamilyId: netdm.familyId,
    });
  } catch (err) {
    // The reader left before the header: nothing was captured and nothing changed in the kernel.
    if (err instanceof OutputClosedError) return 0;
    throw err;
  }

  const run = endings();
  const writer = alertWriter(sink, run, complain);
  const release = watchInterruptions(netdm, options, io, target, run);
  let started: Started | null = null;
  let lost: NetdmLost | null = null;
  let exitCode = 0;
  try {
    started = await begin(netdm, options, sink, target, writer, run, complain);
    const how = await run.ended;
    if (how.kind === 'error') {
      complain(`dwdump: ${how.error.message}`);
      exitCode = how.error.exitCode;
    }
    lost = await shutdown(netdm, options, complain, (n) => (exitCode ||= n));
  } finally {
    release();
    try {
      sink.close();
    } catch (err) {
      if (!isExpected(err)) throw err;
      complain(`dwdump: ${err.message}`);
      exitCode ||= err.exitCode;
    }
  }

  // A run that never got to listen (refused config, no privilege) has nothing to count.
  if (!started) return exitCode;
  lost ??= netdm.lost();
  const end = await tailDropsOrNull(netdm);
  const { baseline } = started;
  const tail = end === null ? 'unknown' : baseline === null ? `${end} in total` : `${end - baseline}`;
  const alerts = writer.written();
  complain(
    `dwdump: ${alerts} packet${alerts === 1 ? '' : 's'} written, ` +
      `${lost.socket + lost.undecodable + lost.unread} lost on our socket, ` +
      `${tail} tail-dropped by the kernel`,
  );
  return exitCode;
}

interface AlertWriter {
  onAlerts: (messages: ReceivedMessage[]) => void;
  onLost: (count: number, where: string) => void;
  written: () => number;
}

/** Writes each receive batch of alerts into the capture, and warns once when our socket starts losing them. */
function alertWriter(sink: PcapSink, run: Endings, complain: (line: string) => void): AlertWriter {
  let alerts = 0;
  let warnedLoss = false;
  return {
    onAlerts: (messages) => {
      // After a write failure nothing more can reach the file; the shutdown is already under way.
      const ending = run.current();
      if (ending?.kind === 'pipe' || ending?.kind === 'error' || sink.isClosed) return;
      try {
        sink.writeMessages(messages.map((m) => m.raw));
        alerts += messages.length;
      } catch (err) {
        endOnFailure(err, run);
      }
    },
    onLost: (_count, where) => {
      if (warnedLoss || where !== LOST_SOCKET) return;
      warnedLoss = true;
      complain('dwdump: alerts are being lost on our socket (queue full): a larger -b or a faster reader helps');
    },
    written: () => alerts,
  };
}

/** Signals, the reader of stdout leaving and the process exiting, watched for the capture; returns the release. */
function watchInterruptions(
  netdm: NetdmClient,
  options: DwdumpOptions,
  io: DwdumpIO,
  target: CaptureTarget,
  run: Endings,
): () => void {
  let signals = 0;
  const onSignal = (signal: SignalName) => (): void => {
    signals++;
    if (signals === 1) run.end({ kind: 'signal', signal });
    // A second signal while shutting down: the user wants out now. STOP without waiting; the pending requests are
    // rejected when the sockets close, which lets the shutdown finish at once.
    else if (!options.passive) netdm.stopSync();
    if (signals === 2) netdm.close();
  };
  const handlers = STOP_SIGNALS.map((s) => [s, onSignal(s)] as const);
  for (const [s, h] of handlers) io.signals.on(s, h);
  // A reader of standard output that leaves while no drops come would otherwise be noticed only at the next write.
  const unwatch = target.owned ? null : (io.watchStdout?.(() => run.end({ kind: 'pipe' })) ?? null);
  // Whatever ends the process (an uncaught bug, process.exit), a started kernel must not be left monitoring.
  const exitHook = (): void => netdm.stopSync();
  io.exitHooks?.on('exit', exitHook);
  return () => {
    unwatch?.();
    for (const [s, h] of handlers) io.signals.off(s, h);
    // The STOP went out (or was not ours to send); the hook stays only while that was uncertain.
    if (netdm.started === null) io.exitHooks?.off('exit', exitHook);
  };
}

interface Started {
  /** The kernel's tail drops when we began, so the summary can say how many were ours; null when unreadable. */
  baseline: bigint | null;
}

/**
 * Writes the family record, listens, and (unless passive) configures and starts the kernel, then says so. Returns
 * null when the run ended before it listened; a refusal or a failed write ends the run instead of throwing.
 */
async function begin(
  netdm: NetdmClient,
  options: DwdumpOptions,
  sink: PcapSink,
  target: CaptureTarget,
  writer: AlertWriter,
  run: Endings,
  complain: (line: string) => void,
): Promise<Started | null> {
  let started: Started | null = null;
  try {
    // The family record first: a capture interrupted at any point is a file Wireshark can map.
    sink.writeMessages([netdm.family.raw]);
    // Listener in place before the join, so nothing is missed.
    netdm.listen(options.rcvbuf, {
      alerts: writer.onAlerts,
      lost: writer.onLost,
      error: (error) => run.end({ kind: 'error', error }),
    });
    netdm.join();
    const baseline = await tailDropsOrNull(netdm);
    if (!options.passive && !run.current()) {
      // CONFIG as dwdump sends it: packet mode with the truncation and queue lengths, all three every time.
      const { truncLen, queueLen } = options;
      await attempt('Failed to configure drop monitor kernel module', () =>
        netdm.setConfig({ alertMode: 'packet', truncLen, queueLen }),
      );
      if (!run.current()) await attempt('Failed to start monitoring', () => netdm.start(flags(options.origin)));
    }
    started = { baseline };
    // The one line before the end (on stderr, like tcpdump's "listening on"): scripts can wait for it.
    if (!run.current())
      complain(
        options.passive
          ? `dwdump: listening to NET_DM alerts (passive), writing ${target.name}`
          : `dwdump: capturing ${ORIGIN_TEXT[options.origin]} drops, writing ${target.name}`,
      );
  } catch (err) {
    endOnFailure(err, run);
  }
  return started;
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
  // What that drain had no time to hand over it counted: lost all the same.
  return { ...lost, unread: netdm.lost().unread };
}
