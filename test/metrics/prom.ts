// Test helpers around the real Prometheus: install Debian's package when missing, run a throwaway server, query it.
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

const PROMETHEUS = '/usr/bin/prometheus';
export const PROMTOOL = '/usr/bin/promtool';

/** Makes sure prometheus and promtool exist (apt-get as root); returns why not, or false when they are there. */
export function ensurePrometheus(): string | false {
  if (existsSync(PROMETHEUS) && existsSync(PROMTOOL)) return false;
  if (process.getuid?.() !== 0) return 'prometheus is not installed and installing it needs root';
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  const install = () =>
    spawnSync('apt-get', ['install', '-y', '-qq', '--no-install-recommends', 'prometheus'], {
      env,
      stdio: 'ignore',
      timeout: 300_000,
    }).status === 0;
  // A fresh image may have no package lists yet: update once, then retry.
  if (!install()) {
    spawnSync('apt-get', ['update', '-qq'], { env, stdio: 'ignore', timeout: 300_000 });
    install();
  }
  if (existsSync(PROMETHEUS) && existsSync(PROMTOOL)) return false;
  return 'the Debian prometheus package could not be installed (apt-get install prometheus failed)';
}

export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** Lints an exposition with `promtool check metrics`; returns its exit status and what it said. */
export function promtoolCheck(exposition: string): { status: number | null; output: string } {
  const r = spawnSync(PROMTOOL, ['check', 'metrics'], { input: exposition, encoding: 'utf8' });
  return { status: r.status, output: `${r.stdout}${r.stderr}` };
}

export class PrometheusServer {
  private readonly dir = mkdtempSync(join(tmpdir(), 'dwprom-'));
  private child: ChildProcess | null = null;
  log = '';
  port = 0;

  /** Starts Prometheus on loopback scraping `target` (host:port) every `intervalS` seconds; resolves when ready. */
  async start(target: string, intervalS = 1): Promise<void> {
    this.port = await freePort();
    const config = join(this.dir, 'prometheus.yml');
    writeFileSync(
      config,
      [
        'global:',
        `  scrape_interval: ${intervalS}s`,
        `  scrape_timeout: ${intervalS}s`,
        'scrape_configs:',
        '  - job_name: dropwatch',
        '    static_configs:',
        `      - targets: ['${target}']`,
        '',
      ].join('\n'),
    );
    execFileSync(PROMTOOL, ['check', 'config', config], { stdio: 'ignore' });
    this.child = spawn(
      PROMETHEUS,
      [
        `--config.file=${config}`,
        `--storage.tsdb.path=${join(this.dir, 'data')}`,
        `--web.listen-address=127.0.0.1:${this.port}`,
        '--log.level=warn',
      ],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    this.child.stderr!.on('data', (d: Buffer) => (this.log += d.toString()));
    const deadline = Date.now() + 30_000;
    for (;;) {
      try {
        const r = await fetch(`http://127.0.0.1:${this.port}/-/ready`);
        if (r.ok) return;
      } catch {
        // Not listening yet.
      }
      if (this.child.exitCode !== null || Date.now() > deadline)
        throw new Error(`prometheus did not start:\n${this.log}`);
      await sleep(200);
    }
  }

  /** An instant query; returns the single sample's value, or null when the result is empty. */
  async query(promql: string): Promise<number | null> {
    const r = await fetch(`http://127.0.0.1:${this.port}/api/v1/query?query=${encodeURIComponent(promql)}`);
    const body = (await r.json()) as { status: string; data: { result: { value: [number, string] }[] } };
    if (body.status !== 'success') throw new Error(`query failed: ${JSON.stringify(body)}`);
    const [first] = body.data.result;
    return first ? Number(first.value[1]) : null;
  }

  /** An instant query's every sample: its labels and value. */
  async queryAll(promql: string): Promise<{ labels: Record<string, string>; value: number }[]> {
    const r = await fetch(`http://127.0.0.1:${this.port}/api/v1/query?query=${encodeURIComponent(promql)}`);
    const body = (await r.json()) as {
      status: string;
      data: { result: { metric: Record<string, string>; value: [number, string] }[] };
    };
    if (body.status !== 'success') throw new Error(`query failed: ${JSON.stringify(body)}`);
    return body.data.result.map((s) => ({ labels: s.metric, value: Number(s.value[1]) }));
  }

  /** Health of the scrape target as Prometheus sees it ('up', 'down', 'unknown'). */
  async targetHealth(): Promise<string> {
    const r = await fetch(`http://127.0.0.1:${this.port}/api/v1/targets`);
    const body = (await r.json()) as { data: { activeTargets: { health: string; lastError: string }[] } };
    const t = body.data.activeTargets[0];
    return t ? `${t.health}${t.lastError ? ` (${t.lastError})` : ''}` : 'none';
  }

  async stop(): Promise<void> {
    const child = this.child;
    if (child && child.exitCode === null) {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      await Promise.race([exited, sleep(10_000).then(() => child.kill('SIGKILL'))]);
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}
