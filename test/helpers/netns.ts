// A throwaway network namespace whose loopback makes real drops: UDP to a closed port, freed as NO_SOCKET.
import { spawn } from 'node:child_process';
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
