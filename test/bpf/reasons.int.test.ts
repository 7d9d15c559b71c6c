// The subsystem reasons read from this kernel's BTF and from a module's split BTF beside it, as /sys/kernel/btf lays
// them out: the module here is made over this kernel's own BTF (this machine loads no modules).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isReasonEnum, parseBtf } from '../../src/bpf/btf.js';
import { readSubsystemReasons } from '../../src/bpf/reasons.js';
import { integrationOnly } from '../helpers/suite.js';

integrationOnly('test/bpf/reasons.int.test.ts (the running kernel BTF)');

const VMLINUX = '/sys/kernel/btf/vmlinux';
const skip = existsSync(VMLINUX) ? false : 'needs /sys/kernel/btf/vmlinux';

/** A split BTF holding one enum, over a base whose string section is baseStrings long (BTF's layout, little-endian). */
function splitEnum(baseStrings: number, name: string, members: readonly [number, string][]): Buffer {
  const names = [name, ...members.map(([, n]) => n)];
  const strings = Buffer.from(`\0${names.join('\0')}\0`);
  const offset = (i: number): number => baseStrings + 1 + names.slice(0, i).reduce((n, s) => n + s.length + 1, 0);
  const type = Buffer.alloc(12 + 8 * members.length);
  type.writeUInt32LE(offset(0), 0);
  type.writeUInt32LE((6 << 24) | members.length, 4); // BTF_KIND_ENUM, vlen
  type.writeUInt32LE(4, 8);
  members.forEach(([value], i) => {
    type.writeUInt32LE(offset(i + 1), 12 + i * 8);
    type.writeUInt32LE(value, 16 + i * 8);
  });
  const header = Buffer.alloc(24);
  header.writeUInt16LE(0xeb9f, 0);
  header.writeUInt8(1, 2);
  header.writeUInt32LE(24, 4);
  header.writeUInt32LE(0, 8);
  header.writeUInt32LE(type.length, 12);
  header.writeUInt32LE(type.length, 16);
  header.writeUInt32LE(strings.length, 20);
  return Buffer.concat([header, type, strings]);
}

describe("this kernel's drop-reason subsystems", { skip }, () => {
  let dir: string;
  let openvswitch: number;
  let baseStrings: number;

  before(() => {
    const bytes = readFileSync(VMLINUX);
    baseStrings = bytes.readUInt32LE(20);
    const subsys = parseBtf(bytes, isReasonEnum).enums.find((e) => e.name === 'skb_drop_reason_subsys');
    openvswitch = subsys?.members.find(([, n]) => n === 'SKB_DROP_REASON_SUBSYS_OPENVSWITCH')?.[0] ?? 0;
    dir = mkdtempSync(join(tmpdir(), 'dwtest-btf-'));
    symlinkSync(VMLINUX, join(dir, 'vmlinux'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  test('vmlinux lists OPENVSWITCH among its subsystems; with no module loaded no subsystem reason is named', async () => {
    assert.ok(openvswitch > 0, 'enum skb_drop_reason_subsys names OPENVSWITCH (Linux 6.8 and later)');
    assert.deepEqual(await readSubsystemReasons(undefined, dir), []);
  });

  test("a module's split BTF over this kernel's: its enum's reasons named with this kernel's numbering", async () => {
    const base = openvswitch << 16;
    writeFileSync(
      join(dir, 'openvswitch'),
      splitEnum(baseStrings, 'ovs_drop_reason', [
        [base, '__OVS_DROP_REASON'],
        [base + 1, 'OVS_DROP_LAST_ACTION'],
        [base + 2, 'OVS_DROP_ACTION_ERROR'],
        [base + 3, 'OVS_DROP_MAX'],
      ]),
    );
    writeFileSync(join(dir, 'broken'), Buffer.from('ovs_drop_reason\0 but not BTF'));
    assert.deepEqual(await readSubsystemReasons(undefined, dir), [
      [base + 1, 'OVS_DROP_LAST_ACTION'],
      [base + 2, 'OVS_DROP_ACTION_ERROR'],
    ]);
  });
});
