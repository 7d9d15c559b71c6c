// netdevsim's hardware drops as the qemu hardware sessions see them: the traps, their frame, and the two tallies the
// tests hold dropwatch's lines against (devlink's own counters, and the summary lines summed per trap).

// The traps drop_monitor hears from netdevsim once blackhole_route is set to trap, in the order the generator reports
// them each round, with their groups.
export const TRAPS: readonly (readonly [string, string])[] = [
  ['fid_miss', 'l2_drops'],
  ['blackhole_route', 'l3_drops'],
  ['ttl_value_is_too_small', 'l3_exceptions'],
];
export const TRAP_NAMES = TRAPS.map(([name]) => name);
export const GROUP = new Map(TRAPS);

// What netdevsim's generator sends (drivers/net/netdevsim/dev.c, nsim_dev_trap_skb_build): Ethernet, IPv4, UDP and
// 100 zero bytes, from 192.0.2.1 to 198.51.100.1; MAC addresses and ports are random.
export const TRAP_FRAME_LEN = 14 + 20 + 8 + 100;
export const TRAP_SRC = '192.0.2.1';
export const TRAP_DST = '198.51.100.1';

export const DROP_LINE = /^(\d+) drops at (\S+) \[(hardware|software)\]$/;

/** devlink's counters ("TRAP PACKETS" lines) after minus before, for the traps drop_monitor hears. */
export function reported(before: string[], after: string[]): Map<string, number> {
  const read = (lines: string[]) => new Map(lines.map((l) => l.split(' ')).map(([n, c]) => [n!, Number(c)]));
  const b = read(before);
  const a = read(after);
  return new Map(TRAP_NAMES.map((n) => [n, (a.get(n) ?? NaN) - (b.get(n) ?? NaN)]));
}

/** The summary lines' counts, summed per trap (software lines under their symbol). */
export function summed(lines: string[]): Map<string, number> {
  const out = new Map<string, number>();
  for (const l of lines) {
    const m = DROP_LINE.exec(l);
    if (m) out.set(m[2]!, (out.get(m[2]!) ?? 0) + Number(m[1]));
  }
  return out;
}
