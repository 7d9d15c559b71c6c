// tshark (Wireshark's command line) as a second, independent reading of the pcaps dwdump writes.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';

export function tsharkAvailable(): boolean {
  return spawnSync('tshark', ['-v'], { stdio: 'ignore' }).status === 0;
}

/**
 * One row per frame that passes `displayFilter`: each field's text as tshark prints it ('' where the frame has none; a
 * field that occurs several times in one frame is joined with commas, or only its first shown with `firstOnly`).
 */
export function tsharkFields(
  path: string,
  fields: readonly string[],
  displayFilter = 'net_dm',
  firstOnly = false,
): Record<string, string>[] {
  const args = ['-r', path, '-Y', displayFilter, '-T', 'fields', '-E', 'separator=/t'];
  if (firstOnly) args.push('-E', 'occurrence=f');
  // Our test datagrams go to port 9: without this, a random source port that a dissector registers (HCrt's 47000)
  // takes their payload away from `data`.
  args.push('-d', 'udp.port==9,data', ...fields.flatMap((f) => ['-e', f]));
  const r = spawnSync('tshark', args, { encoding: 'utf8' });
  assert.equal(r.status, 0, `tshark -r ${path} failed: ${r.stderr}`);
  return r.stdout
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => {
      const cols = l.split('\t');
      return Object.fromEntries(fields.map((f, i) => [f, cols[i] ?? '']));
    });
}
