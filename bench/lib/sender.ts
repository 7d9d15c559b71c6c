// The drop maker: UDP datagrams to a closed port on 127.0.0.1 inside our namespace, one NO_SOCKET kfree_skb each.
// Python's ctypes calling sendmmsg(2) on an unconnected socket: 1024 datagrams per syscall, so the sender spends its
// time in the kernel's UDP path (where the tracepoint fires) rather than in an interpreter loop. Measured here it
// reaches ~300-500k/s vs ~130-140k/s for a Python sendto loop and ~75k/s for node's dgram; no compiled artefact needed.
// Unconnected on purpose: a connected socket gets ECONNREFUSED from the loopback ICMP and every other send fails.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import type { BenchNetns } from './netns.js';

const SENDER = String.raw`
import ctypes, ctypes.util, socket, sys, time
n = int(sys.argv[1]); rate = float(sys.argv[2])
libc = ctypes.CDLL(ctypes.util.find_library('c'), use_errno=True)
class iovec(ctypes.Structure): _fields_ = [('base', ctypes.c_void_p), ('len', ctypes.c_size_t)]
class msghdr(ctypes.Structure): _fields_ = [('name', ctypes.c_void_p), ('namelen', ctypes.c_uint32), ('iov', ctypes.POINTER(iovec)), ('iovlen', ctypes.c_size_t), ('control', ctypes.c_void_p), ('controllen', ctypes.c_size_t), ('flags', ctypes.c_int)]
class mmsghdr(ctypes.Structure): _fields_ = [('hdr', msghdr), ('len', ctypes.c_uint)]
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sa = ctypes.create_string_buffer((2).to_bytes(2, 'little') + (9).to_bytes(2, 'big') + socket.inet_aton('127.0.0.1') + bytes(8), 16)
buf = ctypes.create_string_buffer(b'x', 1)
iov = iovec(ctypes.cast(buf, ctypes.c_void_p), 1)
B = 1024 if rate <= 0 else 256
msgs = (mmsghdr * B)()
for m in msgs:
    m.hdr.name = ctypes.cast(sa, ctypes.c_void_p); m.hdr.namelen = 16
    m.hdr.iov = ctypes.pointer(iov); m.hdr.iovlen = 1
fd = s.fileno(); sent = 0; errors = 0
t0 = time.monotonic()
while sent < n:
    r = libc.sendmmsg(fd, msgs, min(B, n - sent), 0)
    if r < 0:
        errors += 1
        if errors > 100000: break
        continue
    sent += r
    if rate > 0:
        ahead = sent / rate - (time.monotonic() - t0)
        if ahead > 0: time.sleep(ahead)
dt = time.monotonic() - t0
print(sent, dt, errors)
`;

export interface SendResult {
  /** Datagrams the kernel accepted (sendmmsg's return values): each one is one drop. */
  sent: number;
  seconds: number;
  rate: number;
  pid: number;
}

// The pyenv shim on PATH costs over a second per start; the system interpreter is what we want.
const PYTHON = existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';

/** Sends `count` datagrams as fast as possible (or at `rate`/s) inside ns; resolves when the sender exits. */
export function sendDrops(
  ns: Pick<BenchNetns, 'name'>,
  count: number,
  rate = 0,
  onStart?: (pid: number) => void,
): Promise<SendResult> {
  return new Promise((resolve, reject) => {
    const child = spawn('ip', ['netns', 'exec', ns.name, PYTHON, '-c', SENDER, String(count), String(rate)], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('error', reject);
    if (child.pid !== undefined) onStart?.(child.pid);
    child.on('exit', (code) => {
      const [sent, seconds, errors] = out.trim().split(/\s+/).map(Number);
      if (code !== 0 || sent === undefined || !Number.isFinite(sent) || !seconds) {
        reject(new Error(`sender exited ${code}: ${err.trim() || out.trim()}`));
        return;
      }
      if (errors && errors > 100000) reject(new Error(`sender: sendmmsg kept failing (${errors} errors)`));
      else resolve({ sent, seconds, rate: sent / seconds, pid: child.pid ?? -1 });
    });
  });
}
