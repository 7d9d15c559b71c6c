# Guest-side NET_DM capture tool (runs inside the qemu guest as root, python3 stdlib only).
#
# It sends NET_DM requests over plain AF_NETLINK sockets and records every netlink message the
# kernel sends back, byte for byte as recv() returned them, so the codec tests decode real kernel
# output rather than bytes we invented. Each message is printed base64-encoded between
# "@@FILE <name>@@" and "@@ENDFILE@@" lines, and one "@@META <json>@@" line describes it; the host
# driver (capture-netdm.ts) turns those into test/fixtures/netdm/*.bin and manifest.json.
#
# Drops are made by sending UDP datagrams to 127.0.0.1:9 (nothing listens there, so each one is
# one NO_SOCKET drop at __udp4_lib_rcv); the guest is otherwise idle, so counts are exact.
import base64
import json
import os
import socket
import struct
import sys
import time

NETLINK_GENERIC = 16
SOL_NETLINK = 270
NETLINK_ADD_MEMBERSHIP = 1
NETLINK_CAP_ACK = 10
NETLINK_EXT_ACK = 11
NLM_F_REQUEST = 0x1
NLM_F_ACK = 0x4
NLMSG_ERROR = 2
NLMSG_DONE = 3
GENL_ID_CTRL = 0x10
CTRL_CMD_GETFAMILY = 3
CTRL_ATTR_FAMILY_ID = 1
CTRL_ATTR_FAMILY_NAME = 2
CTRL_ATTR_MCAST_GROUPS = 7

# include/uapi/linux/net_dropmon.h
CMD = dict(ALERT=1, CONFIG=2, START=3, STOP=4, PACKET_ALERT=5, CONFIG_GET=6, CONFIG_NEW=7,
           STATS_GET=8, STATS_NEW=9)
CMD_NAME = {v: k for k, v in CMD.items()}
ATTR_ALERT_MODE = 1
ATTR_TRUNC_LEN = 9
ATTR_QUEUE_LEN = 11
ATTR_SW_DROPS = 20
ATTR_HW_DROPS = 21
MODE_SUMMARY = 0
MODE_PACKET = 1

seq = int(time.time()) & 0xFFFF
family_id = None
saved = []


def attr(t, data):
    return struct.pack('=HH', 4 + len(data), t) + data + b'\0' * ((4 - len(data) % 4) % 4)


def nlmsg(mtype, flags, cmd, version, attrs=b''):
    global seq
    seq += 1
    payload = struct.pack('=BBH', cmd, version, 0) + attrs
    return seq, struct.pack('=IHHII', 16 + len(payload), mtype, flags, seq, 0) + payload


def split(buf):
    out = []
    off = 0
    while off + 16 <= len(buf):
        ln = struct.unpack_from('=I', buf, off)[0]
        if ln < 16:
            break
        out.append(buf[off:off + ln])
        off += (ln + 3) & ~3
    return out


def describe(m):
    ln, mtype, flags, mseq, pid = struct.unpack_from('=IHHII', m, 0)
    d = dict(len=ln, type=mtype, flags=flags, seq=mseq, pid=pid)
    if mtype == NLMSG_ERROR:
        d['error'] = struct.unpack_from('=i', m, 16)[0]
        d['errno'] = os.strerror(-d['error']) if d['error'] else 'ack'
        # Extended ACK TLVs follow the echoed request when NLM_F_ACK_TLVS (0x200) is set.
        if flags & 0x200:
            inner_len = 16 if flags & 0x100 else struct.unpack_from('=I', m, 20)[0]
            off = 20 + ((inner_len + 3) & ~3)
            tlvs = {}
            while off + 4 <= len(m):
                alen, atype = struct.unpack_from('=HH', m, off)
                if alen < 4:
                    break
                body = m[off + 4:off + alen]
                if atype == 1:
                    tlvs['msg'] = body.rstrip(b'\0').decode()
                elif atype == 2:
                    tlvs['offs'] = struct.unpack('=I', body)[0]
                else:
                    tlvs[str(atype)] = body.hex()
                off += (alen + 3) & ~3
            d['extack'] = tlvs
    elif mtype >= 16 and len(m) >= 20:
        d['genl_cmd'] = m[16]
        d['genl_version'] = m[17]
    return d


def save(name, m, note):
    d = describe(m)
    d['note'] = note
    if d.get('genl_cmd') is not None and d['type'] == family_id:
        d['cmd_name'] = CMD_NAME.get(d['genl_cmd'])
    sys.stdout.write('@@META %s@@\n' % json.dumps(dict(name=name, **d), sort_keys=True))
    sys.stdout.write('@@FILE %s@@\n%s\n@@ENDFILE@@\n' % (name, base64.encodebytes(m).decode().strip()))
    sys.stdout.flush()
    saved.append(name)


def sock(extack=False, capack=False, groups=()):
    s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_GENERIC)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
    s.bind((0, 0))
    if extack:
        s.setsockopt(SOL_NETLINK, NETLINK_EXT_ACK, 1)
    if capack:
        s.setsockopt(SOL_NETLINK, NETLINK_CAP_ACK, 1)
    for g in groups:
        s.setsockopt(SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, g)
    return s


def transact(s, req_seq, req, want_ack):
    """Sends one request; returns every message with its sequence number until the ack (or, with
    no ack requested, the first reply)."""
    s.sendto(req, (0, 0))
    s.settimeout(5)
    got = []
    while True:
        for m in split(s.recv(1 << 17)):
            mtype, mseq = struct.unpack_from('=H', m, 4)[0], struct.unpack_from('=I', m, 8)[0]
            if mseq != req_seq:
                continue
            got.append(m)
            if mtype == NLMSG_ERROR or mtype == NLMSG_DONE or not want_ack:
                return got


def netdm(s, cmd, attrs=b'', ack=True):
    q, req = nlmsg(family_id, NLM_F_REQUEST | (NLM_F_ACK if ack else 0), CMD[cmd], 2, attrs)
    return transact(s, q, req, ack)


def drain(s, seconds):
    """Every message that arrives on s within `seconds`."""
    end = time.time() + seconds
    got = []
    while True:
        left = end - time.time()
        if left <= 0:
            return got
        s.settimeout(left)
        try:
            got.extend(split(s.recv(1 << 17)))
        except socket.timeout:
            return got
        except OSError as e:
            # ENOBUFS: the kernel overflowed our receive buffer (a burst of packet alerts); the
            # socket stays usable, later messages still arrive.
            if e.errno != 105:
                raise
            log('ENOBUFS on the events socket')


def send_udp(n, payload=b'x'):
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    for _ in range(n):
        u.sendto(payload, ('127.0.0.1', 9))
    u.close()


def log(*a):
    print(*a, file=sys.stderr, flush=True)


# --- family resolution ---
ctl = sock()
q, req = nlmsg(GENL_ID_CTRL, NLM_F_REQUEST, CTRL_CMD_GETFAMILY, 1, attr(CTRL_ATTR_FAMILY_NAME, b'NET_DM\0'))
reply = transact(ctl, q, req, False)[0]
save('ctrl-getfamily-reply.bin', reply, 'nlctrl CTRL_CMD_NEWFAMILY reply to CTRL_CMD_GETFAMILY name=NET_DM (no NLM_F_ACK)')
family_id = None
group_id = None
off = 20
while off + 4 <= len(reply):
    alen, atype = struct.unpack_from('=HH', reply, off)
    body = reply[off + 4:off + alen]
    if atype == CTRL_ATTR_FAMILY_ID:
        family_id = struct.unpack_from('=H', body)[0]
    elif atype & 0x7FFF == CTRL_ATTR_MCAST_GROUPS:
        # [ {1: name, 2: id} ... ] nested twice
        g = 0
        while g + 4 <= len(body):
            glen, _ = struct.unpack_from('=HH', body, g)
            inner = body[g + 4:g + glen]
            i = 0
            name = gid = None
            while i + 4 <= len(inner):
                ilen, itype = struct.unpack_from('=HH', inner, i)
                if itype == 1:
                    name = inner[i + 4:i + ilen].rstrip(b'\0')
                elif itype == 2:
                    gid = struct.unpack_from('=I', inner, i + 4)[0]
                i += (ilen + 3) & ~3
            if name == b'events':
                group_id = gid
            g += (glen + 3) & ~3
    off += (alen + 3) & ~3
log('NET_DM family id', family_id, 'events group', group_id)
sys.stdout.write('@@INFO family_id=%d group_id=%d@@\n' % (family_id, group_id))

ctl_x = sock(extack=True)
ctl_xc = sock(extack=True, capack=True)
ev = sock(groups=[group_id])

# --- queries on the freshly loaded module ---
r = netdm(ctl, 'CONFIG_GET', ack=False)
save('config-new-default.bin', r[0], 'CONFIG_NEW reply to CONFIG_GET (no NLM_F_ACK) right after insmod: defaults')
r = netdm(ctl, 'STATS_GET', ack=False)
save('stats-new-initial.bin', r[0], 'STATS_NEW reply to STATS_GET (no NLM_F_ACK) right after insmod')
r = netdm(ctl, 'CONFIG_GET', ack=True)
save('config-new-with-ack.bin', r[0], 'CONFIG_NEW reply to CONFIG_GET sent with NLM_F_ACK (the ack follows)')
save('ack-config-get.bin', r[-1], 'NLMSG_ERROR error=0 ack after the CONFIG_NEW reply (no extack socket option)')

# --- summary mode: config, start, the error cases, one alert of 100 drops ---
r = netdm(ctl, 'CONFIG', attr(ATTR_ALERT_MODE, bytes([MODE_SUMMARY])))
save('ack-config-ok.bin', r[-1], 'ack for CONFIG alert_mode=summary (NLM_F_ACK, no extack)')
r = netdm(ctl_x, 'CONFIG', attr(ATTR_ALERT_MODE, bytes([MODE_SUMMARY])))
save('ack-config-ok-extack.bin', r[-1], 'ack for CONFIG alert_mode=summary on a NETLINK_EXT_ACK socket')
r = netdm(ctl, 'CONFIG', attr(ATTR_ALERT_MODE, bytes([7])))
save('err-config-einval.bin', r[-1], 'CONFIG alert_mode=7 (invalid), no extack')
r = netdm(ctl_x, 'CONFIG', attr(ATTR_ALERT_MODE, bytes([7])))
save('err-config-einval-extack.bin', r[-1], 'CONFIG alert_mode=7 (invalid) on a NETLINK_EXT_ACK socket')
r = netdm(ctl_x, 'START', attr(ATTR_HW_DROPS, b''))
save('ack-start-hw-only-extack.bin', r[-1], 'START with only NET_DM_ATTR_HW_DROPS on an EXT_ACK socket; the guest has no devlink device and 6.1 still acks it (HW monitoring is stopped right after)')
if struct.unpack_from('=i', r[-1], 16)[0] == 0:
    netdm(ctl, 'STOP', attr(ATTR_HW_DROPS, b''))

r = netdm(ctl, 'START', attr(ATTR_SW_DROPS, b''))
save('ack-start-ok.bin', r[-1], 'ack for START with NET_DM_ATTR_SW_DROPS (summary mode)')
r = netdm(ctl, 'START', attr(ATTR_SW_DROPS, b''))
save('err-start-eagain.bin', r[-1], 'second START while monitoring, no extack')
r = netdm(ctl_x, 'START', attr(ATTR_SW_DROPS, b''))
save('err-start-eagain-extack.bin', r[-1], 'second START while monitoring, NETLINK_EXT_ACK socket')
r = netdm(ctl, 'CONFIG', attr(ATTR_ALERT_MODE, bytes([MODE_PACKET])))
save('err-config-ebusy.bin', r[-1], 'CONFIG while monitoring, no extack (echoes the whole request)')
r = netdm(ctl_x, 'CONFIG', attr(ATTR_ALERT_MODE, bytes([MODE_PACKET])))
save('err-config-ebusy-extack.bin', r[-1], 'CONFIG while monitoring, NETLINK_EXT_ACK socket')
r = netdm(ctl_xc, 'CONFIG', attr(ATTR_ALERT_MODE, bytes([MODE_PACKET])))
save('err-config-ebusy-extack-capack.bin', r[-1], 'CONFIG while monitoring, NETLINK_EXT_ACK + NETLINK_CAP_ACK socket (request header only)')

drain(ev, 0.5)  # anything from before the drops
send_udp(100)
alerts = [m for m in drain(ev, 3.0) if struct.unpack_from('=H', m, 4)[0] == family_id]
for i, m in enumerate(alerts):
    save('alert-summary-%d.bin' % i, m, 'ALERT (summary) multicast on "events" after 100 UDP datagrams to 127.0.0.1:9; message %d of %d' % (i + 1, len(alerts)))
r = netdm(ctl, 'STATS_GET', ack=False)
save('stats-new-summary-running.bin', r[0], 'STATS_NEW while monitoring in summary mode after the 100 drops')
r = netdm(ctl, 'STOP', attr(ATTR_SW_DROPS, b''))
save('ack-stop-ok.bin', r[-1], 'ack for STOP with NET_DM_ATTR_SW_DROPS')
r = netdm(ctl_x, 'STOP', attr(ATTR_SW_DROPS, b''))
save('ack-stop-not-running-extack.bin', r[-1], 'STOP when not monitoring, NETLINK_EXT_ACK socket: 6.1 acks it (error 0) with an extack warning message')
r = netdm(ctl, 'STOP', attr(ATTR_SW_DROPS, b''))
save('ack-stop-not-running.bin', r[-1], 'STOP when not monitoring, no extack: a plain ack on 6.1')

# --- packet mode: three drops with distinct payloads ---
r = netdm(ctl, 'CONFIG', attr(ATTR_ALERT_MODE, bytes([MODE_PACKET])) + attr(ATTR_TRUNC_LEN, struct.pack('=I', 0)) + attr(ATTR_QUEUE_LEN, struct.pack('=I', 1000)))
save('ack-config-packet.bin', r[-1], 'ack for CONFIG alert_mode=packet trunc_len=0 queue_len=1000')
r = netdm(ctl, 'CONFIG_GET', ack=False)
save('config-new-packet.bin', r[0], 'CONFIG_NEW after setting packet mode, trunc_len 0, queue_len 1000')
netdm(ctl, 'START', attr(ATTR_SW_DROPS, b''))
drain(ev, 0.3)
for p in (b'dropwatch-1', b'dropwatch-22', b'dropwatch-333'):
    send_udp(1, p)
    time.sleep(0.2)
pkts = [m for m in drain(ev, 2.0) if struct.unpack_from('=H', m, 4)[0] == family_id]
for i, m in enumerate(pkts):
    save('packet-alert-%d.bin' % i, m, 'PACKET_ALERT %d of %d: UDP datagram %d (payload "dropwatch-%s") to 127.0.0.1:9' % (i + 1, len(pkts), i + 1, str(i + 1) * (i + 1)))
netdm(ctl, 'STOP', attr(ATTR_SW_DROPS, b''))

# --- packet mode with truncation ---
netdm(ctl, 'CONFIG', attr(ATTR_ALERT_MODE, bytes([MODE_PACKET])) + attr(ATTR_TRUNC_LEN, struct.pack('=I', 20)) + attr(ATTR_QUEUE_LEN, struct.pack('=I', 1000)))
netdm(ctl, 'START', attr(ATTR_SW_DROPS, b''))
drain(ev, 0.3)
send_udp(1, b'truncated-payload-0123456789')
pkts = [m for m in drain(ev, 2.0) if struct.unpack_from('=H', m, 4)[0] == family_id]
for i, m in enumerate(pkts):
    save('packet-alert-trunc20-%d.bin' % i, m, 'PACKET_ALERT with trunc_len=20: one UDP datagram with a 28-byte payload to 127.0.0.1:9; PAYLOAD holds 20 bytes, ORIG_LEN the full length (6.1 sends no TRUNC_LEN attribute)')
netdm(ctl, 'STOP', attr(ATTR_SW_DROPS, b''))

# --- packet mode, tiny queue, a burst: tail drops show up in STATS_NEW ---
# The per-CPU queue is emptied by a work item bound to the CPU the drop happened on. The sender
# runs SCHED_FIFO pinned to CPU 0, so that kworker cannot run until the burst is over: with a queue
# of one packet every drop after the first is a tail drop (when the burst fits in the RT budget).
netdm(ctl, 'CONFIG', attr(ATTR_ALERT_MODE, bytes([MODE_PACKET])) + attr(ATTR_TRUNC_LEN, struct.pack('=I', 0)) + attr(ATTR_QUEUE_LEN, struct.pack('=I', 1)))
netdm(ctl, 'START', attr(ATTR_SW_DROPS, b''))
os.sched_setaffinity(0, {0})
os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(50))
t0 = time.time()
send_udp(200)
burst_s = time.time() - t0
os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0))
burst = [m for m in drain(ev, 2.0) if struct.unpack_from('=H', m, 4)[0] == family_id]
r = netdm(ctl, 'STATS_GET', ack=False)
save('stats-new-tail-drops.bin', r[0], 'STATS_NEW after 200 datagrams (burst of %.3f s from a SCHED_FIFO sender on CPU 0) in packet mode with queue_len=1; %d PACKET_ALERTs were delivered, the rest were tail-dropped' % (burst_s, len(burst)))
netdm(ctl, 'STOP', attr(ATTR_SW_DROPS, b''))

# Leave the module as insmod left it for whatever runs next.
netdm(ctl, 'CONFIG', attr(ATTR_ALERT_MODE, bytes([MODE_SUMMARY])) + attr(ATTR_TRUNC_LEN, struct.pack('=I', 0)) + attr(ATTR_QUEUE_LEN, struct.pack('=I', 1000)))
log('saved', len(saved), 'messages')
