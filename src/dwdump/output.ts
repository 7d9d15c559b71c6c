// Where dwdump's pcap goes: a file opened safely (dropped packets can hold secrets) or standard output, written with
// blocking synchronous writes so every record is in the file (or pipe) the moment its batch is handled.
//
// File policy (decided here, documented in --help and the report):
// - opened O_WRONLY|O_CREAT|O_NOFOLLOW (Node adds O_CLOEXEC): a symlink as the last path component is refused with
//   one line instead of being followed (root writing into /tmp must not clobber whatever a link points at);
// - created with mode 0600, so the umask can only make it stricter;
// - an existing regular file is truncated only after fstat() shows it is ours (same owner, a single link: no
//   hard link to someone else's file), and its mode is tightened to at most 0600;
// - FIFOs and character devices (/dev/null, a named pipe read by tshark) are written as they are.
import {
  closeSync,
  constants,
  fchmodSync,
  fstatSync,
  ftruncateSync,
  openSync,
  writeSync,
  type Stats as FsStats,
} from 'node:fs';
import { isatty } from 'node:tty';
import { DropwatchError, strerror } from '../errors/index.js';
import {
  encodeGlobalHeader,
  encodeNetlinkRecord,
  LINKTYPE_NETLINK,
  timestampFromMs,
  type Timestamp,
} from '../pcap/index.js';
import { packetAlertDropTime } from './drop-time.js';

export const CAPTURE_FILE_MODE = 0o600;

/** The reader went away (EPIPE): not an error for a capture tool, the run simply ends. */
export class OutputClosedError extends DropwatchError {
  constructor() {
    super('E_IO', 'output closed by the reader');
    this.name = 'OutputClosedError';
  }
}

export interface CaptureTarget {
  fd: number;
  /** For messages: the path, or "standard output". */
  name: string;
  /** Whether close() closes the descriptor (not for standard output, which the process owns). */
  owned: boolean;
}

function errnoOf(err: unknown): { code: string; errno: number } | null {
  const e = err as NodeJS.ErrnoException;
  return typeof e?.code === 'string' && typeof e.errno === 'number'
    ? { code: e.code, errno: -Math.abs(e.errno) }
    : null;
}

// glibc's texts for file errors the shared strerror() table (netlink-oriented) does not carry.
const FILE_ERRORS: Readonly<Record<string, string>> = {
  EISDIR: 'Is a directory',
  ENOTDIR: 'Not a directory',
  EROFS: 'Read-only file system',
  ENXIO: 'No such device or address',
  EFBIG: 'File too large',
  EDQUOT: 'Disk quota exceeded',
  ENAMETOOLONG: 'File name too long',
  ETXTBSY: 'Text file busy',
};

function ioError(what: string, err: unknown): unknown {
  const e = errnoOf(err);
  if (!e) return err;
  return new DropwatchError('E_IO', `${what}: ${FILE_ERRORS[e.code] ?? strerror(e.errno)}`, { cause: err });
}

export interface OpenTargetOptions {
  /** Standard output's descriptor (1; a test may pass another). */
  stdoutFd?: number;
  /** Effective uid that must own an existing file (default process.geteuid()). */
  euid?: number;
}

/** Opens `path` by the policy above, or standard output for null (refused when it is a terminal). */
export function openCaptureTarget(path: string | null, options: OpenTargetOptions = {}): CaptureTarget {
  if (path === null) {
    const fd = options.stdoutFd ?? 1;
    if (isatty(fd))
      throw new DropwatchError(
        'E_USAGE',
        'refusing to write a binary pcap to a terminal: use -w FILE or pipe it (dwdump | tshark -V -r -)',
      );
    return { fd, name: 'standard output', owned: false };
  }
  let fd: number;
  try {
    fd = openSync(path, constants.O_WRONLY | constants.O_CREAT | constants.O_NOFOLLOW, CAPTURE_FILE_MODE);
  } catch (err) {
    if (errnoOf(err)?.code === 'ELOOP')
      throw new DropwatchError('E_IO', `refusing to write ${path}: it is a symbolic link`, { cause: err });
    throw ioError(`cannot open ${path}`, err);
  }
  try {
    let st: FsStats;
    try {
      st = fstatSync(fd);
    } catch (err) {
      throw ioError(`cannot stat ${path}`, err);
    }
    if (st.isFile()) {
      const euid = options.euid ?? process.geteuid?.() ?? st.uid;
      if (st.uid !== euid)
        throw new DropwatchError('E_IO', `refusing to write ${path}: it belongs to uid ${st.uid}, not to us`);
      if (st.nlink > 1) throw new DropwatchError('E_IO', `refusing to write ${path}: it has ${st.nlink} hard links`);
      try {
        ftruncateSync(fd, 0);
        if ((st.mode & 0o777 & ~CAPTURE_FILE_MODE) !== 0) fchmodSync(fd, st.mode & CAPTURE_FILE_MODE);
      } catch (err) {
        throw ioError(`cannot prepare ${path}`, err);
      }
    } else if (st.isDirectory()) {
      throw new DropwatchError('E_IO', `cannot write ${path}: Is a directory`);
    }
    return { fd, name: path, owned: true };
  } catch (err) {
    closeSync(fd);
    throw err;
  }
}

// A blocking wait without a busy loop, for the rare descriptor someone left O_NONBLOCK (a pipe shared with a Node
// parent): the event loop is paused either way, as it is during a blocking write.
const sleepCell = new Int32Array(new SharedArrayBuffer(4));
function sleepMs(ms: number): void {
  Atomics.wait(sleepCell, 0, 0, ms);
}

/** Writes all of `buf`, retrying short writes, EINTR and EAGAIN; EPIPE becomes OutputClosedError. */
export function writeAll(fd: number, buf: Uint8Array, name: string): void {
  let off = 0;
  while (off < buf.length) {
    try {
      off += writeSync(fd, buf, off, buf.length - off);
    } catch (err) {
      const e = errnoOf(err);
      if (e?.code === 'EAGAIN' || e?.code === 'EINTR') {
        if (e.code === 'EAGAIN') sleepMs(1);
        continue;
      }
      if (e?.code === 'EPIPE') throw new OutputClosedError();
      throw ioError(`writing ${name}`, err);
    }
  }
}

export interface PcapSinkOptions {
  snaplen: number;
  /** Wall clock in ms since the epoch (fractions kept); default performance.timeOrigin + performance.now(). */
  now?: () => number;
  /** NET_DM's generic netlink family id: its PACKET_ALERTs are stamped with the kernel's drop time. */
  netdmFamilyId?: number;
}

/** The pcap stream: header at once, then one record per netlink message, each batch in one write. */
export class PcapSink {
  readonly target: CaptureTarget;
  readonly snaplen: number;
  private readonly now: () => number;
  private readonly netdmFamilyId: number | undefined;
  private closed = false;
  /** Records written, the header excluded. */
  records = 0;

  /**
   * Writes the global header at once, so a capture ended at any moment (SIGTERM just after the file was created)
   * leaves a valid pcap. On a failed header write the target is closed (when ours) and the error thrown.
   */
  constructor(target: CaptureTarget, options: PcapSinkOptions) {
    this.target = target;
    this.snaplen = options.snaplen;
    this.now = options.now ?? (() => performance.timeOrigin + performance.now());
    this.netdmFamilyId = options.netdmFamilyId;
    try {
      this.write(encodeGlobalHeader({ snaplen: this.snaplen, linktype: LINKTYPE_NETLINK }));
    } catch (err) {
      if (target.owned) closeSync(target.fd);
      this.closed = true;
      throw err;
    }
  }

  /**
   * Whole netlink messages, each after dwdump's cooked header. A PACKET_ALERT is stamped with the time the kernel
   * dropped its packet; anything else (the family record, a summary alert, a malformed message) with the time the
   * batch is written, the time Debian's dwdump gives every record.
   */
  writeMessages(messages: readonly Uint8Array[]): void {
    if (messages.length === 0) return;
    let written: Timestamp | undefined;
    const recs = messages.map((m) => {
      const dropped = this.netdmFamilyId === undefined ? null : packetAlertDropTime(m, this.netdmFamilyId);
      const ts = dropped ?? (written ??= timestampFromMs(this.now()));
      return encodeNetlinkRecord(m, ts, this.snaplen);
    });
    this.write(recs.length === 1 ? recs[0]! : Buffer.concat(recs));
    this.records += recs.length;
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** Closes a file we opened; standard output is left to the process. Idempotent. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.target.owned) {
      try {
        closeSync(this.target.fd);
      } catch (err) {
        // Every byte went out through write(2) already; a failing close on a local file means an I/O error to report.
        throw ioError(`closing ${this.target.name}`, err);
      }
    }
  }

  private write(buf: Uint8Array): void {
    if (this.closed) throw new DropwatchError('E_STATE', 'pcap output is closed');
    writeAll(this.target.fd, buf, this.target.name);
  }
}
