# Guest side of bench/netdm.ts (runs as the qemu guest's script, python3 layer): NET_DM packet-mode readers under a
# rising drop rate, all in one boot. For each reader in turn (rotated per round) it starts the reader, sends paced
# steps of UDP datagrams to 127.0.0.1:9 (one NO_SOCKET drop, so one packet alert, each) at rising rates, and after each
# step reads what was lost from the kernel itself:
#   - tail drops: NET_DM STATS (Debian's `dwdump -s`), the alerts the per-CPU queue had no room for;
#   - socket drops: the Drops column of /proc/net/netlink for the reader's own netlink sockets (sk_drops, which the
#     kernel increments for every alert that did not fit the receive buffer).
# Both are exact kernel counters, so they are the same yardstick for Debian's dwdump (which keeps no counts at all)
# and for ours. The ramp stops at the first step that lost anything, or when the sender cannot reach the rate.
# At the end of each run the reader's own accounting is checked against what was sent:
#   written + lost on socket + tail dropped = sent.
# Prints one JSON object per line ("@@J {...}"); the host turns them into the report.
import ctypes, ctypes.util, json, os, re, socket, subprocess, sys, time

ROUNDS = int(os.environ.get('DWB_ROUNDS', '2'))
STEP_S = float(os.environ.get('DWB_STEP_S', '3'))
RATE0 = float(os.environ.get('DWB_RATE0', '500'))
GROWTH = float(os.environ.get('DWB_GROWTH', '1.5'))
MAX_RATE = float(os.environ.get('DWB_MAX_RATE', '400000'))
# A step counts as kept up with when nothing was lost and the reader finished within this fraction of the step.
LAG_MAX = float(os.environ.get('DWB_LAG_MAX', '0.1'))
BISECT = int(os.environ.get('DWB_BISECT', '2'))
READERS = os.environ.get('DWB_READERS', 'dwdump,ours-dwdump,ours-dropwatch').split(',')
T0 = time.monotonic()


def out(kind, **kw):
    kw['kind'] = kind
    kw['t'] = round(time.monotonic() - T0, 2)
    sys.stdout.write('@@J ' + json.dumps(kw) + '\n')
    sys.stdout.flush()


def log(msg):
    sys.stderr.write('[%.1fs] %s\n' % (time.monotonic() - T0, msg))
    sys.stderr.flush()


# --- the drop maker: sendmmsg(2) through ctypes, as bench/lib/sender.ts does on the host ---
libc = ctypes.CDLL(ctypes.util.find_library('c') or 'libc.so.6', use_errno=True)


class iovec(ctypes.Structure):
    _fields_ = [('base', ctypes.c_void_p), ('len', ctypes.c_size_t)]


class msghdr(ctypes.Structure):
    _fields_ = [('name', ctypes.c_void_p), ('namelen', ctypes.c_uint32), ('iov', ctypes.POINTER(iovec)),
                ('iovlen', ctypes.c_size_t), ('control', ctypes.c_void_p), ('controllen', ctypes.c_size_t),
                ('flags', ctypes.c_int)]


class mmsghdr(ctypes.Structure):
    _fields_ = [('hdr', msghdr), ('len', ctypes.c_uint)]


SOCK = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
SA = ctypes.create_string_buffer((2).to_bytes(2, 'little') + (9).to_bytes(2, 'big') + socket.inet_aton('127.0.0.1') +
                                 bytes(8), 16)
BUF = ctypes.create_string_buffer(b'x', 1)
IOV = iovec(ctypes.cast(BUF, ctypes.c_void_p), 1)
# Small batches keep a paced step smooth: at most 32 alerts arrive at once, far below any queue or buffer.
BATCH = 32
MSGS = (mmsghdr * BATCH)()
for m in MSGS:
    m.hdr.name = ctypes.cast(SA, ctypes.c_void_p)
    m.hdr.namelen = 16
    m.hdr.iov = ctypes.pointer(IOV)
    m.hdr.iovlen = 1


def send(n, rate=0.0):
    """Sends n datagrams, paced at rate/s (0: as fast as possible). Returns (sent, seconds)."""
    fd = SOCK.fileno()
    sent = 0
    errors = 0
    t0 = time.monotonic()
    while sent < n:
        r = libc.sendmmsg(fd, MSGS, min(BATCH, n - sent), 0)
        if r < 0:
            errors += 1
            if errors > 100000:
                break
            continue
        sent += r
        if rate > 0:
            ahead = sent / rate - (time.monotonic() - t0)
            if ahead > 0:
                time.sleep(ahead)
    return sent, time.monotonic() - t0


# --- kernel counters ---
def tail_dropped():
    """NET_DM's software tail-drop counter, through Debian's dwdump -s (a C program: cheap to run per step)."""
    r = subprocess.run(['dwdump', '-s'], capture_output=True, text=True)
    m = re.search(r'Software statistics:\s*\nTail dropped: (\d+)', r.stdout)
    if not m:
        raise RuntimeError('dwdump -s said: %r %r' % (r.stdout, r.stderr))
    return int(m.group(1))


def socket_inodes(pid):
    inodes = set()
    try:
        for fd in os.listdir('/proc/%d/fd' % pid):
            try:
                link = os.readlink('/proc/%d/fd/%s' % (pid, fd))
            except OSError:
                continue
            if link.startswith('socket:['):
                inodes.add(link[8:-1])
    except OSError:
        pass
    return inodes


def netlink(pid):
    """(Drops, Rmem) from /proc/net/netlink: Drops summed over the pid's NETLINK_GENERIC sockets, Rmem only over those
    in a multicast group (the alert socket). Debian's dwdump reads one datagram of its nlctrl family dump and leaves
    the rest queued on its control socket for good, so that socket's Rmem never drains."""
    inodes = socket_inodes(pid)
    drops = rmem = 0
    with open('/proc/net/netlink') as f:
        next(f)
        for line in f:
            c = line.split()
            # sk Eth Pid Groups Rmem Wmem Dump Locks Drops Inode
            if len(c) >= 10 and c[1] == '16' and c[9] in inodes:
                drops += int(c[8])
                if int(c[3], 16) != 0:
                    rmem += int(c[4])
    return drops, rmem


def proc_io(pid):
    d = {}
    try:
        with open('/proc/%d/io' % pid) as f:
            for line in f:
                k, v = line.split(':')
                d[k] = int(v)
    except OSError:
        pass
    return d


def cpu_ticks(pid):
    try:
        with open('/proc/%d/stat' % pid) as f:
            rest = f.read().rsplit(')', 1)[1].split()
        return int(rest[11]) + int(rest[12])
    except (OSError, IndexError):
        return None


def wait(cond, timeout, step=0.05):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(step)
    return cond()


def drained(pid, quiet=0.4, timeout=30.0):
    """Waits until the reader's receive queue is empty and its CPU idle: every alert of the step handled or lost.
    Returns (drained in time, when its receive queue was first seen empty)."""
    end = time.monotonic() + timeout
    last = cpu_ticks(pid)
    since = time.monotonic()
    empty_at = None
    while time.monotonic() < end:
        _, rmem = netlink(pid)
        if rmem == 0 and empty_at is None:
            empty_at = time.monotonic()
        now = cpu_ticks(pid)
        if rmem != 0 or now != last:
            last = now
            since = time.monotonic()
        elif time.monotonic() - since >= quiet:
            return True, empty_at
        time.sleep(0.05)
    return False, empty_at if empty_at is not None else time.monotonic()


# --- the readers ---
class Reader:
    def __init__(self, name):
        self.name = name
        self.err_path = '/tmp/%s.err' % name
        self.err = open(self.err_path, 'w')
        self.stdin = None
        if name == 'dwdump':
            argv = ['dwdump', '-w', '/dev/null']
        elif name == 'ours-dwdump':
            argv = ['node', '/project/bin/dwdump', '-w', '/dev/null']
        elif name == 'ours-dropwatch':
            argv = ['node', '/project/bin/dropwatch', '-l', 'kas']
        else:
            raise ValueError(name)
        self.argv = argv
        self.t_spawn = time.monotonic()
        # Our dropwatch prints text: its stdout goes to a file in the guest's tmpfs (RAM) rather than /dev/null, so the
        # alerts it printed can be counted afterwards (Node's write(2) count includes libuv's own eventfd writes, so
        # it cannot stand in as it does for Debian's dwdump). Writing a RAM file costs a little more than /dev/null.
        self.out_path = '/tmp/%s.out' % name if name == 'ours-dropwatch' else None
        stdout = open(self.out_path, 'wb') if self.out_path else subprocess.DEVNULL
        self.p = subprocess.Popen(argv, stdin=subprocess.PIPE if name == 'ours-dropwatch' else subprocess.DEVNULL,
                                  stdout=stdout, stderr=self.err)
        if self.out_path:
            stdout.close()
        self.pid = self.p.pid

    def stderr_text(self):
        with open(self.err_path) as f:
            return f.read()

    def ready(self):
        """True once the kernel is monitoring for this reader (START acknowledged)."""
        if self.name == 'dwdump':
            # Debian's dwdump writes the pcap header and the nlctrl family record right after START's ack: one
            # write(2) (it fflush()es after every record).
            return wait(lambda: proc_io(self.pid).get('syscw', 0) >= 1, 30)
        if self.name == 'ours-dwdump':
            return wait(lambda: 'capturing' in self.stderr_text(), 60)
        # Our dropwatch: its REPL reads commands from the pipe; "Kernel monitoring activated." follows START's ack.
        self.p.stdin.write(b'set alertmode packet\nstart\n')
        self.p.stdin.flush()
        return wait(lambda: b'Kernel monitoring activated.' in self.stdout_bytes(), 60)

    def stdout_bytes(self):
        with open(self.out_path, 'rb') as f:
            return f.read()

    def printed_alerts(self):
        # One block per alert, each with one "drop at: " line.
        data = self.stdout_bytes()
        return data.count(b'\ndrop at: ') + (1 if data.startswith(b'drop at: ') else 0)

    def stop(self):
        if self.name == 'ours-dropwatch':
            # SIGINT ends monitoring and returns to the prompt (Lost lines go to stderr); end of input then exits.
            self.p.send_signal(2)
            time.sleep(1.0)
            try:
                self.p.stdin.close()
            except OSError:
                pass
        else:
            self.p.send_signal(2)
        try:
            rc = self.p.wait(60)
        except subprocess.TimeoutExpired:
            self.p.kill()
            rc = self.p.wait()
        self.err.close()
        return rc


def run_reader(name, rnd):
    tail0 = tail_dropped()
    r = Reader(name)
    if not r.ready():
        r.stop()
        out('error', reader=name, round=rnd, error='did not start', stderr=r.stderr_text()[-2000:])
        return
    startup_s = time.monotonic() - r.t_spawn
    time.sleep(0.5)
    io0 = proc_io(r.pid)
    err0 = os.path.getsize(r.err_path)
    cpu0 = cpu_ticks(r.pid)
    # One datagram first: how many write(2) calls one alert costs this reader (Debian's dwdump: 1, one pcap record).
    # That turns Debian's write count into the number of records it wrote to /dev/null, which it does not report.
    send(1)
    drained(r.pid)
    per_alert = proc_io(r.pid).get('syscw', 0) - io0.get('syscw', 0)
    sent_total = 1
    steps = []
    limited = 0
    rate = RATE0
    def step_at(rate):
        n = max(200, int(rate * STEP_S))
        d0, _ = netlink(r.pid)
        t0 = tail_dropped()
        c0 = cpu_ticks(r.pid)
        sent, secs = send(n, rate)
        ended = time.monotonic()
        ok_drain, empty_at = drained(r.pid)
        d1, _ = netlink(r.pid)
        t1 = tail_dropped()
        c1 = cpu_ticks(r.pid)
        # How long the reader's receive queue still held alerts after the last one was sent (50 ms poll). A reader
        # that keeps up empties it with the sender; one that only survives the step thanks to its receive buffer
        # (our dropwatch: 16 MiB, the dwdumps: 1 MiB) is still working through a backlog. (CPU idleness is no measure
        # of this: Node's timers and GC tick the CPU clock on their own.)
        lag = max(0.0, empty_at - ended)
        step = {'target': rate, 'sent': sent, 'seconds': round(secs, 3), 'achieved': sent / secs if secs else 0,
                'socketDrops': d1 - d0, 'tailDrops': t1 - t0, 'cpuTicks': (c1 or 0) - (c0 or 0), 'drained': ok_drain,
                'lagSeconds': round(lag, 3)}
        step['keptUp'] = step['socketDrops'] == 0 and step['tailDrops'] == 0 and lag <= LAG_MAX * STEP_S
        steps.append(step)
        log('%s r%d %7.0f/s (achieved %7.0f) sock %d tail %d lag %.2fs' % (name, rnd, rate, step['achieved'],
                                                                      d1 - d0, t1 - t0, lag))
        return sent, step

    good = bad = None
    while rate <= MAX_RATE:
        sent, step = step_at(rate)
        sent_total += sent
        if not step['keptUp']:
            bad = rate
            break
        good = rate
        # The sender is the limit: a higher target would measure the sender, not the reader. Two steps in a row, so
        # that one hiccup of the guest's clock does not end the ramp.
        if step['achieved'] < 0.85 * rate:
            limited += 1
            if limited >= 2:
                break
        else:
            limited = 0
        rate *= GROWTH
    # Narrow the gap between the last rate kept up with and the first one not: two halvings (geometric).
    if good is not None and bad is not None:
        for _ in range(BISECT):
            mid = (good * bad) ** 0.5
            sent, step = step_at(mid)
            sent_total += sent
            if step['keptUp']:
                good = mid
            else:
                bad = mid
    drained(r.pid)
    io1 = proc_io(r.pid)
    err1 = os.path.getsize(r.err_path)
    cpu1 = cpu_ticks(r.pid)
    sock_drops, _ = netlink(r.pid)
    syscw = io1.get('syscw', 0) - io0.get('syscw', 0)
    rc = r.stop()
    tail = tail_dropped() - tail0
    printed = r.printed_alerts() if r.out_path else None
    if r.out_path:
        os.unlink(r.out_path)
    out('run', reader=name, printed=printed, round=rnd, startupSeconds=round(startup_s, 2), steps=steps, sent=sent_total,
        socketDrops=sock_drops, tailDrops=tail, writes=syscw, writesPerAlert=per_alert,
        stderrDuring=r.stderr_text()[err0:err1].count('\n'), cpuTicks=(cpu1 or 0) - (cpu0 or 0),
        exitCode=rc, stderrAfterStop=r.stderr_text()[err1:][-3000:], stderr=r.stderr_text()[-3000:])


def main():
    out('start', rounds=ROUNDS, stepSeconds=STEP_S, rate0=RATE0, growth=GROWTH, readers=READERS,
        kernel=os.uname().release, nproc=os.cpu_count())
    # Sender alone, nothing monitoring: what the guest can do at all.
    s, secs = send(20000)
    out('sender', sent=s, seconds=round(secs, 3), rate=s / secs)
    for rnd in range(ROUNDS):
        order = READERS[rnd % len(READERS):] + READERS[:rnd % len(READERS)]
        for name in order:
            try:
                run_reader(name, rnd)
            except Exception as e:  # one reader failing must not cost the others' figures
                out('error', reader=name, round=rnd, error=repr(e))
    out('end')


main()
