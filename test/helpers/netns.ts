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

/** Two namespaces joined by a veth pair, 10.199.X.1 on the sender's end and 10.199.X.2 on the receiver's, both up. */
export interface VethPair {
  /** The device in `receiver`, its index there, and the receiving address. */
  readonly into: string;
  readonly intoIndex: number;
  readonly address: string;
}

/** Joins `sender` to `receiver` with a veth pair (deleted with either namespace); `subnet` picks 10.199.subnet.0/24. */
export function vethPair(sender: Netns, receiver: Netns, subnet = 0): VethPair {
  const tag = randomBytes(3).toString('hex');
  const [out, into] = [`dwa${tag}`, `dwb${tag}`];
  const ip = (...args: string[]) => execFileSync('ip', args, { encoding: 'utf8' });
  ip('link', 'add', out, 'netns', sender.name, 'type', 'veth', 'peer', 'name', into, 'netns', receiver.name);
  ip('-n', sender.name, 'addr', 'add', `10.199.${subnet}.1/24`, 'dev', out);
  ip('-n', receiver.name, 'addr', 'add', `10.199.${subnet}.2/24`, 'dev', into);
  ip('-n', sender.name, 'link', 'set', out, 'up');
  ip('-n', receiver.name, 'link', 'set', into, 'up');
  const intoIndex = Number(/^(\d+):/.exec(ip('-n', receiver.name, '-o', 'link', 'show', into))![1]);
  return { into, intoIndex, address: `10.199.${subnet}.2` };
}
