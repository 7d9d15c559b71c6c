// NET_DM on a real kernel: a qemu boot (Debian 6.1 with drop_monitor, shared with the run's other qemu sessions: see
// test/qemu/suite.ts) runs test/netdm/guest/session.sh, which drives Debian's dropwatch and our CLI through the same
// steps, then our backend directly, then our flow filters. Skips when the guest cannot run.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { extractBase64, keepTranscript, type GuestResult } from '../qemu/harness.js';
import { sessionResult, sessionUnavailable } from '../qemu/suite.js';
import { fixturePath } from '../helpers/paths.js';
import { tsharkAvailable, tsharkFields } from '../helpers/tshark.js';
import { ALREADY_MONITORING_HINT } from '../../src/netdm/index.js';
import { compile, format, parse, recordFromPacket } from '../../src/filter/index.js';
import type { Flow } from '../../src/packet/types.js';
import { lostIn, RSS_BOUND_KIB } from '../../bench/lib/stalled.js';

/** How late, past -d, a packet-mode run whose reader stalls may end in the guest, s. */
const LATE_S = 2;

// Lines both tools print; ours adds stderr-only notes (lost counts, hints) that dropwatch has no equivalent for, in
// packet mode each drop's flow line, and after `show` its call chain and grouping settings.
const comparable = (lines: string[]): string[] =>
  lines.filter(
    (l) =>
      !l.startsWith('Lost before delivery') &&
      !l.startsWith('rc=') &&
      !l.startsWith('flow: ') &&
      !l.startsWith('Call chain sampling: ') &&
      !l.startsWith('Summary lines grouped by: '),
  );

/** One flow as `ipv4 udp 127.0.0.1.40001 > 127.0.0.1.9` (no ports: `ipv6 icmpv6 ::1 > ::1`), from any side. */
function flowKey(l3: string, l4: string, src: string, sport: string, dst: string, dport: string): string {
  const end = (address: string, port: string): string => (port === '' ? address : `${address}.${port}`);
  return `${l3} ${l4} ${end(src, sport)} > ${end(dst, dport)}`;
}

const L4_WORDS: Record<string, string> = { UDP: 'udp', TCP: 'tcp', ICMP: 'icmp', ICMP6: 'icmpv6' };

/** The flows our text lines print: `flow: IP 127.0.0.1.40001 > 127.0.0.1.9: UDP, length 6`. */
function textFlows(lines: string[]): string[] {
  return lines
    .filter((l) => l.startsWith('flow: '))
    .map((l) => {
      const m = /^flow: (IP6?) (\S+) > (\S+): (UDP|TCP|ICMP6?)\b/.exec(l);
      assert.ok(m, `flow line not understood: ${l}`);
      const l4 = L4_WORDS[m[4]!]!;
      // Ports follow the address after its last dot, for the transports that have them.
      const split = (end: string): [string, string] =>
        l4 === 'udp' || l4 === 'tcp'
          ? [end.slice(0, end.lastIndexOf('.')), end.slice(end.lastIndexOf('.') + 1)]
          : [end, ''];
      const [src, sport] = split(m[2]!);
      const [dst, dport] = split(m[3]!);
      return flowKey(m[1] === 'IP' ? 'ipv4' : 'ipv6', l4, src, sport, dst, dport);
    });
}

/** What tshark decodes under each NET_DM packet alert of a pcap: the network and transport layers of the payload. */
function tsharkFlows(path: string): string[] {
  const fields = ['frame.protocols', 'ip.src', 'ip.dst', 'ipv6.src', 'ipv6.dst'];
  fields.push('udp.srcport', 'udp.dstport', 'tcp.srcport', 'tcp.dstport');
  return tsharkFields(path, fields, 'net_dm', true)
    .map((row) => fields.map((f) => row[f] ?? ''))
    .map(([protocols, ip4src, ip4dst, ip6src, ip6dst, usport, udport, tsport, tdport]) => {
      const layers = protocols!.split(':');
      const v6 = layers.includes('ipv6');
      const l4 = layers[layers.indexOf(v6 ? 'ipv6' : 'ip') + 1] ?? '';
      // Ports of the outer transport only: under an ICMP error tshark also decodes the packet it quotes.
      const [sport, dport] = l4 === 'tcp' ? [tsport, tdport] : l4 === 'udp' ? [usport, udport] : ['', ''];
      return flowKey(v6 ? 'ipv6' : 'ipv4', l4, (v6 ? ip6src : ip4src)!, sport!, (v6 ? ip6dst : ip4dst)!, dport!);
    });
}

const sorted = (xs: string[]): string[] => [...xs].sort();

function json(lines: string[]): Record<string, unknown>[] {
  return lines.filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>);
}

test('NET_DM in qemu: Debian dropwatch and ours side by side, refusals, signals, overflow', async (t) => {
  // The session (test/netdm/guest/session.sh) and its options are in test/qemu/suite.ts, which may share its boot.
  const why = await sessionUnavailable('netdm');
  if (why !== null) {
    t.skip(why);
    return;
  }
  const r: GuestResult = await sessionResult('netdm');
  const { sec } = keepTranscript(t, r, 'netdm-qemu');
  const sym = sec('kallsyms')[0]!;
  const base = BigInt(`0x${sym.split(' ')[0]}`);

  await t.test('summary: 100 datagrams → one line "100 drops at __udp4_lib_rcv+…", identical to dropwatch', () => {
    const theirs = comparable(sec('summary-theirs'));
    const ours = comparable(sec('summary-ours'));
    const line = (l: string[]): string | undefined => l.find((x) => / drops at /.test(x));
    const m = /^100 drops at __udp4_lib_rcv\+([0-9a-f]+) \(0x([0-9a-f]+)\) \[software\]$/.exec(line(theirs) ?? '');
    assert.ok(m, `dropwatch printed: ${theirs.join(' | ')}`);
    assert.equal(BigInt(`0x${m[2]}`) - base, BigInt(`0x${m[1]}`));
    assert.equal(line(ours), line(theirs));
    assert.deepEqual(ours, theirs);
  });

  // This boot also carries the harness's own check (it had a boot of its own in test/qemu/harness.test.ts): the module
  // is loaded, Debian's dropwatch counts the 100 drops at __udp4_lib_rcv, and the PC is the one in the fixtures.
  await t.test('guest boots with drop_monitor and Debian dropwatch counts 100 drops (PC as in the fixtures)', (tt) => {
    assert.equal(r.moduleLoaded, true, r.moduleError ?? '');
    assert.match(sec('modules')[0] ?? '', /^drop_monitor /);
    const line = sec('summary-theirs').find((l) => / drops at /.test(l)) ?? '';
    const m = /^100 drops at __udp4_lib_rcv\+([0-9a-f]+) \(0x([0-9a-f]+)\) \[software\]$/.exec(line);
    assert.ok(m, sec('summary-theirs').join('\n'));
    // dropwatch's symbol+offset must agree with the guest's own kallsyms.
    const ksym = /^([0-9a-f]+) T __udp4_lib_rcv$/.exec(sym);
    assert.ok(ksym, 'no __udp4_lib_rcv in /proc/kallsyms');
    assert.equal(BigInt(`0x${m[2]!}`) - BigInt(`0x${ksym[1]!}`), BigInt(`0x${m[1]!}`));
    // The fixtures were captured on this kernel with nokaslr: the same PC must come back, or the fixtures no longer
    // describe the kernel the harness boots (Debian replaced the package).
    const manifest = JSON.parse(readFileSync(fixturePath('netdm', 'manifest.json'), 'utf8')) as {
      kernel: { release: string };
    };
    const expected = readFileSync(fixturePath('netdm', 'dropwatch-summary.txt'), 'utf8');
    if (manifest.kernel.release === r.kernelRelease) {
      assert.ok(expected.includes(m[0]), `fixture dropwatch-summary.txt has no line "${m[0]}"`);
    } else {
      tt.diagnostic(`fixtures are from ${manifest.kernel.release}, guest runs ${r.kernelRelease}: PC not compared`);
    }
  });

  await t.test('exact counts: 1000 datagrams over several kernel intervals sum to 1000', () => {
    const lines = sec('count-ours');
    let total = 0;
    let intervals = 0;
    for (const l of lines) {
      const m = /^(\d+) drops at __udp4_lib_rcv\+/.exec(l);
      if (m) {
        total += Number(m[1]);
        intervals++;
      }
    }
    assert.equal(total, 1000, lines.join('\n'));
    // Four bursts over more than 3 s: the count really spans several summary alerts.
    assert.ok(intervals >= 2, lines.join('\n'));
  });

  await t.test('show / stats / set alertmode print what dropwatch prints', () => {
    assert.deepEqual(comparable(sec('config-ours')), comparable(sec('config-theirs')));
  });

  await t.test("packet mode: three blocks with dropwatch's fields, alert limit 3", () => {
    const norm = (l: string[]): string[] =>
      comparable(l).map((x) => (x.startsWith('timestamp: ') ? x.replace(/\d\d:\d\d:\d\d \d+ \d+ nsec$/, 'T') : x));
    const theirs = norm(sec('packet-theirs'));
    const ours = norm(sec('packet-ours'));
    assert.deepEqual(ours, theirs);
    assert.equal(ours.filter((l) => l.startsWith('drop at: __udp4_lib_rcv+')).length, 3);
    for (const len of [53, 54, 55]) assert.ok(ours.includes(`length: ${len}`), `length ${len}`);
    assert.ok(ours.includes('Alert limit reached, deactivating!'));
  });

  await t.test('refusals while another dropwatch monitors: EAGAIN on start (with the way out), EBUSY on config', () => {
    const eagain = sec('eagain-ours');
    const theirsLine = sec('eagain-theirs').find((l) => l.startsWith('Failed activation request'));
    assert.equal(theirsLine, 'Failed activation request, error: Resource temporarily unavailable');
    const oursLine = eagain.find((l) => l.startsWith('Failed activation request'));
    assert.ok(oursLine?.startsWith(theirsLine), oursLine);
    assert.ok(oursLine?.includes(ALREADY_MONITORING_HINT), oursLine);
    const busyTheirs = sec('ebusy-theirs').find((l) => l.startsWith('Failed config request'));
    const busyOurs = sec('ebusy-ours').find((l) => l.startsWith('Failed config request'));
    assert.equal(busyTheirs, 'Failed config request, error: Device or resource busy');
    assert.ok(busyOurs?.startsWith(busyTheirs), busyOurs);
    assert.ok(busyOurs?.includes('drop_monitor: Cannot configure drop monitor during monitoring'), busyOurs);
  });

  await t.test('SIGTERM stops kernel monitoring: a fresh process starts and counts 5 drops', () => {
    assert.ok(sec('sigterm-ours').includes('Got a stop message'), sec('sigterm-ours').join('\n'));
    const after = sec('after-sigterm');
    assert.ok(after.includes('Kernel monitoring activated.'), after.join('\n'));
    assert.ok(
      after.some((l) => /^5 drops at __udp4_lib_rcv\+/.test(l)),
      after.join('\n'),
    );
  });

  await t.test(
    'SIGKILL leaves the kernel monitoring: EAGAIN with the hint, a STOP from another process recovers',
    () => {
      const after = sec('after-sigkill');
      assert.ok(
        after.some((l) => l.startsWith('Failed activation request, error: Resource temporarily unavailable')),
        after.join('\n'),
      );
      assert.deepEqual(json(sec('recover')), [{ check: 'recover-stop', ok: true }]);
      const rec = sec('after-recover');
      assert.ok(
        rec.some((l) => /^7 drops at __udp4_lib_rcv\+/.test(l)),
        rec.join('\n'),
      );
    },
  );

  await t.test('process.exit without close(): the exit hook stops the kernel', () => {
    assert.deepEqual(json(sec('exit-hook')), [
      { check: 'start-exit', started: true },
      { check: 'after-exit', start: 'ok' },
    ]);
  });

  await t.test('backend API: family, sw/hw flags, double start, config busy, close stops, config round trip', () => {
    const api = json(sec('api'));
    t.diagnostic(JSON.stringify(api));
    const get = (check: string): Record<string, unknown>[] => api.filter((o) => o['check'] === check);
    assert.equal(get('family')[0]?.['name'], 'netdm');
    assert.deepEqual(get('config')[0]?.['config'], { alertMode: 'summary', truncLen: 0, queueLen: 1000 });
    const flags = get('flags');
    assert.equal(flags.length, 3);
    assert.equal(flags[0]?.['start'], 'ok', 'sw only');
    const dbl = get('double-start')[0]!;
    assert.equal(dbl['errno'], 11);
    assert.equal(dbl['code'], 'E_KERNEL');
    assert.match(String(dbl['extack']), /^drop_monitor: Trace state already set to requested state; /);
    const busy = get('config-busy')[0]!;
    assert.equal(busy['errno'], 16);
    assert.equal(busy['extack'], 'drop_monitor: Cannot configure drop monitor during monitoring');
    assert.equal(get('start-after-close')[0]?.['ok'], true);
    assert.deepEqual(get('config-set')[0]?.['config'], { alertMode: 'packet', truncLen: 20, queueLen: 7 });
    assert.deepEqual(get('config-reset')[0]?.['config'], { alertMode: 'summary', truncLen: 0, queueLen: 1000 });
  });

  await t.test(
    'overflow: packet flood into a small receive buffer; the process lives and received + lost adds up',
    () => {
      const o = json(sec('overflow')).find((x) => x['check'] === 'overflow');
      assert.ok(o, sec('overflow').join('\n'));
      t.diagnostic(JSON.stringify(o));
      const sent = Number(o['sent']);
      const received = Number(o['received']);
      const lost = Number(o['socketLost']);
      const tail = Number(o['tailDropped']);
      assert.ok(lost > 0, 'the small buffer overflowed');
      assert.equal(Number(o['lostEvents']), lost, 'lost events report the same count as getStats');
      assert.equal(Number(o['other']), 0, 'no other drops in the quiet guest');
      assert.equal(received + lost + tail, sent);
    },
  );

  await t.test('flows in packet mode: UDP and TCP, IPv4 and IPv6, as tshark decodes them from dwdump -p', (tt) => {
    const text = sec('flows-text');
    const jsonLines = json(sec('flows-json')).filter((o) => o['type'] === 'packet');
    const ours = {
      text: textFlows(text),
      json: jsonLines.map((o) =>
        flowKey(
          String(o['l3']),
          String(o['l4']),
          String(o['src']),
          typeof o['sport'] === 'number' ? String(o['sport']) : '',
          String(o['dst']),
          typeof o['dport'] === 'number' ? String(o['dport']) : '',
        ),
      ),
    };
    tt.diagnostic(`text flows: ${ours.text.join(' | ')}`);
    // Each run made two of each: UDP to port 9 and a TCP SYN to port 10, from 127.0.0.1 and from ::1. (IPv6 also
    // drops the ICMPv6 port unreachable that the UDP drop sends back to a socket already closed.)
    for (const [fmt, flows] of Object.entries(ours)) {
      for (const want of [
        /^ipv4 udp 127\.0\.0\.1\.\d+ > 127\.0\.0\.1\.9$/,
        /^ipv6 udp ::1\.\d+ > ::1\.9$/,
        /^ipv4 tcp 127\.0\.0\.1\.\d+ > 127\.0\.0\.1\.10$/,
        /^ipv6 tcp ::1\.\d+ > ::1\.10$/,
      ])
        assert.equal(flows.filter((f) => want.test(f)).length, 2, `${fmt}: two of ${want} in ${flows.join(' | ')}`);
    }
    for (const o of jsonLines) if (o['l4'] !== 'icmpv6') assert.equal(o['reason'], 'NO_SOCKET', JSON.stringify(o));
    assert.ok(
      jsonLines.every((o) => o['ifindex'] === 1 && o['ifname'] === null),
      'dropped on lo, named by index',
    );
    // The text block is dropwatch's with the flow line last: after "drop reason:", before the blank line.
    for (const [i, l] of text.entries())
      if (l.startsWith('flow: ')) assert.ok(text[i - 1]?.startsWith('drop reason: ') && text[i + 1] === '', l);
    if (!tsharkAvailable()) {
      tt.skip('tshark is not installed (Debian package tshark)');
      return;
    }
    for (const fmt of ['text', 'json'] as const) {
      const pcap = join(tmpdir(), `netdm-qemu-flows-${fmt}.pcap`);
      writeFileSync(pcap, extractBase64(r.stdout, `FLOWS-${fmt.toUpperCase()}`));
      assert.deepEqual(sorted(ours[fmt]), sorted(tsharkFlows(pcap)), `${fmt}: our flows and tshark's from ${pcap}`);
    }
  });

  await t.test('set trunc 20: the flow line says the packet stopped in the IPv4 header', () => {
    const lines = sec('flows-trunc');
    assert.ok(lines.includes('length: 20'), lines.join('\n'));
    assert.ok(lines.includes('flow: IP, truncated in the IPv4 header'), lines.join('\n'));
  });

  await t.test(
    'packet mode, a reader that stalls: memory bounded, printed + lost + tail drops = sent, -d on time',
    () => {
      const o = json(sec('stalled')).find((x) => x['check'] === 'stalled');
      assert.ok(o, sec('stalled').join('\n'));
      const stderr = String(o['stderr']);
      const lost = lostIn(stderr);
      const elsewhere = [...lost.elsewhere.values()].reduce((a, b) => a + b, 0);
      const figures = {
        ...o,
        stderr: undefined,
        lostOutput: lost.output,
        lostElsewhere: Object.fromEntries(lost.elsewhere),
      };
      t.diagnostic(JSON.stringify(figures));
      const sent = Number(o['sent']);
      const seconds = Number(o['seconds']);
      assert.equal(o['code'], 0, stderr);
      assert.equal(sent, Number(o['count']));
      assert.equal(Number(o['noPorts']), sent, 'one NO_SOCKET drop per datagram, no other UDP drops');
      assert.ok(Number(o['sendMs']) < seconds * 1000, 'the flood ended while monitoring');
      assert.equal(Number(o['printedOther']), 0, 'no other drops in the quiet guest');
      // The output passed its bound: drops were counted instead of queued.
      assert.match(
        stderr,
        /^Lost \d+ drop events that dropwatch could not print: the reader of its output fell behind$/m,
      );
      // Every drop made is a whole line the reader got, or reported lost once: by the output, on the way (our socket),
      // or in the kernel (its per-CPU queue).
      assert.equal(Number(o['printed']) + lost.output + elsewhere + Number(o['tailDropped']), sent, stderr);
      const peak = Number(o['peakKiB']);
      assert.ok(peak > 0 && peak < RSS_BOUND_KIB, `peak RSS ${peak} KiB`);
      // From monitoring on, as the driver saw it, to the process gone: -d, the stop, and half a second for a reader
      // that takes nothing, all under TCG.
      assert.ok(Number(o['runMs']) < (seconds + LATE_S) * 1000, `ran ${Number(o['runMs'])} ms for -d ${seconds}`);
    },
  );

  await t.test(
    'not root: show answers, start is refused in one line naming the capability, the session ends cleanly',
    () => {
      // Debian's dropwatch 1.5.4 ends at `show` here ("Failed to get existing configuration: Success"); CONFIG_GET needs
      // no privilege, and ours answers it and goes on, as it does after any refusal.
      t.diagnostic(`Debian's dropwatch as uid 65534: ${JSON.stringify(sec('nobody-theirs'))}`);
      const ours = sec('nobody-ours');
      assert.deepEqual(ours.slice(0, 6), [
        'Initializing kallsyms db',
        'dropwatch> show',
        'Getting existing configuration',
        'Alert mode: Summary',
        'Truncation length: 0',
        'Queue length: 1000',
      ]);
      const i = ours.indexOf('Enabling monitoring...');
      assert.ok(i > 0, ours.join('\n'));
      assert.match(
        ours[i + 1] ?? '',
        /^joining the NET_DM "events" group needs CAP_SYS_ADMIN \(run as root\): Operation not permitted$/,
      );
      assert.ok(!ours.some((l) => l.includes('Kernel monitoring activated')), 'the kernel was not started');
      assert.equal(ours.at(-1), 'rc=0');
    },
  );

  await t.test('flow filters: refused where the mode cannot know the flow, and keep exactly their datagrams', (tt) => {
    const prompt = sec('flowfilter-prompt');
    const refusedFilter =
      'filter not set: dport is known only in packet mode, not in summary mode (set alertmode packet first)';
    const refusedMode =
      'alert mode not set: the filter in force reads a flow field: l4 and dport are known only in packet mode, not in ' +
      'summary mode (set filter none first)';
    assert.ok(prompt.includes(refusedFilter), prompt.join('\n'));
    assert.ok(prompt.includes(refusedMode), prompt.join('\n'));
    assert.ok(prompt.includes('filter set: dport == 9 && l4 == udp (dropwatch: dport == 9 && l4 == udp)'));
    // The refused switch left the kernel in packet mode; once the filter is cleared, summary mode is set.
    assert.ok(prompt.includes('Alert mode: Packet'), prompt.join('\n'));
    assert.equal(prompt.filter((l) => l === 'Alert mode successfully set').length, 3, prompt.join('\n'));
    assert.deepEqual(sec('flowfilter-cli'), [
      'dropwatch: --filter: dport is known only in packet mode, not in summary mode (add -m packet)',
      'rc=1',
    ]);

    // Each run saw 3 datagrams to each of these; the filter keeps the ones listed.
    const sent = ['127.0.0.1:10', '::1:9', '127.0.0.1:9'];
    const keeps: Record<string, string[]> = {
      'dport == 9 && l4 == udp': ['::1:9', '127.0.0.1:9'],
      'dport == 10': ['127.0.0.1:10'],
      'dst in 127.0.0.0/8': ['127.0.0.1:10', '127.0.0.1:9'],
      'dst == 0:0:0:0:0:0:0:1 && l4 == udp': ['::1:9'],
    };
    for (let n = 1; n <= 4; n++) {
      const filter = sec(`flowfilter-${n}-filter`)[0]!;
      const kept = keeps[filter];
      assert.ok(kept, `no expectation for ${filter}`);
      const err = sec(`flowfilter-${n}-err`);
      assert.equal(err.at(-1), 'rc=0', err.join('\n'));
      // Echoed in canonical form: `0:0:0:0:0:0:0:1` comes back as `::1`.
      assert.ok(
        err.some((l) => l.startsWith(`filter set: ${format(parse(filter))} (dropwatch: `)),
        err.join('\n'),
      );
      const packets = json(sec(`flowfilter-${n}`)).filter((o) => o['type'] === 'packet');
      const udp = packets.filter((o) => o['l4'] === 'udp').map((o) => `${String(o['dst'])}:${String(o['dport'])}`);
      tt.diagnostic(`${filter}: ${udp.join(' ')}`);
      for (const to of sent) {
        assert.equal(
          udp.filter((d) => d === to).length,
          kept.includes(to) ? 3 : 0,
          `${filter}: datagrams to ${to} among ${udp.join(' ')}`,
        );
      }
      // Whatever else it printed (the ICMPv6 errors the IPv6 drops send back, say) matches the filter too.
      const test = compile(parse(filter));
      for (const o of packets) {
        const flow = {
          l3: o['l3'] as Flow['l3'],
          src: o['src'] as string | null,
          dst: o['dst'] as string | null,
          l4: o['l4'] as string | null,
          sport: o['sport'] as number | null,
          dport: o['dport'] as number | null,
          vlans: [],
          stopped: null,
        };
        assert.ok(test(recordFromPacket({ origin: 'software', flow })), `${filter} kept ${JSON.stringify(o)}`);
      }
    }
  });

  await t.test(
    '--by dev from the input port in packet mode (an index alone for software drops); refused in summary',
    () => {
      const err = sec('byport-err');
      assert.equal(err.at(-1), 'rc=0', err.join('\n'));
      const lines = sec('byport');
      // Counted into lines, not printed one by one; every drop on lo, by the filter.
      assert.ok(lines.length > 0 && lines.every((l) => /^\d+ drops · dev if1$/.test(l)), lines.join('\n'));
      assert.ok(lines.reduce((n, l) => n + parseInt(l, 10), 0) >= 5, lines.join('\n'));
      assert.deepEqual(sec('byport-summary'), [
        'dropwatch: --by: dev is not known on the netdm backend in summary mode (use -m packet, or -b bpf)',
        'rc=1',
      ]);
    },
  );
});
