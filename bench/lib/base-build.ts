// Another revision of dropwatch built beside this tree, so a benchmark can run "base" and "new" in the same run.
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { projectRoot } from './root.js';

/** Quoted for sh. */
export function shq(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

export interface BaseBuild {
  /** The revision as given, and the commit it names (short hash), for the report. */
  rev: string;
  commit: string;
  dir: string;
  /** Its bin/dropwatch, run with this process's node exactly as this tree's is. */
  bin: string;
}

/** Builds `rev` in a scratch directory: git archive, this tree's node_modules and native addon, tsc over src/ only. */
export function buildBase(rev: string): BaseBuild {
  const commit = execFileSync('git', ['-C', projectRoot, 'rev-parse', '--short', `${rev}^{commit}`], {
    encoding: 'utf8',
  }).trim();
  const dir = mkdtempSync(join(tmpdir(), 'dwbench-base-'));
  try {
    execFileSync('sh', ['-c', `git -C ${shq(projectRoot)} archive ${shq(commit)} | tar -x -C ${shq(dir)}`]);
    symlinkSync(join(projectRoot, 'node_modules'), join(dir, 'node_modules'));
    mkdirSync(join(dir, 'build'));
    symlinkSync(join(projectRoot, 'build', 'Release'), join(dir, 'build', 'Release'));
    // bin/dropwatch needs only dist/src; the base's tests and benchmarks would triple the compile time.
    writeFileSync(
      join(dir, 'tsconfig.base-build.json'),
      JSON.stringify({ extends: './tsconfig.json', include: ['src/**/*.ts'] }),
    );
    const tsc = join(projectRoot, 'node_modules', 'typescript', 'bin', 'tsc');
    execFileSync(process.execPath, [tsc, '-p', 'tsconfig.base-build.json'], { cwd: dir, encoding: 'utf8' });
  } catch (err) {
    removeBase({ dir });
    // tsc reports its errors on stdout.
    const out = (err as { stdout?: string }).stdout?.trim();
    throw new Error(`cannot build ${rev}: ${out || (err instanceof Error ? err.message : String(err))}`);
  }
  return { rev, commit, dir, bin: join(dir, 'bin', 'dropwatch') };
}

export function removeBase(base: Pick<BaseBuild, 'dir'>): void {
  rmSync(base.dir, { recursive: true, force: true });
}
