// The package's version, read from package.json once: for --version and the metrics info line.
import { readFileSync } from 'node:fs';

let cached: string | undefined;

/** package.json's version, or 'unknown' when it cannot be read (a broken install should still run). */
export function packageVersion(): string {
  if (cached === undefined) {
    try {
      // dist/src/process/version.js → package.json at the package root.
      const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as {
        version?: string;
      };
      cached = pkg.version ?? 'unknown';
    } catch {
      cached = 'unknown';
    }
  }
  return cached;
}
