"""Network on Linux beyond the interface list: default gateways (/proc/net/route,
/proc/net/ipv6_route), DNS servers (/etc/resolv.conf) and listening sockets
(/proc/net/{tcp,tcp6,udp,udp6}) with the owning process found through /proc/*/fd."""

import os
import socket
import struct

from agentless_scanner.asset_common import read_line, read_text

MAX_LISTENING = 1000
TCP_LISTEN = "0A"
UDP_UNCONNECTED = "07"  # TCP_CLOSE: a bound UDP socket with no peer
RTF_GATEWAY = 0x2
LITTLE_ENDIAN = struct.pack("=I", 1) == struct.pack("<I", 1)


def hex_ipv4(text):
    """/proc/net's IPv4 (host byte order on little-endian machines: 0100007F = 127.0.0.1)."""
    return socket.inet_ntoa(struct.pack("=I", int(text, 16)))


def hex_ipv6(text):
    """/proc/net's IPv6: four 32-bit words, each in host byte order."""
    raw = bytes(bytearray.fromhex(text))
    # Each word is printed with %08X of a native u32: swap back on little-endian machines.
    if LITTLE_ENDIAN:
        raw = b"".join(raw[i : i + 4][::-1] for i in range(0, 16, 4))
    return socket.inet_ntop(socket.AF_INET6, raw)


def parse_route(text):
    """Default IPv4 gateways from /proc/net/route: [{interface, address}]."""
    found = []
    for line in text.splitlines()[1:]:
        parts = line.split()
        if len(parts) < 8:
            continue
        try:
            flags = int(parts[3], 16)
            if parts[1] != "00000000" or parts[7] != "00000000" or not flags & RTF_GATEWAY:
                continue
            entry = {"interface": parts[0], "address": hex_ipv4(parts[2])}
        except (ValueError, struct.error, OSError):
            continue
        if entry not in found:
            found.append(entry)
    return found


def parse_ipv6_route(text):
    """Default IPv6 gateways from /proc/net/ipv6_route (::/0 with a next hop)."""
    found = []
    for line in text.splitlines():
        parts = line.split()
        if len(parts) < 10 or parts[0] != "0" * 32 or parts[1] != "00":
            continue
        if parts[4] == "0" * 32 or parts[9] == "lo":
            continue  # no next hop / the "unreachable" entries on lo
        try:
            # ipv6_route prints addresses in network order (unlike tcp6).
            addr = socket.inet_ntop(socket.AF_INET6, bytes(bytearray.fromhex(parts[4])))
        except (ValueError, OSError):
            continue
        entry = {"interface": parts[9], "address": addr}
        if entry not in found:
            found.append(entry)
    return found


def parse_resolv_conf(text):
    servers = []
    for line in text.splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0] == "nameserver" and parts[1] not in servers:
            servers.append(parts[1])
    return servers


def parse_proc_net(text, proto):
    """Listening sockets from one /proc/net/<proto> table: [{proto, address, port, inode}]."""
    v6 = proto.endswith("6")
    wanted = TCP_LISTEN if proto.startswith("tcp") else UDP_UNCONNECTED
    found = []
    for line in text.splitlines()[1:]:
        parts = line.split()
        if len(parts) < 10 or parts[3] != wanted:
            continue
        local, _, port = parts[1].partition(":")
        remote = parts[2].partition(":")[0]
        if proto.startswith("udp") and int(remote, 16) != 0:
            continue  # a connected UDP socket is a client, not a listener
        try:
            address = hex_ipv6(local) if v6 else hex_ipv4(local)
            found.append(
                {"proto": proto, "address": address, "port": int(port, 16), "inode": int(parts[9])}
            )
        except (ValueError, OSError, struct.error):
            continue
    return found


def socket_owners(inodes, proc="/proc"):
    """{inode: (pid, process name)} for the given socket inodes, by reading /proc/*/fd links
    (only the scanner's own processes unless it runs as root)."""
    wanted = set("socket:[%d]" % i for i in inodes)
    owners = {}
    try:
        pids = [n for n in os.listdir(proc) if n.isdigit()]
    except OSError:
        return owners
    for pid in sorted(pids, key=int):
        fd_dir = os.path.join(proc, pid, "fd")
        try:
            fds = os.listdir(fd_dir)
        except OSError:
            continue
        for fd in fds:
            try:
                link = os.readlink(os.path.join(fd_dir, fd))
            except OSError:
                continue
            if link in wanted:
                inode = int(link[8:-1])
                if inode not in owners:
                    owners[inode] = (int(pid), read_line(os.path.join(proc, pid, "comm")))
        if len(owners) == len(wanted):
            break
    return owners


def listening(proc="/proc"):
    """(items, reason): listening TCP and bound UDP sockets with their process."""
    items = []
    unread = []
    for proto in ("tcp", "tcp6", "udp", "udp6"):
        text = read_text(os.path.join(proc, "net", proto), limit=16 << 20)
        if text is None:
            if proto.endswith("6") and not os.path.exists("/proc/net/if_inet6"):
                continue  # IPv6 disabled: nothing to read
            unread.append(proto)
            continue
        items.extend(parse_proc_net(text, proto))
    owners = socket_owners([i["inode"] for i in items if i["inode"]], proc)
    for item in items:
        pid, name = owners.get(item.pop("inode"), (None, None))
        item["pid"], item["process"] = pid, name
    items.sort(key=lambda i: (i["proto"], i["port"], i["address"]))
    reason = ("cannot read %s" % ", ".join(proc + "/net/" + p for p in unread)) if unread else None
    return items, reason


def collect(proc="/proc", resolv_conf="/etc/resolv.conf"):
    notes = []
    route = read_text(os.path.join(proc, "net", "route"))
    gateways = parse_route(route) if route is not None else []
    if route is None:
        notes.append("cannot read %s/net/route" % proc)
    gateways += parse_ipv6_route(read_text(os.path.join(proc, "net", "ipv6_route")) or "")
    resolv = read_text(resolv_conf)
    if resolv is None and os.path.exists(resolv_conf):
        notes.append("cannot read %s" % resolv_conf)
    items, reason = listening(proc)
    if reason:
        notes.append(reason)
    result = {
        "gateways": gateways,
        "dns_servers": parse_resolv_conf(resolv or ""),
        "listening": items[:MAX_LISTENING],
        "source": "%s/net/route, %s/net/ipv6_route, %s, %s/net/{tcp,tcp6,udp,udp6} + %s/*/fd"
        % (proc, proc, resolv_conf, proc, proc),
        "reason": "; ".join(notes) or None,
    }
    if len(items) > MAX_LISTENING:
        result["listening_truncated"] = True
    return result


def empty(reason):
    return {"gateways": [], "dns_servers": [], "listening": [], "source": None, "reason": reason}
