#!/usr/bin/env python3
"""Record the fingerprint a client sends first: HASSH for SSH, JA3/JA4 for TLS.

A loopback TCP server, Python 3 standard library only. Each connection gets
one JSON line on standard output, then the connection is closed:

  SSH  the server sends its version banner and a KEXINIT so that the client
       goes far enough to send its own; the line carries the client's version
       banner (`ssh_client_version`), its KEXINIT name-lists and its HASSH.
  TLS  the server reads the ClientHello (across as many records as it spans)
       and drops the connection; the line carries JA3 and JA4 and what they
       were computed from.

The first line printed says which ports are listened on:
  {"event": "listening", "ssh_port": 40123, "tls_port": 40124}

Usage:
  recorder.py [--host 127.0.0.1] [--ssh-port N] [--tls-port N]
              [--ssh-banner 'SSH-2.0-...'] [--max-connections N]
Port 0 picks a free port; a protocol whose port option is absent is not served.

Definitions followed:
  HASSH  md5 of "kex;enc_c2s;mac_c2s;comp_c2s", the client's KEXINIT
         name-lists as sent (RFC 4253 section 7.1 for the message layout).
  JA3    md5 of "SSLVersion,Ciphers,Extensions,EllipticCurves,PointFormats":
         ClientHello legacy version, then the lists in the order sent, decimal,
         '-'-separated, GREASE values (RFC 8701) removed.
  JA4    FoxIO's JA4 TLS client description (technical_details/JA4.md of the
         FoxIO-LLC/ja4 repository, revision d8f731c): see `ja4()` below.
"""

import argparse
import hashlib
import ipaddress
import json
import socket
import struct
import sys
import threading

IO_TIMEOUT_S = 10.0
MAX_SSH_PACKET = 256 * 1024
MAX_BANNER_BYTES = 8192
MAX_CLIENT_HELLO = 64 * 1024

KEXINIT_FIELDS = (
    "kex_algorithms",
    "server_host_key_algorithms",
    "encryption_algorithms_client_to_server",
    "encryption_algorithms_server_to_client",
    "mac_algorithms_client_to_server",
    "mac_algorithms_server_to_client",
    "compression_algorithms_client_to_server",
    "compression_algorithms_server_to_client",
    "languages_client_to_server",
    "languages_server_to_client",
)

SSH_MSG_KEXINIT = 20

# What the recorder offers as a server. Clients send their own KEXINIT
# without waiting for this one, but some stop on an unparseable or empty
# server proposal before writing theirs, so it is a plausible one.
SERVER_KEXINIT = {
    "kex_algorithms": "curve25519-sha256,curve25519-sha256@libssh.org,"
    "ecdh-sha2-nistp256,diffie-hellman-group14-sha256,"
    "diffie-hellman-group14-sha1",
    "server_host_key_algorithms": "ssh-ed25519,rsa-sha2-512,rsa-sha2-256,ssh-rsa",
    "encryption_algorithms_client_to_server": "aes128-ctr,aes256-ctr,aes128-gcm@openssh.com",
    "encryption_algorithms_server_to_client": "aes128-ctr,aes256-ctr,aes128-gcm@openssh.com",
    "mac_algorithms_client_to_server": "hmac-sha2-256,hmac-sha1",
    "mac_algorithms_server_to_client": "hmac-sha2-256,hmac-sha1",
    "compression_algorithms_client_to_server": "none",
    "compression_algorithms_server_to_client": "none",
    "languages_client_to_server": "",
    "languages_server_to_client": "",
}

DEFAULT_SSH_BANNER = "SSH-2.0-OpenSSH_9.2p1"


class ProtocolError(Exception):
    """The peer sent something that is not what the protocol says."""


# ---------------------------------------------------------------- helpers


class Reader:
    """Buffered reads from a socket, with a cap on what is read in total."""

    def __init__(self, sock, limit):
        self.sock = sock
        self.buf = b""
        self.limit = limit
        self.total = 0

    def _fill(self):
        chunk = self.sock.recv(65536)
        if not chunk:
            raise ProtocolError(
                "connection closed by the client after %d bytes" % self.total
            )
        self.total += len(chunk)
        if self.total > self.limit:
            raise ProtocolError("client sent more than %d bytes" % self.limit)
        self.buf += chunk

    def exactly(self, n):
        while len(self.buf) < n:
            self._fill()
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def line(self, max_len):
        while b"\n" not in self.buf:
            if len(self.buf) > max_len:
                raise ProtocolError("no line end within %d bytes" % max_len)
            self._fill()
        i = self.buf.index(b"\n")
        out, self.buf = self.buf[: i + 1], self.buf[i + 1 :]
        return out


def is_grease(value):
    """RFC 8701 GREASE: 0x0a0a, 0x1a1a, ... 0xfafa."""
    return (value & 0x0F0F) == 0x0A0A and (value >> 8) == (value & 0xFF)


def md5_hex(text):
    return hashlib.md5(text.encode("ascii")).hexdigest()


def sha256_12(text):
    return hashlib.sha256(text.encode("ascii")).hexdigest()[:12]


# ---------------------------------------------------------------- SSH


def parse_kexinit(payload):
    """Parse an SSH_MSG_KEXINIT payload into its ten name-lists (as strings)."""
    if not payload or payload[0] != SSH_MSG_KEXINIT:
        got = payload[0] if payload else None
        raise ProtocolError("first packet is message %r, not KEXINIT (20)" % got)
    pos = 1 + 16  # message number, cookie
    if len(payload) < pos:
        raise ProtocolError("KEXINIT shorter than its cookie")
    lists = {}
    for field in KEXINIT_FIELDS:
        if pos + 4 > len(payload):
            raise ProtocolError("KEXINIT ends before %s" % field)
        (n,) = struct.unpack(">I", payload[pos : pos + 4])
        pos += 4
        if pos + n > len(payload):
            raise ProtocolError("KEXINIT %s runs past the packet" % field)
        try:
            lists[field] = payload[pos : pos + n].decode("ascii")
        except UnicodeDecodeError as e:
            raise ProtocolError("KEXINIT %s is not ASCII: %s" % (field, e))
        pos += n
    if pos + 5 > len(payload):
        raise ProtocolError("KEXINIT ends before first_kex_packet_follows")
    lists["first_kex_packet_follows"] = bool(payload[pos])
    return lists


def hassh(kexinit):
    """(algorithms string, md5) from parsed client KEXINIT name-lists."""
    algorithms = ";".join(
        kexinit[f]
        for f in (
            "kex_algorithms",
            "encryption_algorithms_client_to_server",
            "mac_algorithms_client_to_server",
            "compression_algorithms_client_to_server",
        )
    )
    return algorithms, md5_hex(algorithms)


def encode_kexinit(lists, cookie):
    out = bytes([SSH_MSG_KEXINIT]) + cookie
    for field in KEXINIT_FIELDS:
        value = lists[field].encode("ascii")
        out += struct.pack(">I", len(value)) + value
    out += b"\x00" + struct.pack(">I", 0)
    return out


def binary_packet(payload, block=8):
    """An unencrypted SSH binary packet (RFC 4253 section 6) around payload."""
    pad = block - ((4 + 1 + len(payload)) % block)
    if pad < 4:
        pad += block
    length = 1 + len(payload) + pad
    # The padding's content is arbitrary before keys are set; zeros keep the
    # recorder's own bytes reproducible.
    return struct.pack(">IB", length, pad) + payload + b"\x00" * pad


def read_ssh_client(sock, server_banner):
    sock.sendall(server_banner.encode("ascii") + b"\r\n")
    reader = Reader(sock, MAX_BANNER_BYTES + MAX_SSH_PACKET)
    # A client sends its version line first (RFC 4253 section 4.2); lines
    # before it are allowed from servers only, but are skipped here too.
    for _ in range(32):
        raw = reader.line(MAX_BANNER_BYTES)
        if raw.startswith(b"SSH-"):
            break
    else:
        raise ProtocolError("no SSH- version line in the first 32 lines")
    version = raw.rstrip(b"\r\n").decode("ascii", "replace")
    # A fixed cookie: the recorder needs no secrecy, and fixed bytes keep runs alike.
    sock.sendall(binary_packet(encode_kexinit(SERVER_KEXINIT, b"\x5a" * 16)))
    header = reader.exactly(5)
    length, pad = struct.unpack(">IB", header)
    if length < 1 + pad or length > MAX_SSH_PACKET:
        raise ProtocolError("implausible packet length %d (padding %d)" % (length, pad))
    body = reader.exactly(length - 1)
    payload = body[: len(body) - pad]
    kex = parse_kexinit(payload)
    algorithms, digest = hassh(kex)
    return {
        "proto": "ssh",
        "ssh_client_version": version,
        "hassh": digest,
        "hassh_algorithms": algorithms,
        "kexinit": kex,
    }


# ---------------------------------------------------------------- TLS

TLS_VERSION_JA4 = {
    0x0304: "13",
    0x0303: "12",
    0x0302: "11",
    0x0301: "10",
    0x0300: "s3",
    0x0002: "s2",
    0xFEFF: "d1",
    0xFEFD: "d2",
    0xFEFC: "d3",
}

EXT_SERVER_NAME = 0x0000
EXT_SUPPORTED_GROUPS = 0x000A
EXT_EC_POINT_FORMATS = 0x000B
EXT_SIGNATURE_ALGORITHMS = 0x000D
EXT_ALPN = 0x0010
EXT_SUPPORTED_VERSIONS = 0x002B


class Cursor:
    def __init__(self, data, what):
        self.data = data
        self.pos = 0
        self.what = what

    def take(self, n):
        if self.pos + n > len(self.data):
            raise ProtocolError("%s truncated at byte %d" % (self.what, self.pos))
        out = self.data[self.pos : self.pos + n]
        self.pos += n
        return out

    def u8(self):
        return self.take(1)[0]

    def u16(self):
        return struct.unpack(">H", self.take(2))[0]

    def u24(self):
        b = self.take(3)
        return (b[0] << 16) | (b[1] << 8) | b[2]

    def vec(self, len_bytes):
        n = {1: self.u8, 2: self.u16, 3: self.u24}[len_bytes]()
        return self.take(n)

    def done(self):
        return self.pos >= len(self.data)


def u16_list(data, what):
    if len(data) % 2:
        raise ProtocolError("%s has an odd length" % what)
    return [struct.unpack(">H", data[i : i + 2])[0] for i in range(0, len(data), 2)]


def parse_client_hello(body):
    """Parse a ClientHello handshake body (after the 4-byte handshake header)."""
    c = Cursor(body, "ClientHello")
    hello = {"legacy_version": c.u16()}
    c.take(32)  # random
    c.vec(1)  # legacy_session_id
    hello["cipher_suites"] = u16_list(c.vec(2), "cipher_suites")
    hello["compression_methods"] = list(c.vec(1))
    hello["extensions"] = []
    hello["supported_groups"] = []
    hello["ec_point_formats"] = []
    hello["signature_algorithms"] = []
    hello["supported_versions"] = []
    hello["alpn"] = []
    hello["sni"] = None
    if c.done():
        return hello  # no extensions block at all (allowed before TLS 1.3)
    ext_block = Cursor(c.vec(2), "extensions")
    while not ext_block.done():
        ext_type = ext_block.u16()
        data = ext_block.vec(2)
        hello["extensions"].append(ext_type)
        e = Cursor(data, "extension %d" % ext_type)
        if ext_type == EXT_SUPPORTED_GROUPS:
            hello["supported_groups"] = u16_list(e.vec(2), "supported_groups")
        elif ext_type == EXT_EC_POINT_FORMATS:
            hello["ec_point_formats"] = list(e.vec(1))
        elif ext_type == EXT_SIGNATURE_ALGORITHMS:
            hello["signature_algorithms"] = u16_list(e.vec(2), "signature_algorithms")
        elif ext_type == EXT_SUPPORTED_VERSIONS:
            hello["supported_versions"] = u16_list(e.vec(1), "supported_versions")
        elif ext_type == EXT_ALPN:
            names = Cursor(e.vec(2), "alpn")
            while not names.done():
                hello["alpn"].append(names.vec(1))
        elif ext_type == EXT_SERVER_NAME and data:
            names = Cursor(e.vec(2), "server_name")
            while not names.done():
                name_type = names.u8()
                name = names.vec(2)
                if name_type == 0 and hello["sni"] is None:
                    hello["sni"] = name.decode("ascii", "replace")
    return hello


def ja3(hello):
    """(JA3 string, md5)."""

    def join(values):
        return "-".join(str(v) for v in values if not is_grease(v))

    text = ",".join(
        [
            str(hello["legacy_version"]),
            join(hello["cipher_suites"]),
            join(hello["extensions"]),
            join(hello["supported_groups"]),
            # point formats are single bytes: never GREASE
            "-".join(str(v) for v in hello["ec_point_formats"]),
        ]
    )
    return text, md5_hex(text)


def _alnum(byte):
    return 0x30 <= byte <= 0x39 or 0x41 <= byte <= 0x5A or 0x61 <= byte <= 0x7A


def ja4_alpn(hello):
    if not hello["alpn"] or not hello["alpn"][0]:
        return "00"
    first = hello["alpn"][0]
    if _alnum(first[0]) and _alnum(first[-1]):
        return chr(first[0]) + chr(first[-1])
    hexed = first.hex()
    return hexed[0] + hexed[-1]


def ja4(hello, transport="t"):
    """(JA4, JA4_r) for a parsed ClientHello.

    a: transport, version (highest non-GREASE supported_versions entry, else
       the legacy version), 'd' with SNI / 'i' without, cipher count and
       extension count (GREASE excluded, capped at 99), ALPN first+last char.
    b: sha256 of the sorted 4-hex cipher list, first 12 hex ("000000000000"
       when empty).
    c: sha256 of the sorted 4-hex extension list without SNI (0000) and ALPN
       (0010), then '_' and the signature algorithms in the order sent (no
       '_' when there are none), first 12 hex ("000000000000" when the
       extension list is empty).
    """
    ciphers = [v for v in hello["cipher_suites"] if not is_grease(v)]
    extensions = [v for v in hello["extensions"] if not is_grease(v)]
    versions = [v for v in hello["supported_versions"] if not is_grease(v)]
    version_value = max(versions) if versions else hello["legacy_version"]
    version = TLS_VERSION_JA4.get(version_value, "00")
    sni = "d" if EXT_SERVER_NAME in extensions else "i"
    a = "%s%s%s%02d%02d%s" % (
        transport,
        version,
        sni,
        min(len(ciphers), 99),
        min(len(extensions), 99),
        ja4_alpn(hello),
    )
    cipher_list = ",".join("%04x" % v for v in sorted(ciphers))
    ext_list = ",".join(
        "%04x" % v for v in sorted(extensions) if v not in (EXT_SERVER_NAME, EXT_ALPN)
    )
    sigs = ",".join(
        "%04x" % v for v in hello["signature_algorithms"] if not is_grease(v)
    )
    c_text = ext_list + ("_" + sigs if sigs else "")
    b = sha256_12(cipher_list) if cipher_list else "000000000000"
    c = sha256_12(c_text) if ext_list else "000000000000"
    raw = "%s_%s_%s" % (a, cipher_list, c_text)
    return "%s_%s_%s" % (a, b, c), raw


def read_client_hello(sock):
    """Reassemble the first handshake message from TLS records."""
    reader = Reader(sock, MAX_CLIENT_HELLO + 1024)
    handshake = b""
    record_version = None
    while True:
        header = reader.exactly(5)
        content_type, record_version, length = struct.unpack(">BHH", header)
        if content_type != 22:
            raise ProtocolError(
                "record type %d, not a TLS handshake (22); first bytes %s"
                % (content_type, header.hex())
            )
        if length == 0 or length > 16384 + 2048:
            raise ProtocolError("implausible TLS record length %d" % length)
        handshake += reader.exactly(length)
        if len(handshake) >= 4:
            msg_type = handshake[0]
            msg_len = (handshake[1] << 16) | (handshake[2] << 8) | handshake[3]
            if msg_type != 1:
                raise ProtocolError("handshake message %d, not ClientHello (1)" % msg_type)
            if msg_len > MAX_CLIENT_HELLO:
                raise ProtocolError("ClientHello of %d bytes is too large" % msg_len)
            if len(handshake) >= 4 + msg_len:
                return record_version, handshake[4 : 4 + msg_len]


def read_tls_client(sock):
    record_version, body = read_client_hello(sock)
    hello = parse_client_hello(body)
    ja3_text, ja3_digest = ja3(hello)
    ja4_value, ja4_raw = ja4(hello)
    return {
        "proto": "tls",
        "ja3": ja3_digest,
        "ja3_string": ja3_text,
        "ja4": ja4_value,
        "ja4_r": ja4_raw,
        "record_version": record_version,
        "legacy_version": hello["legacy_version"],
        "supported_versions": hello["supported_versions"],
        "sni": hello["sni"],
        "alpn": [a.decode("ascii", "replace") for a in hello["alpn"]],
    }


# ---------------------------------------------------------------- server


class Recorder:
    def __init__(self, host, ssh_port, tls_port, ssh_banner, max_connections, out):
        ip = ipaddress.ip_address(host)
        if not ip.is_loopback:
            raise SystemExit("recorder: %s is not a loopback address" % host)
        self.host = host
        self.family = socket.AF_INET6 if ip.version == 6 else socket.AF_INET
        self.ssh_banner = ssh_banner
        self.max_connections = max_connections
        self.out = out
        self.lock = threading.Lock()
        self.served = 0
        self.done = threading.Event()
        self.listeners = {}
        if ssh_port is not None:
            self.listeners["ssh"] = self._listen(ssh_port)
        if tls_port is not None:
            self.listeners["tls"] = self._listen(tls_port)
        if not self.listeners:
            raise SystemExit("recorder: give --ssh-port and/or --tls-port")

    def _listen(self, port):
        s = socket.socket(self.family, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((self.host, port))
        s.listen(16)
        return s

    def emit(self, record):
        with self.lock:
            self.out.write(json.dumps(record, sort_keys=True) + "\n")
            self.out.flush()

    def serve(self):
        ports = {
            "%s_port" % proto: s.getsockname()[1] for proto, s in self.listeners.items()
        }
        self.emit(dict(event="listening", host=self.host, **ports))
        for proto, s in self.listeners.items():
            threading.Thread(target=self._accept_loop, args=(proto, s), daemon=True).start()
        self.done.wait()

    def _accept_loop(self, proto, listener):
        while not self.done.is_set():
            conn, peer = listener.accept()
            with self.lock:
                self.served += 1
                last = self.max_connections and self.served >= self.max_connections
            threading.Thread(
                target=self._handle, args=(proto, conn, peer, last), daemon=True
            ).start()

    def _handle(self, proto, conn, peer, last):
        record = {"event": "connection", "proto": proto, "peer": "%s:%d" % peer[:2]}
        conn.settimeout(IO_TIMEOUT_S)
        try:
            if proto == "ssh":
                record.update(read_ssh_client(conn, self.ssh_banner))
            else:
                record.update(read_tls_client(conn))
        except (ProtocolError, OSError) as e:
            record["error"] = "%s: %s" % (type(e).__name__, e)
        finally:
            try:
                conn.close()
            except OSError:
                pass
        self.emit(record)
        if last:
            self.done.set()


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--host", default="127.0.0.1", help="a loopback address")
    p.add_argument("--ssh-port", type=int, help="serve SSH here (0 = any free port)")
    p.add_argument("--tls-port", type=int, help="serve TLS here (0 = any free port)")
    p.add_argument(
        "--ssh-banner",
        default=DEFAULT_SSH_BANNER,
        help="version line the SSH side sends (default %(default)s)",
    )
    p.add_argument(
        "--max-connections",
        type=int,
        default=0,
        help="exit after this many connections (0 = run until killed)",
    )
    args = p.parse_args(argv)
    if not args.ssh_banner.startswith("SSH-2.0-"):
        p.error("--ssh-banner must start with SSH-2.0-")
    rec = Recorder(
        args.host,
        args.ssh_port,
        args.tls_port,
        args.ssh_banner,
        args.max_connections,
        sys.stdout,
    )
    try:
        rec.serve()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
