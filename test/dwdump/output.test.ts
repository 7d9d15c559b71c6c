// The capture file policy (0600, no symlinks, only our own single-link files) and the pcap stream, on the host.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import {
  closeSync,
  linkSync,
  mkdtempSync,
  openSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { DropwatchError } from '../../src/errors/index.js';
import { openCaptureTarget, PcapSink } from '../../src/dwdump/output.js';
import {
  decodePcap,
  decodeSll,
  LINKTYPE_NETLINK,
  NETLINK_SLL,
  timestampFromMs,
  type Timestamp,
} from '../../src/pcap/index.js';
import { decodeNlMsgs, GENL_HDRLEN, NLMSG_HDRLEN } from '../../src/netlink/codec.js';
import { decodePacketAlert } from '../../src/netdm/codec.js';
import { fixtureBytes, fixtureMessage } from '../netdm/fixtures.js';
import { pcapTimeOfNs } from '../helpers/pcap-time.js';

function scratch(t: { after: (fn: () => void) => void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'dwdump-out-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

const mode = (p: string): number => statSync(p).mode & 0o777;

function refused(fn: () => unknown, message: RegExp): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof DropwatchError, String(err));
    assert.equal(err.exitCode, 1);
    assert.match(err.message, message);
    assert.ok(!err.message.includes('\n'));
    return true;
  });
}

test('a new file is created 0600 whatever the umask allows; a stricter umask wins', (t) => {
  const dir = scratch(t);
  const old = process.umask(0o022);
  try {
    const a = openCaptureTarget(join(dir, 'a.pcap'));
    closeSync(a.fd);
    assert.equal(mode(join(dir, 'a.pcap')), 0o600);
    process.umask(0o077);
    closeSync(openCaptureTarget(join(dir, 'b.pcap')).fd);
    assert.equal(mode(join(dir, 'b.pcap')), 0o600);
    process.umask(0o277);
    closeSync(openCaptureTarget(join(dir, 'c.pcap')).fd);
    assert.equal(mode(join(dir, 'c.pcap')), 0o400);
  } finally {
    process.umask(old);
  }
});

test('an existing file of ours is truncated and its mode tightened to 0600', (t) => {
  const dir = scratch(t);
  const p = join(dir, 'old.pcap');
  writeFileSync(p, 'previous contents', { mode: 0o644 });
  const target = openCaptureTarget(p);
  closeSync(target.fd);
  assert.equal(readFileSync(p).length, 0);
  assert.equal(mode(p), 0o600);
});

test('a symlink is refused with one line, and its target is left alone', (t) => {
  const dir = scratch(t);
  const victim = join(dir, 'victim');
  writeFileSync(victim, 'keep me');
  symlinkSync(victim, join(dir, 'link.pcap'));
  refused(() => openCaptureTarget(join(dir, 'link.pcap')), /^refusing to write .*link\.pcap: it is a symbolic link$/);
  symlinkSync(join(dir, 'nowhere'), join(dir, 'dangling.pcap'));
  refused(() => openCaptureTarget(join(dir, 'dangling.pcap')), /symbolic link/);
  assert.equal(readFileSync(victim, 'utf8'), 'keep me');
  assert.throws(() => statSync(join(dir, 'nowhere')), /ENOENT/);
});

test("a hard-linked file or someone else's file is refused before it is truncated", (t) => {
  const dir = scratch(t);
  const victim = join(dir, 'victim');
  writeFileSync(victim, 'keep me');
  linkSync(victim, join(dir, 'hard.pcap'));
  refused(() => openCaptureTarget(join(dir, 'hard.pcap')), /has 2 hard links/);
  writeFileSync(join(dir, 'theirs.pcap'), 'theirs');
  refused(() => openCaptureTarget(join(dir, 'theirs.pcap'), { euid: 4242 }), /belongs to uid \d+, not to us/);
  assert.equal(readFileSync(victim, 'utf8'), 'keep me');
  assert.equal(readFileSync(join(dir, 'theirs.pcap'), 'utf8'), 'theirs');
});

test('other open failures are one line with the strerror text', (t) => {
  const dir = scratch(t);
  refused(() => openCaptureTarget(join(dir, 'no', 'such', 'dir.pcap')), /^cannot open .*: No such file or directory$/);
  refused(() => openCaptureTarget(dir), /^cannot open .*: Is a directory$/);
});

test('/dev/null and standard output (not a terminal) are accepted as they are', () => {
  const n = openCaptureTarget('/dev/null');
  assert.equal(n.owned, true);
  closeSync(n.fd);
  const fd = openSync('/dev/null', 'w');
  try {
    assert.deepEqual(openCaptureTarget(null, { stdoutFd: fd }), { fd, name: 'standard output', owned: false });
  } finally {
    closeSync(fd);
  }
});

test('a new sink is a valid pcap at once: the header is written as the file is created, before any record', (t) => {
  const dir = scratch(t);
  const p = join(dir, 'early.pcap');
  // What a capture ended by SIGTERM right after it opened its file leaves behind.
  const sink = new PcapSink(openCaptureTarget(p), { snaplen: 65535 + 2048 });
  const f = decodePcap(readFileSync(p));
  assert.equal(f.header.linktype, LINKTYPE_NETLINK);
  assert.equal(f.records.length, 0);
  assert.equal(f.trailing, 0);
  sink.close();
});

test('the sink writes the header, then one record per message with the cooked header', (t) => {
  const dir = scratch(t);
  const p = join(dir, 'sink.pcap');
  const sink = new PcapSink(openCaptureTarget(p), { snaplen: 65535 + 2048, now: () => 1_795_678_126_941.832 });
  const family = fixtureBytes('ctrl-getfamily-reply.bin');
  const alert = fixtureBytes('packet-alert-0.bin');
  sink.writeMessages([family]);
  sink.writeMessages([alert, alert]);
  sink.close();
  sink.close();
  assert.equal(sink.records, 3);
  const f = decodePcap(readFileSync(p));
  assert.equal(f.header.linktype, LINKTYPE_NETLINK);
  assert.equal(f.header.snaplen, 67583);
  assert.equal(f.trailing, 0);
  assert.deepEqual(
    f.records.map((r) => [r.ts.sec, r.ts.usec, r.origLen]),
    [
      [1795678126, 941832, 16 + family.length],
      [1795678126, 941832, 16 + alert.length],
      [1795678126, 941832, 16 + alert.length],
    ],
  );
  for (const r of f.records) assert.deepEqual(r.data.subarray(0, 16), Buffer.from(NETLINK_SLL));
  assert.deepEqual(Buffer.from(decodeSll(f.records[0]!.data).payload), Buffer.from(family));
  assert.throws(() => sink.writeMessages([alert]), /closed/);
});

test("one batch of PACKET_ALERTs: each record's time is its packet's drop time; other records the write time", (t) => {
  const dir = scratch(t);
  const p = join(dir, 'times.pcap');
  const alerts = ['packet-alert-0.bin', 'packet-alert-1.bin', 'packet-alert-2.bin'].map(fixtureMessage);
  const familyId = alerts[0]!.header.type;
  const written = 1_795_678_126_941.832;
  const sink = new PcapSink(openCaptureTarget(p), {
    snaplen: 65535 + 2048,
    now: () => written,
    netdmFamilyId: familyId,
  });
  // A malformed alert (nlmsg_len cut into its attributes) is still written, whole, at the write time.
  const malformed = alerts[2]!.raw.slice();
  new DataView(malformed.buffer).setUint16(NLMSG_HDRLEN + GENL_HDRLEN, 0xfff0, true);
  sink.writeMessages([fixtureBytes('ctrl-getfamily-reply.bin')]);
  sink.writeMessages([...alerts.map((m) => m.raw), fixtureBytes('alert-summary-0.bin'), malformed]);
  sink.close();
  const f = decodePcap(readFileSync(p));
  assert.equal(f.records.length, 6);
  const us = (ts: Timestamp) => ts.sec * 1_000_000 + ts.usec;
  const dropUs = alerts.map((m) => Number(decodePacketAlert(m).timestampNs! / 1000n));
  assert.deepEqual(
    f.records.map((r) => us(r.ts)),
    [us(timestampFromMs(written)), ...dropUs, us(timestampFromMs(written)), us(timestampFromMs(written))],
  );
  assert.equal(new Set(dropUs).size, 3, 'three drops, three record times, though one batch');
  assert.deepEqual(Buffer.from(decodeSll(f.records[5]!.data).payload), Buffer.from(malformed));
});

test("Debian dwdump's capture written again by our sink: the same bytes but the alerts' times, the kernel's", (t) => {
  const dir = scratch(t);
  const p = join(dir, 'again.pcap');
  const theirs = decodePcap(fixtureBytes('dwdump-packet.pcap'));
  const first = theirs.records[0]!.ts;
  const messages = theirs.records.map((r) => decodeSll(r.data).payload);
  const familyId = decodeNlMsgs(messages[1]!)[0]!.header.type;
  // Debian's snaplen is its default truncation length (65535) + 2048, ours is the same.
  const sink = new PcapSink(openCaptureTarget(p), {
    snaplen: theirs.header.snaplen,
    now: () => first.sec * 1000 + first.usec / 1000,
    netdmFamilyId: familyId,
  });
  for (const m of messages) sink.writeMessages([m]);
  sink.close();
  const bytes = readFileSync(p);
  const ours = decodePcap(bytes);
  assert.deepEqual(bytes.subarray(0, 24), Buffer.from(fixtureBytes('dwdump-packet.pcap').subarray(0, 24)));
  assert.equal(ours.records.length, theirs.records.length);
  assert.deepEqual(ours.records[0]!.ts, first, 'the family record: the write time');
  ours.records.forEach((r, i) => {
    const d = theirs.records[i]!;
    assert.deepEqual([Buffer.from(r.data), r.origLen], [Buffer.from(d.data), d.origLen], `record ${i + 1}`);
    if (i === 0) return;
    const drop = pcapTimeOfNs(decodePacketAlert(decodeNlMsgs(messages[i]!)[0]!).timestampNs!);
    assert.deepEqual(r.ts, drop, `record ${i + 1}: the drop time`);
    // Debian's dwdump stamped the same record when it received it, a little later.
    assert.ok(r.ts.sec * 1e6 + r.ts.usec < d.ts.sec * 1e6 + d.ts.usec, `record ${i + 1}`);
  });
});

test('a reader that goes away turns into OutputClosedError (EPIPE), not a crash', () => {
  // The writer's fd 1 is a pipe whose reader (`true`) exits at once; Node ignores SIGPIPE, so write() says EPIPE.
  // No need to wait for it to go: the writes outgrow the pipe, so one blocks until it has gone, and then fails.
  const mod = pathToFileURL(join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'src', 'dwdump', 'output.js'));
  const script =
    `const m = await import(${JSON.stringify(mod.href)});` +
    `try { for (let i = 0; i < 100; i++) m.writeAll(1, new Uint8Array(65536), 'stdout'); console.error('no error'); }` +
    `catch (e) { console.error(e instanceof m.OutputClosedError ? 'closed' : String(e)); }`;
  const r = spawnSync('sh', ['-c', `"${process.execPath}" --input-type=module -e "$0" | true`, script], {
    encoding: 'utf8',
  });
  assert.equal(r.stderr.trim(), 'closed');
});
