// A throwaway network namespace whose loopback makes real drops: UDP to a closed port, freed as NO_SOCKET.
import { execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { BenchNetns } from '../../bench/lib/netns.js';
import { integrationOnly } from './suite.js';

integrationOnly('test/helpers/netns.ts (network namespaces)');

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
}

/** Two ends of a veth pair, one in each namespace, addressed and up: `a` (10.N.0.1) and `b` (10.N.0.2). */
export interface Veth {
  a: string;
  b: string;
  addressB: string;
  /** The index of `b` in its namespace, as `ip link` shows it. */
  ifindexB: number;
}

/** Joins `a` and `b` by a veth pair on the /24 `subnet` (e.g. "10.199.0"); the namespaces' deletion removes it. */
export function joinByVeth(a: Netns, b: Netns, subnet: string): Veth {
  const tag = randomBytes(3).toString('hex');
  const [ea, eb] = [`dwa${tag}`, `dwb${tag}`];
  const ip = (...args: string[]) => execFileSync('ip', args, { encoding: 'utf8' });
  ip('link', 'add', ea, 'netns', a.name, 'type', 'veth', 'peer', 'name', eb, 'netns', b.name);
  ip('-n', a.name, 'addr', 'add', `${subnet}.1/24`, 'dev', ea);
  ip('-n', b.name, 'addr', 'add', `${subnet}.2/24`, 'dev', eb);
  ip('-n', a.name, 'link', 'set', ea, 'up');
  ip('-n', b.name, 'link', 'set', eb, 'up');
  const ifindexB = Number(/^(\d+):/.exec(ip('-n', b.name, '-o', 'link', 'show', eb))![1]);
  return { a: ea, b: eb, addressB: `${subnet}.2`, ifindexB };
}
