// BTF's enums read from real bytes, and the drop-reason subsystems named from them as the kernel encodes them.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { isReasonEnum, parseBtf, subsystemReasons, type BtfEnum } from '../../src/bpf/btf.js';
import { reasonName, reasonTable } from '../../src/bpf/decode.js';

const OVS_BTF = readFileSync(new URL('../../../test/fixtures/bpf/openvswitch-6.12.107.btf', import.meta.url));
// That kernel's vmlinux BTF (its vmlinuz, zstd payload, .BTF): the string section's length, and its subsystems.
const BASE_STRINGS = 1959144;
const SUBSYS_6_12: BtfEnum = {
  name: 'skb_drop_reason_subsys',
  members: [
    [0, 'SKB_DROP_REASON_SUBSYS_CORE'],
    [1, 'SKB_DROP_REASON_SUBSYS_MAC80211_UNUSABLE'],
    [2, 'SKB_DROP_REASON_SUBSYS_MAC80211_MONITOR'],
    [3, 'SKB_DROP_REASON_SUBSYS_OPENVSWITCH'],
    [4, 'SKB_DROP_REASON_SUBSYS_NUM'],
  ],
};
const OVS = 3 << 16;

/** The module's split BTF over a base whose strings the reasons must not need. */
function moduleEnums(): BtfEnum[] {
  const base = { stringsLength: BASE_STRINGS, string: (offset: number) => `<vmlinux string ${offset}>` };
  return parseBtf(OVS_BTF, isReasonEnum, base).enums;
}

test("a module's split BTF: enum ovs_drop_reason read from openvswitch.ko's .BTF (Debian 6.12)", () => {
  const enums = moduleEnums();
  assert.deepEqual(
    enums.map((e) => e.name),
    ['ovs_drop_reason'],
  );
  assert.deepEqual(enums[0]!.members.slice(0, 3), [
    [OVS, '__OVS_DROP_REASON'],
    [OVS + 1, 'OVS_DROP_LAST_ACTION'],
    [OVS + 2, 'OVS_DROP_ACTION_ERROR'],
  ]);
  assert.deepEqual(enums[0]!.members.at(-1), [OVS + 12, 'OVS_DROP_MAX']);
  const all = parseBtf(OVS_BTF, () => true, { stringsLength: BASE_STRINGS, string: () => '' }).enums;
  assert.ok(all.length > 30 && all.some((e) => e.name === 'ovs_key_attr'), 'every enum is walked past');
});

test('bytes that are not BTF, or whose sections run past the end, are refused', () => {
  assert.throws(() => parseBtf(Buffer.from('not btf at all, not at all'), () => true), /bad magic/);
  assert.throws(() => parseBtf(OVS_BTF.subarray(0, 1000), () => true), /past its end/);
});

test("subsystem reasons: the enum's members in a subsystem the kernel lists, without its markers", () => {
  const reasons = subsystemReasons(SUBSYS_6_12, moduleEnums());
  assert.equal(reasons.length, 11);
  assert.deepEqual(reasons[0], [OVS + 1, 'OVS_DROP_LAST_ACTION']);
  assert.deepEqual(reasons.at(-1), [OVS + 11, 'OVS_DROP_IP_TTL']);
  assert.ok(!reasons.some(([, name]: [number, string]) => name.startsWith('_') || name.endsWith('_MAX')));
});

test("mac80211's two enums: the plain names, never the ___ twins or the core values it aliases", () => {
  const mac: BtfEnum[] = [
    { name: '___mac80211_drop_reason', members: [[(1 << 16) + 1, '___RX_DROP_U_MIC_FAIL']] },
    {
      name: 'mac80211_drop_reason',
      members: [
        [2, 'RX_CONTINUE'],
        [0, 'RX_QUEUED'],
        [(1 << 16) + 1, 'RX_DROP_U_MIC_FAIL'],
        [(9 << 16) + 1, 'RX_DROP_OF_A_SUBSYSTEM_NOT_LISTED'],
      ],
    },
    { name: 'unrelated_flags', members: [[(1 << 16) + 1, 'NOT_A_REASON']] },
  ];
  assert.deepEqual(
    subsystemReasons(
      SUBSYS_6_12,
      mac.filter((e) => isReasonEnum(e.name)),
    ),
    [[(1 << 16) + 1, 'RX_DROP_U_MIC_FAIL']],
  );
  assert.deepEqual(subsystemReasons(undefined, mac), [], 'a kernel without subsystems has none');
});

test('names: a subsystem reason by its name; one BTF does not name as UNKNOWN(subsystem:reason)', () => {
  const table = reasonTable([[2, 'SKB_DROP_REASON_NO_SOCKET'], ...subsystemReasons(SUBSYS_6_12, moduleEnums())]);
  assert.equal(reasonName(table, 2), 'NO_SOCKET');
  assert.equal(reasonName(table, OVS + 5), 'OVS_DROP_METER');
  assert.equal(reasonName(table, OVS + 13), 'UNKNOWN(3:13)');
  assert.equal(reasonName(table, (7 << 16) | 1), 'UNKNOWN(7:1)');
  assert.equal(reasonName(table, 500), 'UNKNOWN(500)');
});
