// Replay micro-benchmark of dropwatch's NET_DM packet mode on a host without NET_DM. A sender thread multicasts the
// PACKET_ALERTs the qemu guest's kernel really sent (test/fixtures/netdm/packet-alert-*.bin) through this host's generic
// netlink to our data socket while the main thread waits, so the queue fills as at saturation; from there they take
// dropwatch's own path (addon receive loop, NetlinkSocket, NetdmClient, NetdmBackend, Session, the text renderer of
// `-l kas`, the REPL's writes to stdout). Prints CPU µs per alert: the process's less the sender thread's.
//
//   npm run build && taskset -c 1 node dist/bench/netdm-replay.js > /dev/shm/replay.out
//   node --cpu-prof --cpu-prof-dir=/tmp/prof dist/bench/netdm-replay.js > /dev/shm/replay.out   (then open the profile)
//
// Pinned to one CPU the figure repeats within ~3%; unpinned it moves by ±20% with what else the machine runs.
// stdout must be a file, as in the qemu bench (Node writes to a file synchronously, one write(2) per write()).
// Root is needed: sending to a multicast group takes CAP_NET_ADMIN.
import { EventEmitter } from 'node:events';
import { fstatSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { PassThrough } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { isMainThread, Worker, workerData } from 'node:worker_threads';
import { DropAggregator } from '../src/aggregate/index.js';
import type { Backend } from '../src/backend/types.js';
import { buildTextRenderer } from '../src/output/text.js';
import { loadSymbols } from '../src/output/symbols.js';
import { NetdmBackend, NetdmClient, DEFAULT_RCVBUF } from '../src/netdm/index.js';
import type { GenlFamily } from '../src/netlink/nlctrl.js';
import { NETLINK_GENERIC, NetlinkSocket } from '../src/netlink/socket.js';
import { netlinkTransport } from '../src/netlink/transport.js';
import { createRepl } from '../src/repl/index.js';
import { Session } from '../src/engine/session.js';

const FIXTURES = ['packet-alert-0.bin', 'packet-alert-1.bin', 'packet-alert-2.bin'];
// The fixtures' nlmsg_type: NET_DM's id in the guest. No host family has it (host ids stop at 0x1f here), so the
// drain marker's CONFIG_GET just gets ENOENT back, which still marks the queue's end.
const FAMILY_ID = 32;
// A generic netlink multicast group no host family uses (genl hands out 2..15 and 19 up, in order).
const DEFAULT_GROUP = 30;
// USER_HZ, the unit of /proc/*/stat times, is 100 on every Linux architecture Node runs on.
const TICKS_PER_SECOND = 100;

interface Args {
  alerts: number;
  burst: number;
  warmup: number;
  group: number;
}

function parseArgs(argv: string[]): Args {
  const args: Args = { alerts: 200_000, burst: 5_000, warmup: 20_000, group: DEFAULT_GROUP };
  for (let i = 0; i < argv.length; i += 2) {
    const key = argv[i]!.replace(/^--/, '') as keyof Args;
    const value = Number(argv[i + 1]);
    if (!(key in args) || !Number.isInteger(value) || value <= 0)
      throw new Error(`bad option ${argv[i]} ${argv[i + 1]}`);
    args[key] = value;
  }
  return args;
}

function fixtureDir(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    const candidate = join(dir, 'test', 'fixtures', 'netdm');
    try {
      readFileSync(join(candidate, 'manifest.json'));
      return candidate;
    } catch {
      dir = dirname(dir);
    }
  }
  throw new Error('test/fixtures/netdm not found');
}

// Main thread ↔ sender thread: [0] bursts asked for, [1] bursts sent, [2] alerts in the next burst, [3] the sender's
// own CPU time in clock ticks once it is told to stop (a burst of 0).
const ASKED = 0;
const SENT = 1;
const SIZE = 2;
const SENDER_TICKS = 3;

/** This thread's user + system CPU time, in clock ticks (/proc/thread-self/stat fields 14 and 15). */
function threadTicks(): number {
  const stat = readFileSync('/proc/thread-self/stat', 'latin1');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return Number(f[11]) + Number(f[12]);
}

/** The sender thread: each burst multicasts the fixtures in turn while the main thread waits, so its queue fills. */
function sender(shared: Int32Array, group: number): void {
  const dir = fixtureDir();
  const alerts = FIXTURES.map((f) => new Uint8Array(readFileSync(join(dir, f))));
  const sock = NetlinkSocket.open(NETLINK_GENERIC, { timeoutMs: 0 });
  const ticks0 = threadTicks();
  let next = 0;
  for (let burst = 1; ; burst++) {
    Atomics.wait(shared, ASKED, burst - 1);
    const n = Atomics.load(shared, SIZE);
    if (n === 0) break;
    // nl_pid 0 with a group: the kernel multicasts it and gets a copy, which it ignores (no NLM_F_REQUEST).
    for (let i = 0; i < n; i++) sock.sendRaw(alerts[next++ % alerts.length]!, 0, 1 << (group - 1));
    Atomics.store(shared, SENT, burst);
    Atomics.notify(shared, SENT);
  }
  Atomics.store(shared, SENDER_TICKS, threadTicks() - ticks0);
  Atomics.store(shared, SENT, -1);
  Atomics.notify(shared, SENT);
  sock.close();
}

async function receiver(args: Args): Promise<void> {
  if (!fstatSync(1).isFile()) throw new Error('redirect stdout to a file (tmpfs), e.g. > /dev/shm/replay.out');
  const ctrl = netlinkTransport.open(NETLINK_GENERIC);
  const family: GenlFamily = {
    name: 'NET_DM',
    id: FAMILY_ID,
    version: 2,
    hdrsize: 0,
    maxattr: 23,
    mcastGroups: new Map([['events', args.group]]),
    ops: new Map(),
    raw: new Uint8Array(0),
  };
  // The host has no NET_DM for openNetdmClient to resolve: build the client over the family the guest reported.
  const client = new NetdmClient(netlinkTransport, ctrl, family);
  const netdm = NetdmBackend.over(client, { rcvbuf: DEFAULT_RCVBUF });
  // START/STOP would go to a family this host lacks: joining the group is what starts the alerts here.
  const backend: Backend = {
    name: netdm.name,
    capabilities: netdm.capabilities,
    onEvent: (listener) => netdm.onEvent(listener),
    start: async () => client.join(),
    stop: async () => {
      await client.drain();
      client.leave();
    },
    setConfig: async () => {},
    getConfig: () => netdm.getConfig(),
    getStats: () => netdm.getStats(),
    close: () => netdm.close(),
  };
  const stderr = (line: string) => process.stderr.write(`${line}\n`);
  const input = new PassThrough();
  const signals = new EventEmitter();
  const repl = createRepl({ input, output: process.stdout, errorOutput: process.stderr, interactive: false, signals });
  const symbols = loadSymbols('kas', stderr, stderr);
  const session = new Session({
    backend,
    renderer: buildTextRenderer({ symbols, colour: false, capabilities: backend.capabilities }),
    aggregator: new DropAggregator(),
    output: repl.output,
    clock: { setInterval: (fn, ms) => setInterval(fn, ms), clearInterval: (h) => clearInterval(h as NodeJS.Timeout) },
    ready: () => symbols.ready(),
  });
  const done = repl.run(session);
  input.write('start\n');
  while (!session.monitoring) await new Promise((r) => setTimeout(r, 10));
  // The session monitors from the tick after the symbol table is in.
  await symbols.ready();
  await new Promise((r) => setImmediate(r));

  const shared = new Int32Array(new SharedArrayBuffer(16));
  const worker = new Worker(fileURLToPath(import.meta.url), { workerData: { shared, group: args.group } });
  let bursts = 0;
  /** One burst, sent while this thread blocks: the receive loop then reads full batches, as at saturation. */
  const burst = (n: number): void => {
    Atomics.store(shared, SIZE, n);
    Atomics.store(shared, ASKED, ++bursts);
    Atomics.notify(shared, ASKED);
    while (Atomics.load(shared, SENT) !== bursts && Atomics.load(shared, SENT) !== -1)
      Atomics.wait(shared, SENT, bursts - 1, 1000);
  };
  const run = async (total: number): Promise<void> => {
    for (let sent = 0; sent < total; sent += args.burst) {
      burst(Math.min(args.burst, total - sent));
      // The marker queues behind every alert of the burst: resolved, they have all been printed.
      await client.drain(10_000);
      await new Promise((r) => setImmediate(r));
    }
  };
  await run(args.warmup);
  const cpu0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  await run(args.alerts);
  const wallS = Number(process.hrtime.bigint() - t0) / 1e9;
  const cpu = process.cpuUsage(cpu0);
  burst(0);
  await worker.terminate();
  // Ours is the process's CPU less the sender thread's (its sends, and the kernel's multicast work done in them).
  const senderUs = (Atomics.load(shared, SENDER_TICKS) * 1e6) / TICKS_PER_SECOND;
  signals.emit('SIGINT');
  await new Promise((r) => setTimeout(r, 50));
  input.end();
  await done;

  const printed = readFileSync('/proc/self/fd/1', 'latin1').split('\ndrop at: ').length - 1;
  const lost = client.lost();
  const sent = args.warmup + args.alerts;
  const us = (n: number) => (n / args.alerts).toFixed(2);
  const oursUs = cpu.user + cpu.system - senderUs;
  process.stderr.write(
    `alerts ${args.alerts} (after ${args.warmup} warm-up) in bursts of ${args.burst}, printed ${printed} of ${sent}, ` +
      `lost ${lost.socket}\nCPU per alert: ${us(oursUs)} µs (process ${us(cpu.user + cpu.system)} less the ` +
      `sender thread ${us(senderUs)}); ${Math.round(args.alerts / wallS)} alerts/s wall, sender included\n`,
  );
  if (printed !== sent || lost.socket !== 0) process.exitCode = 1;
}

if (isMainThread) await receiver(parseArgs(process.argv.slice(2)));
else sender((workerData as { shared: Int32Array }).shared, (workerData as { group: number }).group);
