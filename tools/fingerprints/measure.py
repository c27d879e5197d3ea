#!/usr/bin/env python3
"""Run real SSH and TLS clients against recorder.py and collect their fingerprints.

Every client runs once, in its default configuration, with an empty HOME (no
user configuration, known hosts or keys), against the recorder on loopback:

  SSH  paramiko and asyncssh (PyPI, several pinned versions), libssh (PyPI
       ansible-pylibssh, which bundles its own libssh, and Debian's libssh
       through clients/libssh_client.c), OpenSSH, dropbear's dbclient, PuTTY's
       plink (Debian) and golang.org/x/crypto/ssh (Debian's source, built
       with GOPATH and GO111MODULE=off: clients/gossh).
  TLS  Python requests (PyPI) and urllib (the stdlib of this Python and of
       Debian's python3), curl, wget (Debian), Go net/http (clients/gohttp)
       and Node's https, each twice: to the IP address 127.0.0.1 (no SNI)
       and to the name localhost (SNI), as both reach a honeypot.

Usage:
  measure.py [--workdir DIR] [--results FILE] [--toml FILE] [--markdown FILE]
             [--date YYYY-MM-DD]

--workdir keeps the virtual environments and builds for a later run (default:
a temporary directory, removed at the end). --results writes every record as
JSON, --toml the catalogue (config/tooling.toml), --markdown the table of
results. The exit status is 1 when any client could not be measured; the
catalogue is then not written.

Needs (Debian 12): openssh-client dropbear-bin putty-tools libssh-dev gcc
curl wget golang-go golang-golang-x-crypto-dev, node on PATH, and PyPI
reachable by pip for the pinned Python packages.
"""

import argparse
import datetime
import json
import os
import platform
import queue
import shutil
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
RECORDER = os.path.join(HERE, "recorder.py")
CLIENTS = os.path.join(HERE, "clients")
GOPATH_DEBIAN = "/usr/share/gocode"

RECORD_DEADLINE_S = 20.0
CLIENT_EXIT_DEADLINE_S = 15.0
PREPARE_DEADLINE_S = 600.0

# Python environments: name -> pinned requirements. cryptography is pinned
# too: which algorithms paramiko and asyncssh offer can depend on it.
VENVS = {
    "paramiko-2.12.0": ["paramiko==2.12.0", "cryptography==48.0.1"],
    "paramiko-3.5.1": ["paramiko==3.5.1", "cryptography==48.0.1"],
    "paramiko-4.0.0": ["paramiko==4.0.0", "cryptography==48.0.1"],
    "paramiko-5.1.0": ["paramiko==5.1.0", "cryptography==48.0.1"],
    "asyncssh-2.14.2": ["asyncssh==2.14.2", "cryptography==48.0.1"],
    "asyncssh-2.24.1": ["asyncssh==2.24.1", "cryptography==48.0.1"],
    "pylibssh-1.4.0": ["ansible-pylibssh==1.4.0"],
    "requests-2.34.2": ["requests==2.34.2", "urllib3==2.8.0"],
}

PARAMIKO = """
import sys, paramiko
c = paramiko.SSHClient()
c.set_missing_host_key_policy(paramiko.AutoAddPolicy())
c.connect(sys.argv[1], port=int(sys.argv[2]), username="root", password="fingerprint",
          look_for_keys=False, allow_agent=False, timeout=10, banner_timeout=10)
"""

ASYNCSSH = """
import asyncio, sys, asyncssh
async def main():
    async with asyncssh.connect(sys.argv[1], port=int(sys.argv[2]), username="root",
                                password="fingerprint", known_hosts=None):
        pass
asyncio.run(main())
"""

PYLIBSSH = """
import sys
from pylibsshext.session import Session
s = Session()
s.connect(host=sys.argv[1], port=int(sys.argv[2]), user="root", password="fingerprint",
          timeout=10, host_key_checking=False)
"""

REQUESTS = """
import sys, requests
requests.get(sys.argv[1], timeout=10)
"""

URLLIB = """
import sys, urllib.request
urllib.request.urlopen(sys.argv[1], timeout=10)
"""

NODE = """
const https = require('https');
https.get(process.argv[1], (res) => { res.resume(); })
  .on('error', (e) => { console.error(e.message); process.exit(1); });
"""

VERSION_PY = {
    "paramiko": "import paramiko; print(paramiko.__version__)",
    "asyncssh": "import asyncssh; print(asyncssh.__version__)",
    "pylibssh": "import pylibsshext; print(pylibsshext.__version__, pylibsshext.__libssh_version__)",
    "requests": "import requests, urllib3; print(requests.__version__, urllib3.__version__)",
    "runtime": "import platform, ssl; print(platform.python_version(), ssl.OPENSSL_VERSION)",
}


class Failure(Exception):
    pass


def run(cmd, env=None, deadline=PREPARE_DEADLINE_S, cwd=None):
    try:
        p = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True,
                           timeout=deadline)
    except subprocess.TimeoutExpired:
        raise Failure("%s: still running after %.0f s" % (cmd[0], deadline))
    except FileNotFoundError:
        raise Failure("%s: not found (see the list of Debian packages needed)" % cmd[0])
    if p.returncode != 0:
        raise Failure("%s exited %d: %s" % (" ".join(cmd), p.returncode,
                                            (p.stderr or p.stdout).strip()[-800:]))
    return p.stdout.strip()


def dpkg_version(package):
    try:
        return run(["dpkg-query", "-W", "-f=${Version}", package])
    except Failure:
        raise Failure("Debian package %s is not installed" % package)


def debian_release():
    try:
        with open("/etc/debian_version") as f:
            return "Debian " + f.read().strip()
    except OSError:
        return platform.platform()


class Workdir:
    def __init__(self, path):
        self.path = path
        self.home = os.path.join(path, "home")

    def client_env(self, extra=None):
        """A clean environment: empty HOME, no proxies, no agent."""
        if os.path.isdir(self.home):
            shutil.rmtree(self.home)
        os.makedirs(self.home)
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": self.home,
               "LANG": "C.UTF-8"}
        env.update(extra or {})
        return env

    def venv(self, name):
        """The virtual environment `name` of VENVS, made on first use."""
        pins = VENVS[name]
        d = os.path.join(self.path, "venv-" + name)
        marker = os.path.join(d, "pins.txt")
        python = os.path.join(d, "bin", "python")
        want = "\n".join(pins) + "\n"
        if os.path.exists(marker) and open(marker).read() == want:
            return python
        if os.path.isdir(d):
            shutil.rmtree(d)
        run([sys.executable, "-m", "venv", d])
        run([python, "-m", "pip", "install", "--disable-pip-version-check", "-q"] + pins)
        with open(marker, "w") as f:
            f.write(want)
        return python

    def build_c(self):
        out = os.path.join(self.path, "libssh_client")
        run(["gcc", "-O1", "-o", out, os.path.join(CLIENTS, "libssh_client.c"), "-lssh"])
        return out

    def build_go(self, name, gopath):
        out = os.path.join(self.path, name)
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": self.path,
               "GO111MODULE": "off", "GOPATH": gopath, "GOFLAGS": "",
               "GOCACHE": os.path.join(self.path, "gocache"), "CGO_ENABLED": "0",
               "GOPROXY": "off"}
        run(["go", "build", "-o", out, "."], env=env, cwd=os.path.join(CLIENTS, name))
        return out


class RecorderProcess:
    def __init__(self):
        self.proc = subprocess.Popen(
            [sys.executable, RECORDER, "--ssh-port", "0", "--tls-port", "0"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.lines = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()
        ready = self.next(10.0)
        if ready is None or ready.get("event") != "listening":
            self.stop()
            raise Failure("recorder did not start: %r %s" % (ready, self.proc.stderr.read()))
        self.ssh_port = ready["ssh_port"]
        self.tls_port = ready["tls_port"]

    def _pump(self):
        for line in self.proc.stdout:
            self.lines.put(json.loads(line))

    def next(self, deadline):
        try:
            return self.lines.get(timeout=deadline)
        except queue.Empty:
            return None

    def drain(self):
        while not self.lines.empty():
            self.lines.get_nowait()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def measure_one(recorder, cmd, env):
    """Run one client; return the recorder's record of its connection."""
    recorder.drain()
    client = subprocess.Popen(cmd, env=env, stdin=subprocess.DEVNULL,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    record = recorder.next(RECORD_DEADLINE_S)
    try:
        _, err = client.communicate(timeout=CLIENT_EXIT_DEADLINE_S)
    except subprocess.TimeoutExpired:
        client.kill()
        _, err = client.communicate()
    if record is None:
        raise Failure("no connection recorded within %.0f s; client exited %s: %s"
                      % (RECORD_DEADLINE_S, client.returncode, err.strip()[-500:]))
    if "error" in record:
        raise Failure("recorder: %s" % record["error"])
    record.pop("peer", None)
    record.pop("event", None)
    return record


def clients(work):
    """(client, version thunk, prepare thunk -> argv builder, proto) for every client."""
    out = []

    def py(venv_name, script, what):
        def prepare():
            python = work.venv(venv_name)
            version = run([python, "-c", VERSION_PY[what]])
            runtime = run([python, "-c", VERSION_PY["runtime"]])
            return python, version, runtime
        return prepare

    for name in VENVS:
        lib = name.split("-")[0]
        if lib in ("paramiko", "asyncssh", "pylibssh"):
            script = {"paramiko": PARAMIKO, "asyncssh": ASYNCSSH, "pylibssh": PYLIBSSH}[lib]

            def prep(name=name, lib=lib, script=script):
                python, version, runtime = py(name, script, lib)()
                client = {"pylibssh": "libssh (ansible-pylibssh)"}.get(lib, lib)
                if lib == "pylibssh":
                    pkg, libssh = version.split()
                    cv = "libssh %s (ansible-pylibssh %s)" % (libssh, pkg)
                else:
                    cv = version
                how = "PyPI %s, Python %s" % (" ".join(VENVS[name]), runtime)
                return client, cv, how, lambda port: [python, "-c", script, "127.0.0.1", str(port)]
            prep.__name__ = name
            out.append(("ssh", prep))

    def openssh():
        v = dpkg_version("openssh-client")
        return ("OpenSSH", v, "Debian openssh-client %s, Debian's /etc/ssh/ssh_config" % v,
                lambda port: ["ssh", "-p", str(port), "-o", "BatchMode=yes",
                              "-o", "StrictHostKeyChecking=no", "root@127.0.0.1"])
    out.append(("ssh", openssh))

    def libssh_c():
        v = dpkg_version("libssh-4")
        binary = work.build_c()
        return ("libssh", v, "Debian libssh-4 %s, tools/fingerprints/clients/libssh_client.c" % v,
                lambda port: [binary, "127.0.0.1", str(port)])
    out.append(("ssh", libssh_c))

    def gossh():
        v = dpkg_version("golang-golang-x-crypto-dev")
        go = run(["go", "env", "GOVERSION"])
        binary = work.build_go("gossh", GOPATH_DEBIAN)
        return ("Go x/crypto/ssh", v.split(":")[-1].split("-")[0],
                "Debian golang-golang-x-crypto-dev %s, %s, tools/fingerprints/clients/gossh" % (v, go),
                lambda port: [binary, "127.0.0.1:%d" % port])
    out.append(("ssh", gossh))

    def dropbear():
        v = dpkg_version("dropbear-bin")
        return ("dropbear dbclient", v, "Debian dropbear-bin %s" % v,
                lambda port: ["dbclient", "-y", "-y", "-p", str(port), "root@127.0.0.1"])
    out.append(("ssh", dropbear))

    def plink():
        v = dpkg_version("putty-tools")
        return ("PuTTY plink", v, "Debian putty-tools %s" % v,
                lambda port: ["plink", "-ssh", "-batch", "-P", str(port), "-l", "root",
                              "127.0.0.1"])
    out.append(("ssh", plink))

    def requests_():
        python, version, runtime = py("requests-2.34.2", REQUESTS, "requests")()
        req, u3 = version.split()
        return ("Python requests", req,
                "PyPI requests %s urllib3 %s, Python %s" % (req, u3, runtime),
                lambda url: [python, "-c", REQUESTS, url])
    out.append(("tls", requests_))

    def urllib_this():
        runtime = run([sys.executable, "-c", VERSION_PY["runtime"]])
        pyv = runtime.split()[0]
        return ("Python urllib", pyv, "Python %s stdlib, the Python running measure.py" % runtime,
                lambda url: [sys.executable, "-c", URLLIB, url])
    out.append(("tls", urllib_this))

    def urllib_debian():
        v = dpkg_version("python3.11-minimal")
        runtime = run(["/usr/bin/python3", "-c", VERSION_PY["runtime"]])
        return ("Python urllib", runtime.split()[0],
                "Debian python3.11 %s stdlib (Python %s)" % (v, runtime),
                lambda url: ["/usr/bin/python3", "-c", URLLIB, url])
    out.append(("tls", urllib_debian))

    def curl():
        v = dpkg_version("curl")
        return ("curl", v, "Debian curl %s (%s)" % (v, run(["curl", "--version"]).splitlines()[0]),
                lambda url: ["curl", "-sS", "-o", "/dev/null", "--max-time", "10", url])
    out.append(("tls", curl))

    def wget():
        v = dpkg_version("wget")
        return ("wget", v, "Debian wget %s" % v,
                lambda url: ["wget", "-q", "-O", "/dev/null", "--tries=1", "--timeout=10", url])
    out.append(("tls", wget))

    def gohttp():
        go = run(["go", "env", "GOVERSION"])
        binary = work.build_go("gohttp", GOPATH_DEBIAN)
        return ("Go net/http", go.replace("go", "", 1),
                "Debian golang-go %s (%s), tools/fingerprints/clients/gohttp"
                % (dpkg_version("golang-go"), go),
                lambda url: [binary, url])
    out.append(("tls", gohttp))

    def node():
        v = run(["node", "-p", "process.version + ' ' + process.versions.openssl"])
        nv, ossl = v.split()
        return ("Node https", nv.lstrip("v"), "node %s (OpenSSL %s)" % (nv, ossl),
                lambda url: ["node", "-e", NODE, url])
    out.append(("tls", node))
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--workdir")
    p.add_argument("--results")
    p.add_argument("--toml")
    p.add_argument("--markdown")
    p.add_argument("--date", default=datetime.date.today().isoformat())
    args = p.parse_args(argv)

    tmp = None
    if args.workdir:
        os.makedirs(args.workdir, exist_ok=True)
        work = Workdir(os.path.abspath(args.workdir))
    else:
        tmp = tempfile.mkdtemp(prefix="fingerprints-")
        work = Workdir(tmp)
    system = debian_release()
    results, failures = [], []
    recorder = RecorderProcess()
    try:
        for proto, prepare in clients(work):
            try:
                client, version, how, argv_for = prepare()
            except Failure as e:
                failures.append({"prepare": prepare.__name__, "error": str(e)})
                print("FAIL %s: %s" % (prepare.__name__, e), file=sys.stderr)
                continue
            targets = ([("ip", recorder.ssh_port)] if proto == "ssh" else
                       [("ip", "https://127.0.0.1:%d/" % recorder.tls_port),
                        ("name", "https://localhost:%d/" % recorder.tls_port)])
            for target, arg in targets:
                try:
                    record = measure_one(recorder, argv_for(arg), work.client_env())
                except Failure as e:
                    failures.append({"client": client, "version": version, "target": target,
                                     "error": str(e)})
                    print("FAIL %s %s (%s): %s" % (client, version, target, e), file=sys.stderr)
                    continue
                record.update(client=client, client_version=version, how=how, target=target)
                results.append(record)
                print("ok   %-28s %-28s %s" % (client, version, target), file=sys.stderr)
    finally:
        recorder.stop()
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)

    if args.results:
        with open(args.results, "w") as f:
            json.dump({"system": system, "date": args.date, "results": results,
                       "failures": failures}, f, indent=1, sort_keys=True)
            f.write("\n")
    entries = catalogue_entries(results, system, args.date)
    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write(markdown(entries))
    if failures:
        print("%d client(s) could not be measured; catalogue not written" % len(failures),
              file=sys.stderr)
        return 1
    if args.toml:
        with open(args.toml, "w") as f:
            f.write(toml(entries))
    return 0


def catalogue_entries(results, system, date):
    """One entry per (client, version, kind, value), in measuring order."""
    entries, seen = [], set()

    def add(r, kind, value, target_note):
        key = (r["client"], r["client_version"], kind, value)
        if key in seen:
            return
        seen.add(key)
        entries.append({
            "kind": kind, "value": value, "client": r["client"],
            "client_version": r["client_version"],
            "measured": "tools/fingerprints/measure.py with recorder.py, %s, %s; %s%s"
                        % (system, date, r["how"], target_note),
        })

    for r in results:
        if r["proto"] == "ssh":
            add(r, "hassh", r["hassh"], "")
            add(r, "ssh_client_version", r["ssh_client_version"], "")
        else:
            note = ("; to an IP address (no SNI)" if r["target"] == "ip"
                    else "; to a host name (SNI)")
            add(r, "ja3", r["ja3"], note)
            add(r, "ja3", r["ja3_string"], note + "; JA3 string, unhashed")
            add(r, "ja4", r["ja4"], note)
    return entries


def toml_str(s):
    out = ['"']
    for ch in s:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append("\\u%04x" % ord(ch))
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


TOML_HEADER = """\
# decnet-clusterd: the catalogue of known client-library fingerprints.
#
# A fingerprint value listed here is client tooling, not identity evidence,
# however few observations carry it (SPEC section 8, Rarity); a value not
# listed falls back to the count rule. Every entry was measured by this
# project from the real client named, in its default configuration, with
# tools/fingerprints/measure.py against tools/fingerprints/recorder.py (see
# tools/fingerprints/README.md to re-measure). This file is written by
# measure.py --toml: re-run it rather than editing entries by hand.
#
# kind: hassh | ja3 | ja4 | ssh_client_version. hassh and ja3 values are
# the md5 hex digests; ja3 is listed a second time as its unhashed string,
# since sensors report either form.
#
# Operators can extend the catalogue with a file of their own in the same
# format (their own measurements, or the tools their networks see).

version = 1
"""


def toml(entries):
    parts = [TOML_HEADER]
    for e in entries:
        parts.append("\n[[fingerprint]]\n")
        for key in ("kind", "value", "client", "client_version", "measured"):
            parts.append("%s = %s\n" % (key, toml_str(e[key])))
    return "".join(parts)


def markdown(entries):
    rows = ["| client | version | kind | value |", "|---|---|---|---|"]
    for e in entries:
        if e["measured"].endswith("JA3 string, unhashed"):
            continue
        target = ""
        if e["kind"] in ("ja3", "ja4"):
            target = " (no SNI)" if "no SNI" in e["measured"] else " (SNI)"
        rows.append("| %s | %s | %s%s | `%s` |" % (e["client"], e["client_version"],
                                                   e["kind"], target, e["value"]))
    return "\n".join(rows) + "\n"


if __name__ == "__main__":
    sys.exit(main())
