// A throwaway network namespace whose loopback makes real drops: UDP to a closed port, freed as NO_SOCKET.
import { execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { integrationOnly } from './suite.js';

integrationOnly('test/helpers/netns.ts (network namespaces)');

export class Netns {
  readonly name = `dwtest-${randomBytes(4).toString('hex')}`;
  constructor() {
    execFileSync('ip', ['netns', 'add', this.name]);
    try {
      execFileSync('ip', ['netns', 'exec', this.name, 'ip', 'link', 'set', 'lo', 'up']);
    } catch (err) {
      this.delete();
      throw err;
    }
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
  delete(): void {
    try {
      execFileSync('ip', ['netns', 'del', this.name], { stdio: 'ignore' });
    } catch {
      // Already gone.
    }
  }
}
