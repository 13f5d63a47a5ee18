#!/usr/bin/env python3
"""Trains the zstd dictionary Ward stores audit events with (crates/store/src/audit_codec/).

Usage: pip install zstandard && python3 bench/audit_dictionary.py OUT.zdict

The samples are events shaped exactly like Ward's canonical event JSON (the field order of
ward_audit::AuditEvent, RFC 3339 times with nanoseconds, fresh random ids where Ward's are
random), over every action and outcome named in crates/audit/src/event.rs and the purposes
and collections of examples/saas-policy.toml, weighted like a read-heavy service: record
reads dominate, then writes, lookups and denials. A dictionary holds what repeats between
events (keys, names, id prefixes), never the random parts, so what it is trained on matters
only for ratio, not for correctness: a shipped dictionary never changes (a new one is a new
format byte), and any event, of any shape, still round-trips.
"""
import json, random, re, sys, time, uuid
from pathlib import Path

import zstandard

ROOT = Path(__file__).resolve().parent.parent
EVENT_RS = (ROOT / "crates/audit/src/event.rs").read_text()
POLICY = (ROOT / "examples/saas-policy.toml").read_text()

ACTIONS = sorted(set(re.findall(r'=> "([a-z_]+)"', EVENT_RS)) - {"allowed", "denied"})
PURPOSES = sorted(set(re.findall(r'"((?:essential|marketing|analytics|functional|personalize|employment|system)[a-z_.]*)"', POLICY)))
COLLECTIONS = sorted(set(re.findall(r"^\[collections\.([a-z_]+)\]$", POLICY, re.M)))
ROLES = ["member", "admin", "owner", "auditor", "support"]
ACTOR_KINDS = ["key", "key", "key", "user", "credential", "operator"]
WEIGHTED = ["record_read"] * 12 + ["record_create"] * 3 + ["record_update"] * 2 + [
    "record_list", "lookup", "subject_lookup", "subject_create", "subject_export", "authenticate"]

rng = random.Random(17)
tenants = [uuid.UUID(int=rng.getrandbits(128), version=4) for _ in range(20)]
keys = [uuid.UUID(int=rng.getrandbits(128), version=4) for _ in range(40)]


def rid():
    return uuid.UUID(int=rng.getrandbits(128), version=4)


def event(i):
    action = rng.choice(WEIGHTED) if rng.random() < 0.85 else rng.choice(ACTIONS)
    t = 1_796_000_000 + i * 0.013 + rng.random()
    at = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + (".%09d" % rng.randrange(10**9)).rstrip("0") + "Z"
    e = {"at": at, "request_id": str(rid())}
    e["actor"] = {"id": f"{rng.choice(ACTOR_KINDS)}:{rng.choice(keys)}", "role": rng.choice(ROLES)}
    if action != "authenticate" or rng.random() < 0.5:
        e["tenant"] = str(rng.choice(tenants))
    if action.startswith(("record", "subject", "lookup")):
        e["subject"] = str(rid())
        if action.startswith("record") and action != "record_list":
            e["record"] = str(rid())
        e["collection"] = rng.choice(COLLECTIONS)
        if action in ("record_read", "record_list", "lookup", "subject_lookup", "subject_export"):
            e["purpose"] = rng.choice(PURPOSES)
    e["action"] = action
    denied = rng.random() < 0.08
    e["outcome"] = "denied" if denied else "allowed"
    if denied:
        e["reason"] = rng.choice([
            f"purpose {e.get('purpose', 'marketing.communications.email')} is not allowed for collection {e.get('collection', 'contact')}",
            "the api key lacks the permission for this action",
            "the subject is restricted",
            "invalid credentials",
        ])
    if rng.random() < 0.9:
        e["client"] = "%032x" % rng.getrandbits(128)
    if action in ("record_list", "subject_export", "subject_erase", "retention_run"):
        e["detail"] = {"records": rng.randrange(1, 500)}
    return json.dumps(e, separators=(",", ":")).encode()


def main():
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "dictionary.zdict")
    samples = [event(i) for i in range(50_000)]
    d = zstandard.train_dictionary(4096, samples, threads=1, steps=40)
    out.write_bytes(d.as_bytes())
    check = [event(i) for i in range(10_000)]
    c = zstandard.ZstdCompressor(level=3, dict_data=d, write_checksum=False, write_dict_id=False)
    packed = sum(len(c.compress(e)) + 1 for e in check)
    print(f"{out}: {len(d.as_bytes())} bytes; {sum(map(len, check)) / len(check):.0f} bytes an event "
          f"-> {packed / len(check):.0f} packed, {len(ACTIONS)} actions, {len(PURPOSES)} purposes")


if __name__ == "__main__":
    main()
