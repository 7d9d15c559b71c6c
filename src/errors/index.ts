// Typed errors: deep code throws these with a stable code; only the CLI's top-level handler prints them and picks the exit code.

export type ErrorCode =
  | 'E_USAGE' // bad command line
  | 'E_PRIVILEGE' // missing capability or root
  | 'E_TRACEFS_MISSING' // tracefs cannot be found or mounted
  | 'E_EVENT_MISSING' // skb:kfree_skb tracepoint absent
  | 'E_NETDM_MISSING' // NET_DM generic netlink family not found
  | 'E_BPF_MISSING' // the bpf source cannot run here: no addon, no BTF, or the kernel refuses its program
  | 'E_KERNEL' // the kernel refused a request (errno in KernelError)
  | 'E_UNSUPPORTED' // the backend cannot honour this request
  | 'E_BAD_INPUT' // a REPL line or value that does not parse
  | 'E_DECODE' // bytes from the kernel that do not decode
  | 'E_IO' // an unexpected I/O failure
  | 'E_STATE' // a request that does not fit the current state (e.g. start while monitoring)
  | 'E_NO_TTY'; // the live view asked for without a terminal

export class DropwatchError extends Error {
  readonly code: ErrorCode;
  readonly exitCode: number;
  /** A short cause for `auto`'s one-line notice when this error makes it pass a source over. */
  readonly why: string | undefined;
  constructor(code: ErrorCode, message: string, options: { exitCode?: number; cause?: unknown; why?: string } = {}) {
    // One line by construction: messages often echo user input, which must not be able to add lines to a log.
    super(oneLine(message), options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'DropwatchError';
    this.code = code;
    this.exitCode = options.exitCode ?? 1;
    this.why = options.why;
  }
}

/** The kernel answered a request with a negative errno; extack carries its extended-ACK text when it sent one. */
export class KernelError extends DropwatchError {
  readonly errno: number;
  readonly extack: string | undefined;
  constructor(errno: number, message: string, extack?: string) {
    super('E_KERNEL', message);
    this.name = 'KernelError';
    this.errno = errno;
    this.extack = extack;
  }
}

/** An error we expect and print as one line; anything else is a bug and gets its stack. */
export function isExpected(err: unknown): err is DropwatchError {
  return err instanceof DropwatchError;
}

// glibc's strerror() texts for the errnos netlink and tracefs give us, so messages match dropwatch's.
const STRERROR: Readonly<Record<number, string>> = {
  1: 'Operation not permitted',
  2: 'No such file or directory',
  3: 'No such process',
  4: 'Interrupted system call',
  5: 'Input/output error',
  6: 'No such device or address',
  11: 'Resource temporarily unavailable',
  12: 'Cannot allocate memory',
  13: 'Permission denied',
  14: 'Bad address',
  16: 'Device or resource busy',
  17: 'File exists',
  19: 'No such device',
  20: 'Not a directory',
  21: 'Is a directory',
  22: 'Invalid argument',
  27: 'File too large',
  28: 'No space left on device',
  30: 'Read-only file system',
  32: 'Broken pipe',
  34: 'Numerical result out of range',
  61: 'No data available',
  71: 'Protocol error',
  90: 'Message too long',
  93: 'Protocol not supported',
  95: 'Operation not supported',
  105: 'No buffer space available',
  110: 'Connection timed out',
  122: 'Disk quota exceeded',
};

export function strerror(errno: number): string {
  const n = Math.abs(errno);
  return STRERROR[n] ?? `Unknown error ${n}`;
}

/** glibc's text for a failed system call's error when we know it (Node's errno is negative), else its message. */
export function errnoText(err: unknown): string {
  const errno = (err as NodeJS.ErrnoException | null)?.errno;
  const known = typeof errno === 'number' ? STRERROR[Math.abs(errno)] : undefined;
  return known ?? (err instanceof Error ? err.message : String(err));
}

/**
 * Makes any text one printable line: control characters (C0, DEL, C1), format characters (bidi overrides and
 * isolates, zero-width marks), line and paragraph separators and lone surrogates become escapes, so text echoed from
 * user input can neither add lines to a log nor reorder what a terminal shows.
 */
export function oneLine(message: string): string {
  return message.replace(/[\p{Cc}\p{Cf}\p{Zl}\p{Zp}\p{Cs}]/gu, (c) => {
    const code = c.codePointAt(0)!;
    if (code === 0x0a) return '\\n';
    if (code === 0x0d) return '\\r';
    if (code === 0x09) return '\\t';
    if (code <= 0xff) return `\\x${code.toString(16).padStart(2, '0')}`;
    return code <= 0xffff ? `\\u${code.toString(16).padStart(4, '0')}` : `\\u{${code.toString(16)}}`;
  });
}

/** At most `max` code points of `text`, cut with `…` (the cut never splits a surrogate pair). */
export function shorten(text: string, max: number): string {
  if (text.length <= max) return text;
  const points = Array.from(text);
  return points.length <= max ? text : `${points.slice(0, max).join('')}…`;
}

/** Shows untrusted text safely on one line: control characters escaped, long text cut. */
export function quote(text: string, max = 40): string {
  const cut = text.length > max ? `${text.slice(0, max)}…` : text;
  // JSON escapes C0 only: DEL, C1 (U+009B is CSI to some terminals) and the Unicode line separators pass through.
  return JSON.stringify(cut).replace(
    /[\x7f-\x9f\u2028\u2029]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`,
  );
}
