// A throwaway network namespace whose loopback makes real drops: UDP to a closed port, freed as NO_SOCKET.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { statSync } from 'node:fs';
import { BenchNetns } from '../../bench/lib/netns.js';
import { integrationOnly } from './suite.js';

integrationOnly('test/helpers/netns.ts (network namespaces)');

/** Paced senders still running: killed when this process exits, or is told to stop with SIGTERM. */
const senders = new Set<ChildProcess>();
let guarded = false;

function killSenders(): void {
  for (const child of senders) child.kill('SIGKILL');
  senders.clear();
}

function guardSenders(): void {
  if (guarded) return;
  guarded = true;
  process.once('exit', killSenders);
  // SIGTERM's default ends a process without its exit handlers: exit through them, so namespaces and containers go too.
  process.once('SIGTERM', () => {
    killSenders();
    process.exit(143);
  });
}

export class Netns extends BenchNetns {
  constructor() {
    super('dwtest');
  }
  /** Sends n datagrams to a closed UDP port (9) on host inside the namespace; resolves when the sender exits. */
  sendUdp(host: string, n: number): Promise<void> {
    const family = host.includes(':') ? 'udp6' : 'udp4';
    const code =
      `const s=require('dgram').createSocket('${family}');let i=0;` +
      `(function f(e){if(e)throw e;if(i++>=${n})return s.close();s.send('drop',9,'${host}',f)})()`;
    return new Promise((resolve, reject) => {
      const child = spawn('ip', ['netns', 'exec', this.name, process.execPath, '-e', code], {
        stdio: ['ignore', 'ignore', 'pipe'],
      });
      let err = '';
      child.stderr.on('data', (d: Buffer) => (err += d.toString()));
      child.on('error', reject);
      child.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`sender exited ${code}: ${err}`))));
    });
  }
  /**
   * About `rate` datagrams a second to a closed UDP port on host inside the namespace, until killed, or until this
   * process ends however it ends: the sender leaves when its stdin (a pipe from here) closes.
   */
  pacedUdp(host: string, rate: number): ChildProcess {
    const perTick = Math.max(1, Math.round(rate / 10));
    const code =
      `process.stdin.on('end',()=>process.exit()).resume();` +
      `const s=require('dgram').createSocket('udp4');` +
      `setInterval(()=>{for(let i=0;i<${perTick};i++)s.send('x',9,'${host}')},100)`;
    const child = spawn('ip', ['netns', 'exec', this.name, process.execPath, '-e', code], {
      stdio: ['pipe', 'ignore', 'ignore'],
    });
    senders.add(child);
    child.once('exit', () => senders.delete(child));
    guardSenders();
    return child;
  }
  /** The namespace's inode, as dropwatch reports it (`stat -L -c %i /proc/PID/ns/net`). */
  get inode(): number {
    return statSync(`/run/netns/${this.name}`).ino;
  }
}

/** One end of a veth pair: its namespace, device name and index there, and IPv4 address. */
export interface VethEnd {
  ns: Netns;
  dev: string;
  ifindex: number;
  addr: string;
}

/**
 * Joins two namespaces by a veth pair, both ends up and addressed in 10.199.0.0/24 (each namespace has its own
 * addresses, so tests never clash); the pair goes when either namespace is deleted.
 */
export function vethPair(a: Netns, b: Netns): [VethEnd, VethEnd] {
  const tag = randomBytes(3).toString('hex');
  const ip = (...args: string[]) => execFileSync('ip', args, { encoding: 'utf8' });
  const ends = [
    { ns: a, dev: `dwa${tag}`, addr: '10.199.0.1' },
    { ns: b, dev: `dwb${tag}`, addr: '10.199.0.2' },
  ];
  ip('link', 'add', ends[0]!.dev, 'netns', a.name, 'type', 'veth', 'peer', 'name', ends[1]!.dev, 'netns', b.name);
  const [x, y] = ends.map((e) => {
    ip('-n', e.ns.name, 'addr', 'add', `${e.addr}/24`, 'dev', e.dev);
    ip('-n', e.ns.name, 'link', 'set', e.dev, 'up');
    const ifindex = Number(/^(\d+):/.exec(ip('-n', e.ns.name, '-o', 'link', 'show', e.dev))![1]);
    return { ...e, ifindex };
  });
  return [x!, y!];
}
