// BPF programs and maps the kernel holds, and which of them no live process holds: what a run that exited left.
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { integrationOnly } from './suite.js';

integrationOnly('test/helpers/bpf-objects.ts (root, bpftool)');

export interface BpfObjects {
  progs: Set<number>;
  maps: Set<number>;
}

/** Every loaded program's and map's id, as `bpftool prog list` and `bpftool map list` show them. */
export function bpfObjects(): BpfObjects {
  const ids = (what: 'prog' | 'map'): Set<number> => {
    const list = JSON.parse(execFileSync('bpftool', [what, 'list', '-j'], { encoding: 'utf8' })) as { id: number }[];
    return new Set(list.map((o) => o.id));
  };
  return { progs: ids('prog'), maps: ids('map') };
}

/** Programs and maps some process holds a descriptor of (fdinfo), with the maps those programs use. */
function held(): BpfObjects {
  const out: BpfObjects = { progs: new Set(), maps: new Set() };
  for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    let fds: string[];
    try {
      fds = readdirSync(`/proc/${pid}/fdinfo`);
    } catch {
      continue; // Exited, or a kernel thread.
    }
    for (const fd of fds) {
      try {
        const info = readFileSync(`/proc/${pid}/fdinfo/${fd}`, 'utf8');
        const prog = /^prog_id:\s*(\d+)$/m.exec(info);
        const map = /^map_id:\s*(\d+)$/m.exec(info);
        if (prog) out.progs.add(Number(prog[1]));
        if (map) out.maps.add(Number(map[1]));
      } catch {
        // Closed while we looked.
      }
    }
  }
  const progs = JSON.parse(execFileSync('bpftool', ['prog', 'list', '-j'], { encoding: 'utf8' })) as {
    id: number;
    map_ids?: number[];
  }[];
  for (const p of progs) if (out.progs.has(p.id)) for (const m of p.map_ids ?? []) out.maps.add(m);
  return out;
}

/**
 * Programs and maps loaded since `before` that no live process holds: left behind by a run that exited. Other tests
 * load and free their own meanwhile, so this waits a little for the kernel to free what a closing process held.
 */
export async function orphanedSince(before: BpfObjects): Promise<{ progs: number[]; maps: number[] }> {
  const deadline = Date.now() + 5000;
  for (;;) {
    const now = bpfObjects();
    const owned = held();
    const orphans = {
      progs: [...now.progs].filter((id) => !before.progs.has(id) && !owned.progs.has(id)),
      maps: [...now.maps].filter((id) => !before.maps.has(id) && !owned.maps.has(id)),
    };
    if ((orphans.progs.length === 0 && orphans.maps.length === 0) || Date.now() > deadline) return orphans;
    await sleep(50);
  }
}

/** The BPF programs, maps and BTF objects `pid` holds descriptors of, by their anon inode names. */
export function bpfDescriptorsOf(pid: number): string[] {
  const out: string[] = [];
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      const target = readFileSync(`/proc/${pid}/fdinfo/${fd}`, 'utf8');
      const kind = /^(prog_id|map_id|btf_id|link_id):/m.exec(target);
      if (kind) out.push(kind[1]!);
    } catch {
      // Closed while we looked.
    }
  }
  return out;
}
