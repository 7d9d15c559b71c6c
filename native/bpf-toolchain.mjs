// Whether this machine can build the BPF source's addon (clang, llvm-strip, libbpf's headers and library): binding.gyp
// asks before building it, so `npm ci` without them still builds the netlink addon and says in one line what it left.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';

const has = (tool) => spawnSync('sh', ['-c', `command -v ${tool}`], { stdio: 'ignore' }).status === 0;
const multiarch = spawnSync('gcc', ['-print-multiarch'], { encoding: 'utf8' }).stdout?.trim() || 'x86_64-linux-gnu';
const libbpf = existsSync('/usr/include/bpf/libbpf.h') && existsSync(`/usr/lib/${multiarch}/libbpf.so`);
const missing = [
  ...(has('clang') ? [] : ['clang']),
  ...(has('llvm-strip') ? [] : ['llvm']),
  ...(libbpf ? [] : ['libbpf-dev']),
];
// native/prebuild.mjs builds the netlink addon alone first (prebuildify packs one addon per run).
if (process.env.DROPWATCH_BPF === '0') missing.push('DROPWATCH_BPF=0');
else if (missing.length > 0)
  console.error(`dropwatch: the bpf source is not built (no ${missing.join(', ')}); NET_DM and tracefs are`);
console.log(missing.length === 0 ? 'yes' : 'no');
