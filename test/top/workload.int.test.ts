// The live view grouped by workload in a real terminal (tmux): the built CLI on the bpf source, drops in two network
// namespaces joined by a veth pair, `g` until grouped by namespace and by device, and Enter into a namespace's sites;
// drops in a real Podman container, `g` until grouped by container, and Enter into its sites and reasons.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { canRunKernelTests } from '../helpers/kernel.js';
import { Netns, vethPair } from '../helpers/netns.js';
import { canRunPodman, PodmanContainer } from '../helpers/podman.js';
import { hasTmux, Terminal, viewCommand } from '../helpers/tmux.js';

const skip = canRunKernelTests() || (hasTmux() ? false : 'needs tmux for a real terminal');
const noPodman = skip || canRunPodman();

const escape = (text: string): string => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
/** The rows of the table: rank, drops/s, total, then the rest. */
const rows = (screen: string): string[] =>
  screen.split('\n').filter((l) => /^[> ]\s*\d+\s+[\d,.]+[kMG]?\s+[\d,.]/.test(l));
const selected = (screen: string): string => screen.split('\n').find((l) => l.startsWith('>')) ?? '';

/** Moves the selection with the arrows until its row matches `pattern` (other processes' rows may sort above it). */
async function select(term: Terminal, pattern: RegExp): Promise<void> {
  term.keys('Home');
  await term.until((s) => selected(s) !== '', 'a selected row');
  for (let i = 0; i < 30 && !pattern.test(selected(term.screen())); i++) {
    const before = selected(term.screen());
    term.keys('Down');
    // The next frame; on the last row nothing moves, and the loop ends on its count.
    await term.until((s) => selected(s) !== before, 'the selection to move', 2000).catch(() => '');
  }
  assert.match(selected(term.screen()), pattern, 'the row is selected');
}

test(
  '--top -b bpf, g: rows by network namespace (its ip netns name or inode) and by device (the veth), Enter expands',
  { skip, timeout: 120_000 },
  async () => {
    const a = new Netns();
    const b = new Netns();
    const [endA, endB] = vethPair(a, b);
    // Each side sends to the other's closed port: drops in a on its veth end, and in b on its.
    const senders = [a.pacedUdp(endB.addr, 50), b.pacedUdp(endA.addr, 50)];
    const term = new Terminal(viewCommand('--top -b bpf -l kas'), 160, 40);
    // The view may name a namespace by `ip netns` name (the workload seam) or by inode (without it).
    const nsA = new RegExp(`(${escape(a.name)}|netns ${a.inode})`);
    const nsB = new RegExp(`(${escape(b.name)}|netns ${b.inode})`);
    try {
      await term.until((s) => s.includes('dropwatch top') && !s.includes('Enabling monitoring'), 'the view');
      await term.until((s) => s.includes('__udp4_lib_rcv'), 'the drops at __udp4_lib_rcv');
      assert.match(term.screen(), /g group/, 'the footer shows the key');

      term.keys('g');
      await term.until((s) => /group workload$/m.test(s), 'grouped by workload');
      term.keys('g');
      const byNetns = await term.until(
        (s) => /group netns$/m.test(s) && rows(s).some((r) => nsA.test(r)) && rows(s).some((r) => nsB.test(r)),
        'a row for each namespace',
      );
      assert.match(byNetns, /\snetns\s+sites\s+reason\s*$/m, 'the column says what a row is');

      // Select a's row, then open it.
      await select(term, nsA);
      term.keys('Enter');
      const open = await term.until(
        (s) => new RegExp(`^\\s+netns ${a.inode}$`, 'm').test(s),
        'the expansion of a’s row',
      );
      const lines = open.split('\n');
      const at = lines.findIndex((l) => l.startsWith('>'));
      assert.match(lines[at + 1]!, new RegExp(`^\\s+netns ${a.inode}$`));
      assert.match(lines[at + 2]!, /^\s+__udp4_lib_rcv\+[0-9a-f]+\s+NO_SOCKET\s+[\d,.]+\/s\s+[\d,.]+ total$/);
      term.keys('Enter');
      await term.until((s) => !new RegExp(`^\\s+netns ${a.inode}$`, 'm').test(s), 'the row collapsed again');

      term.keys('g');
      const byDevice = await term.until(
        (s) =>
          /group device$/m.test(s) &&
          rows(s).some((r) => r.includes(`${endA.dev} in `) && nsA.test(r)) &&
          rows(s).some((r) => r.includes(`${endB.dev} in `) && nsB.test(r)),
        'a row for each veth end, in its namespace',
      );
      assert.match(byDevice, /\sdevice\s+sites\s+reason\s*$/m);

      term.keys('g');
      await term.until((s) => /group reason$/m.test(s) && rows(s).some((r) => /\sNO_SOCKET\s/.test(r)), 'by reason');
      term.keys('g');
      await term.until((s) => /sort rate$/m.test(s) && /\slocation\s+origin\s+reason\s*$/m.test(s), 'by location');

      term.keys('q');
      const after = await term.until((s) => /EXIT=\d+/.test(s), 'the exit', 15_000);
      assert.match(after, /EXIT=0/);
    } finally {
      term.close();
      for (const s of senders) s.kill();
      a.delete();
      b.delete();
    }
  },
);

test(
  '--top -b bpf on a real Podman container: g until grouped by container, its name and drops, Enter into its sites and reasons',
  { skip: noPodman, timeout: 120_000 },
  async () => {
    const box = new PodmanContainer({ prefix: 'dwtop' });
    const term = new Terminal(viewCommand('--top -b bpf -l kas'), 160, 40);
    const row = new RegExp(`\\scontainer ${escape(box.name)}\\s+1\\s+NO_SOCKET\\s*$`);
    try {
      box.pacedUdp(50);
      await term.until((s) => s.includes('dropwatch top') && !s.includes('Enabling monitoring'), 'the view');
      await term.until((s) => s.includes('__udp4_lib_rcv'), 'the drops at __udp4_lib_rcv');
      // `g` cycles location, workload (container or pod), netns, device, reason: press it until rows are containers.
      for (let i = 0; i < 5 && !/group workload$/m.test(term.screen()); i++) {
        const before = term.screen();
        term.keys('g');
        await term.until((s) => s !== before, 'the next grouping', 2000).catch(() => '');
      }
      const byContainer = await term.until(
        (s) => /group workload$/m.test(s) && rows(s).some((r) => row.test(r)),
        'a row for the container, named',
      );
      assert.match(byContainer, /\sworkload\s+sites\s+reason\s*$/m, 'the column says what a row is');
      const total = Number(
        /^[> ]\s*\d+\s+[\d,.]+[kMG]?\s+([\d,]+)\s/
          .exec(rows(byContainer).find((r) => row.test(r))!)![1]!
          .replaceAll(',', ''),
      );
      assert.ok(total > 0, 'its drops are counted');

      await select(term, row);
      term.keys('Enter');
      const header = new RegExp(`^\\s+netns ${box.netns}, container ${escape(box.name)} ${box.id.slice(0, 12)}$`);
      const open = await term.until((s) => s.split('\n').some((l) => header.test(l)), 'the expansion of its row');
      const lines = open.split('\n');
      const at = lines.findIndex((l) => l.startsWith('>'));
      assert.match(lines[at + 1]!, header);
      assert.match(lines[at + 2]!, /^\s+__udp4_lib_rcv\+[0-9a-f]+\s+NO_SOCKET\s+[\d,.]+\/s\s+[\d,.]+ total$/);
      term.keys('Enter');
      await term.until((s) => !s.split('\n').some((l) => header.test(l)), 'the row collapsed again');

      term.keys('q');
      const after = await term.until((s) => /EXIT=\d+/.test(s), 'the exit', 15_000);
      assert.match(after, /EXIT=0/);
    } finally {
      term.close();
      box.remove();
    }
  },
);
