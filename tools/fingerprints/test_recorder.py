#!/usr/bin/env python3
"""Tests of recorder.py's parsers and fingerprints (python3 -m unittest)."""

import hashlib
import json
import os
import socket
import struct
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import recorder  # noqa: E402

# The worked example of FoxIO's JA4 description (technical_details/JA4.md).
SPEC_CIPHERS = [0x1301, 0x1302, 0x1303, 0xC02B, 0xC02F, 0xC02C, 0xC030, 0xCCA9,
                0xCCA8, 0xC013, 0xC014, 0x009C, 0x009D, 0x002F, 0x0035]
SPEC_EXTENSIONS = [0x001B, 0x0000, 0x0033, 0x0010, 0x4469, 0x0017, 0x002D, 0x000D,
                   0x0005, 0x0023, 0x0012, 0x002B, 0xFF01, 0x000B, 0x000A, 0x0015]
SPEC_SIGS = [0x0403, 0x0804, 0x0401, 0x0503, 0x0805, 0x0501, 0x0806, 0x0601]


def ext(ext_type, data):
    return struct.pack(">HH", ext_type, len(data)) + data


def u16s(values, len_bytes=2):
    body = b"".join(struct.pack(">H", v) for v in values)
    return (struct.pack(">H", len(body)) if len_bytes == 2 else bytes([len(body)])) + body


def client_hello_bytes(ciphers, extensions, legacy=0x0303):
    body = struct.pack(">H", legacy) + b"\x11" * 32 + b"\x00"
    body += u16s(ciphers) + b"\x01\x00"
    exts = b"".join(extensions)
    body += struct.pack(">H", len(exts)) + exts
    hs = b"\x01" + struct.pack(">I", len(body))[1:] + body
    return hs


def spec_like_hello(grease=False):
    """A ClientHello carrying the spec example's lists (plus GREASE if asked)."""
    ciphers = ([0x3A3A] if grease else []) + SPEC_CIPHERS
    exts = []
    if grease:
        exts.append(ext(0x8A8A, b""))
    for t in SPEC_EXTENSIONS:
        if t == 0x0000:
            name = b"example.org"
            entry = b"\x00" + struct.pack(">H", len(name)) + name
            exts.append(ext(t, struct.pack(">H", len(entry)) + entry))
        elif t == 0x0010:
            protos = b"\x02h2\x08http/1.1"
            exts.append(ext(t, struct.pack(">H", len(protos)) + protos))
        elif t == 0x000D:
            exts.append(ext(t, u16s(SPEC_SIGS)))
        elif t == 0x002B:
            versions = ([0x2A2A] if grease else []) + [0x0304, 0x0303]
            exts.append(ext(t, u16s(versions, 1)))
        elif t == 0x000A:
            groups = ([0x4A4A] if grease else []) + [0x001D, 0x0017, 0x0018]
            exts.append(ext(t, u16s(groups)))
        elif t == 0x000B:
            exts.append(ext(t, b"\x01\x00"))
        else:
            exts.append(ext(t, b""))
    return client_hello_bytes(ciphers, exts)


class Ja4Test(unittest.TestCase):
    def test_spec_example(self):
        hello = recorder.parse_client_hello(spec_like_hello()[4:])
        value, raw = recorder.ja4(hello)
        self.assertEqual(value, "t13d1516h2_8daaf6152771_e5627efa2ab1")
        self.assertTrue(raw.startswith("t13d1516h2_002f,0035,009c,"))

    def test_grease_is_ignored(self):
        plain = recorder.parse_client_hello(spec_like_hello()[4:])
        greased = recorder.parse_client_hello(spec_like_hello(grease=True)[4:])
        self.assertEqual(recorder.ja4(plain), recorder.ja4(greased))
        self.assertEqual(recorder.ja3(plain), recorder.ja3(greased))

    def test_no_sni_no_alpn_no_sigs(self):
        hs = client_hello_bytes([0x002F], [ext(0x000B, b"\x01\x00")], legacy=0x0301)
        hello = recorder.parse_client_hello(hs[4:])
        value, raw = recorder.ja4(hello)
        self.assertEqual(raw, "t10i010100_002f_000b")
        self.assertEqual(value.split("_")[2], hashlib.sha256(b"000b").hexdigest()[:12])

    def test_alpn_non_alphanumeric(self):
        hello = {"alpn": [b"\x30\xab\xcd\x31"]}
        self.assertEqual(recorder.ja4_alpn(hello), "01")
        hello = {"alpn": [b"\xab"]}
        self.assertEqual(recorder.ja4_alpn(hello), "ab")
        hello = {"alpn": [b"x"]}
        self.assertEqual(recorder.ja4_alpn(hello), "xx")

    def test_empty_lists(self):
        hs = client_hello_bytes([], [])
        value, _ = recorder.ja4(recorder.parse_client_hello(hs[4:]))
        self.assertEqual(value, "t12i000000_000000000000_000000000000")


class Ja3Test(unittest.TestCase):
    def test_string(self):
        hello = recorder.parse_client_hello(spec_like_hello(grease=True)[4:])
        text, digest = recorder.ja3(hello)
        self.assertEqual(
            text,
            "771,4865-4866-4867-49195-49199-49196-49200-52393-52392-49171-49172-156-157-47-53,"
            "27-0-51-16-17513-23-45-13-5-35-18-43-65281-11-10-21,29-23-24,0",
        )
        self.assertEqual(digest, hashlib.md5(text.encode()).hexdigest())

    def test_grease_predicate(self):
        self.assertTrue(all(recorder.is_grease(0x0A0A + 0x1010 * i) for i in range(16)))
        self.assertFalse(recorder.is_grease(0x0A1A))
        self.assertFalse(recorder.is_grease(0x1301))


class SshTest(unittest.TestCase):
    def test_kexinit_round_trip_and_hassh(self):
        lists = dict(recorder.SERVER_KEXINIT)
        payload = recorder.encode_kexinit(lists, b"\x00" * 16)
        parsed = recorder.parse_kexinit(payload)
        for field in recorder.KEXINIT_FIELDS:
            self.assertEqual(parsed[field], lists[field])
        algorithms, digest = recorder.hassh(parsed)
        self.assertEqual(
            algorithms,
            ";".join([lists["kex_algorithms"],
                      lists["encryption_algorithms_client_to_server"],
                      lists["mac_algorithms_client_to_server"],
                      lists["compression_algorithms_client_to_server"]]),
        )
        self.assertEqual(digest, hashlib.md5(algorithms.encode()).hexdigest())

    def test_binary_packet_alignment(self):
        for n in range(0, 40):
            pkt = recorder.binary_packet(b"\x14" * n)
            self.assertEqual(len(pkt) % 8, 0)
            length, pad = struct.unpack(">IB", pkt[:5])
            self.assertGreaterEqual(pad, 4)
            self.assertEqual(length + 4, len(pkt))

    def test_not_kexinit(self):
        with self.assertRaises(recorder.ProtocolError):
            recorder.parse_kexinit(b"\x15")


class ServerTest(unittest.TestCase):
    """The recorder as a process, with a scripted SSH client and TLS client."""

    def test_end_to_end(self):
        proc = subprocess.Popen(
            [sys.executable, recorder.__file__, "--ssh-port", "0", "--tls-port", "0",
             "--max-connections", "2"],
            stdout=subprocess.PIPE, text=True)
        try:
            ready = json.loads(proc.stdout.readline())
            with socket.create_connection(("127.0.0.1", ready["ssh_port"]), 5) as s:
                s.sendall(b"SSH-2.0-test_client\r\n")
                s.sendall(recorder.binary_packet(
                    recorder.encode_kexinit(recorder.SERVER_KEXINIT, b"\x01" * 16)))
                banner = s.makefile("rb").readline()
                self.assertTrue(banner.startswith(b"SSH-2.0-"))
            ssh = json.loads(proc.stdout.readline())
            with socket.create_connection(("127.0.0.1", ready["tls_port"]), 5) as s:
                hs = spec_like_hello()
                # split across two records, as large hellos are
                s.sendall(b"\x16\x03\x01" + struct.pack(">H", 10) + hs[:10])
                s.sendall(b"\x16\x03\x01" + struct.pack(">H", len(hs) - 10) + hs[10:])
            tls = json.loads(proc.stdout.readline())
            deadline = time.monotonic() + 10
            while proc.poll() is None and time.monotonic() < deadline:
                time.sleep(0.05)
            self.assertEqual(proc.poll(), 0)
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.stdout.close()
        self.assertEqual(ssh["ssh_client_version"], "SSH-2.0-test_client")
        self.assertEqual(ssh["hassh"], recorder.hassh(recorder.SERVER_KEXINIT)[1])
        self.assertEqual(tls["ja4"], "t13d1516h2_8daaf6152771_e5627efa2ab1")
        self.assertEqual(tls["sni"], "example.org")
        self.assertEqual(tls["alpn"], ["h2", "http/1.1"])


if __name__ == "__main__":
    unittest.main()
