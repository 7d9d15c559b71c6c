// What dwdump writes for a drop the bpf source captured: the kernel's `%pS` text of its PC and the PACKET_ALERT
// drop_monitor would have sent, checked against alerts the qemu guest's drop_monitor sent (test/fixtures/netdm).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decodePacketAlert } from '../../src/netdm/codec.js';
import { parseKallsyms } from '../../src/symbols/kallsyms.js';
import type { PacketDrop } from '../../src/backend/types.js';
import { alertFromDrop, kernelSymbolText, NET_DM_SYMBOL_MAX } from '../../src/dwdump/alert.js';
import { fixtureMessage, fixtureText } from '../netdm/fixtures.js';

const kas = parseKallsyms(fixtureText('kallsyms-excerpt.txt'));

test("kernelSymbolText: %pS as drop_monitor's SYMBOL, from kallsyms: name+0xoff/0xsize", () => {
  const p = decodePacketAlert(fixtureMessage('packet-alert-0.bin'));
  assert.equal(kernelSymbolText(kas, p.pc!), p.symbol);
  assert.equal(kernelSymbolText(kas, 0xffffffff8188bc60n), '__udp4_lib_rcv+0/0xc30');
});

test('kernelSymbolText: a module symbol names its module; no symbol, the bare address; cut to 39 bytes', () => {
  const index = parseKallsyms(
    [
      'ffffffff81000000 T _stext',
      'ffffffffc0001000 t nsim_dev_trap_report_work\t[netdevsim]',
      'ffffffffc0001400 t nsim_other\t[netdevsim]',
      'ffffffffc0002000 t a_very_long_function_name_that_goes_on_and_on\t[mod]',
      'ffffffffc0002100 t next_one\t[mod]',
    ].join('\n'),
  );
  assert.equal(kernelSymbolText(index, 0xffffffffc0001010n), 'nsim_dev_trap_report_work+0x10/0x400 [n');
  assert.equal(kernelSymbolText(index, 0xffffffffc0001010n).length, NET_DM_SYMBOL_MAX);
  assert.equal(kernelSymbolText(index, 0x1000n), '0x1000');
  assert.equal(kernelSymbolText(null, 0xffffffff8188c602n), '0xffffffff8188c602');
  assert.equal(kernelSymbolText(index, 0xffffffffc0002001n).length, NET_DM_SYMBOL_MAX);
});

test("alertFromDrop: a captured drop with the kernel alert's fields encodes to the kernel's bytes", () => {
  for (const name of ['packet-alert-0.bin', 'packet-alert-trunc20-0.bin']) {
    const msg = fixtureMessage(name);
    const k = decodePacketAlert(msg);
    // What the bpf source reports for the same drop: no symbol text, the device's name, the task, the flow.
    const captured: PacketDrop = {
      origin: 'software',
      pc: k.pc!,
      timestampNs: k.timestampNs!,
      reason: k.reason!,
      protocol: k.protocol!,
      origLen: k.origLen!,
      inPort: { ifindex: 1, name: 'lo' },
      netns: 4026531840,
      payload: k.payload!,
      pid: 123,
      comm: 'bash',
    };
    assert.deepEqual(alertFromDrop(captured, msg.header.type, kas), msg.raw, name);
  }
});

test('alertFromDrop: a drop without a device has an empty IN_PORT; without bytes, no PROTO nor PAYLOAD', () => {
  const bytes = alertFromDrop(
    { origin: 'software', pc: 0xffffffff8188c602n, reason: 'NO_SOCKET', origLen: 0 },
    40,
    kas,
  );
  const p = decodePacketAlert({
    header: { len: bytes.length, type: 40, flags: 0, seq: 0, pid: 0 },
    payload: bytes.subarray(16),
    raw: bytes,
  });
  assert.deepEqual(p, {
    origin: 'software',
    pc: 0xffffffff8188c602n,
    reason: 'NO_SOCKET',
    symbol: '__udp4_lib_rcv+0x9a2/0xc30',
    inPort: {},
    origLen: 0,
  });
});
