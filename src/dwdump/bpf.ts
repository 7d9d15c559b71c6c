// dwdump on the bpf source: each packet the BPF program captured becomes the PACKET_ALERT drop_monitor would have sent
// for it, after a NEWFAMILY record that maps NET_DM to the id those alerts carry, so the pcap is read as NET_DM's
// (Wireshark's net_dm dissector) on a kernel that has no drop monitor. Loaded only for such a capture.
import type { Backend, BackendEvent } from '../backend/types.js';
import { MAX_CAPTURE } from '../bpf/backend.js';
import { isExpected } from '../errors/index.js';
import { netdmFamily } from '../netdm/codec.js';
import { encodeFamily } from '../netlink/nlctrl.js';
import { STOP_SIGNALS } from '../process/signals.js';
import { openBackend } from '../sources/index.js';
import type { KallsymsIndex } from '../symbols/kallsyms.js';
import { loadSymbolTable } from '../symbols/loader.js';
import { alertFromDrop } from './alert.js';
import { endings, endOnFailure, SNAPLEN_SLACK, type DwdumpIO, type Endings } from './capture.js';
import type { DwdumpOptions } from './options.js';
import { openCaptureTarget, OutputClosedError, PcapSink, type CaptureTarget } from './output.js';

/**
 * The id NET_DM has in a bpf capture's records. No kernel family is looked up (resolving NET_DM can load
 * drop_monitor), so one is chosen; the family record and the alerts only need to agree.
 */
export const BPF_CAPTURE_FAMILY_ID = 0x3ff;

const ORIGIN_TEXT = { all: 'software', sw: 'software', hw: 'hardware' } as const;

/** Alerts written as each batch of packets the backend delivered ends, and the kernel's losses by place. */
class AlertWriter {
  written = 0;
  readonly lost = new Map<string, number>();
  private pending: Uint8Array[] = [];
  private scheduled = false;

  constructor(
    private readonly sink: PcapSink,
    private readonly run: Endings,
    private readonly symbols: KallsymsIndex | null,
  ) {}

  readonly onEvent = (event: BackendEvent): void => {
    if (event.kind === 'lost') this.lost.set(event.where, (this.lost.get(event.where) ?? 0) + event.count);
    if (event.kind !== 'packet') return;
    this.pending.push(alertFromDrop(event.packet, BPF_CAPTURE_FAMILY_ID, this.symbols));
    // The backend hands over a read's packets one by one in a loop: write them together once it is done.
    if (!this.scheduled) {
      this.scheduled = true;
      queueMicrotask(() => this.flush());
    }
  };

  flush(): void {
    this.scheduled = false;
    const batch = this.pending;
    this.pending = [];
    const ending = this.run.current();
    if (batch.length === 0 || ending?.kind === 'pipe' || ending?.kind === 'error' || this.sink.isClosed) return;
    try {
      this.sink.writeMessages(batch);
      this.written += batch.length;
    } catch (err) {
      endOnFailure(err, this.run);
    }
  }

  get lostTotal(): number {
    let n = 0;
    for (const count of this.lost.values()) n += count;
    return n;
  }
}

/** Signals and the reader of standard output leaving end the run; returns the release. */
function watchInterruptions(io: DwdumpIO, target: CaptureTarget, run: Endings): () => void {
  const handlers = STOP_SIGNALS.map((s) => [s, () => run.end({ kind: 'signal', signal: s })] as const);
  for (const [s, h] of handlers) io.signals.on(s, h);
  const unwatch = target.owned ? null : (io.watchStdout?.(() => run.end({ kind: 'pipe' })) ?? null);
  return () => {
    unwatch?.();
    for (const [s, h] of handlers) io.signals.off(s, h);
  };
}

/** Packet mode at the asked truncation, then start; says what it captures once it does. */
async function begin(backend: Backend, options: DwdumpOptions, target: CaptureTarget, io: DwdumpIO): Promise<void> {
  await backend.setConfig({ alertMode: 'packet', truncLen: options.truncLen });
  const hw = options.origin === 'hw' || (options.origin === 'all' && backend.capabilities.settings.hw);
  await backend.start({ sw: options.origin !== 'hw', hw });
  const bytes = Math.min(options.truncLen, MAX_CAPTURE);
  const what = options.origin === 'all' && hw ? 'software and hardware' : ORIGIN_TEXT[options.origin];
  io.err(
    `dwdump: capturing ${what} drops with bpf (the first ${bytes} bytes of each packet), writing ${target.name}\n`,
  );
}

/** Runs a capture on the bpf source; resolves to the exit code. Expected errors before the capture starts throw. */
export async function captureBpf(options: DwdumpOptions, io: DwdumpIO): Promise<number> {
  const complain = (line: string) => io.err(`${line}\n`);
  const target = openCaptureTarget(options.write, { stdoutFd: io.stdoutFd });
  let sink: PcapSink;
  try {
    sink = new PcapSink(target, {
      snaplen: options.truncLen + SNAPLEN_SLACK,
      now: io.now,
      netdmFamilyId: BPF_CAPTURE_FAMILY_ID,
    });
  } catch (err) {
    if (err instanceof OutputClosedError) return 0;
    throw err;
  }
  const run = endings();
  const release = watchInterruptions(io, target, run);
  let backend: Backend | null = null;
  let writer: AlertWriter | null = null;
  let exitCode = 0;
  try {
    // The family record first: a capture interrupted at any point is a file Wireshark can map.
    sink.writeMessages([encodeFamily(netdmFamily(BPF_CAPTURE_FAMILY_ID))]);
    const symbols = await loadSymbolTable();
    writer = new AlertWriter(sink, run, symbols.status === 'ok' ? symbols.index : null);
    backend = await openBackend('bpf', { notice: complain });
    backend.onEvent(writer.onEvent);
    if (!run.current()) await begin(backend, options, target, io);
    const how = await run.ended;
    if (how.kind === 'error') throw how.error;
  } catch (err) {
    if (!isExpected(err)) throw err;
    if (!(err instanceof OutputClosedError)) {
      complain(`dwdump: ${err.message}`);
      exitCode = err.exitCode;
    }
  } finally {
    release();
    exitCode = (await finish(backend, writer, sink, complain)) || exitCode;
  }
  if (writer !== null) complain(summary(writer));
  return exitCode;
}

/** Stops the program (the backend delivers what the ring still holds), writes it, closes everything; an exit code. */
async function finish(
  backend: Backend | null,
  writer: AlertWriter | null,
  sink: PcapSink,
  complain: (line: string) => void,
): Promise<number> {
  let code = 0;
  try {
    await backend?.stop();
    writer?.flush();
  } catch (err) {
    if (!isExpected(err)) throw err;
    complain(`dwdump: ${err.message}`);
    code = err.exitCode;
  } finally {
    await backend?.close();
    try {
      sink.close();
    } catch (err) {
      if (!isExpected(err)) throw err;
      complain(`dwdump: ${err.message}`);
      code ||= err.exitCode;
    }
  }
  return code;
}

/** `dwdump: 3 packets written, 0 lost in the kernel`, with where when some were. */
function summary(writer: AlertWriter): string {
  const n = writer.written;
  const lost = writer.lostTotal;
  const where = [...writer.lost].map(([w, c]) => `${w}: ${c}`).join(', ');
  return `dwdump: ${n} packet${n === 1 ? '' : 's'} written, ${lost} lost in the kernel${lost > 0 ? ` (${where})` : ''}`;
}
