#!/usr/bin/env python3
"""What an audit event would weigh stored in bundles, before bundles exist (issue 17).

Usage: pip install zstandard && python3 bench/audit_bundle_sizes.py [EVENTS]

Packs EVENTS (default 25,600) events of bench/audit_dictionary.py's generator (Ward's
canonical event JSON, fresh random ids) with Ward's shipped dictionary (dictionary 1) and
zstd level 3, as Ward packs one event today and as bundles of 16, 64 and 256 events would
(each event length-prefixed), once as JSON and once with its ids and client hash as raw bytes
(what a binary encoding would store). Prints bytes per event of the compressed data alone:
a chain value, row headers and any index come on top. Figures go to BENCHMARKS.md "What a
bundle can weigh".
"""
import re
import sys
from pathlib import Path

import zstandard

sys.path.insert(0, str(Path(__file__).resolve().parent))
import audit_dictionary  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
UUID = rb'"([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})"'
HEX128 = rb'"([0-9a-f]{32})"'


def raw_ids(event):
    """The event with every id and the client hash as 16 raw bytes instead of hex text."""
    raw = lambda m: b'"' + bytes.fromhex(m.group(1).decode().replace("-", "")) + b'"'
    return re.sub(HEX128, raw, re.sub(UUID, raw, event))


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 25_600
    # Past the events the dictionary was trained on.
    events = [audit_dictionary.event(i) for i in range(1_000_000, 1_000_000 + n)]
    dictionary = zstandard.ZstdCompressionDict(
        (ROOT / "crates/store/src/audit_codec/dictionary-1.zdict").read_bytes())
    c = zstandard.ZstdCompressor(level=3, dict_data=dictionary, write_checksum=False,
                                 write_dict_id=False)
    print(f"{n} events, {sum(map(len, events)) / n:.0f} canonical bytes an event")
    print(f"one event a frame (as stored today): {sum(len(c.compress(e)) + 1 for e in events) / n:.1f} bytes an event")
    for size in (16, 64, 256):
        for name, form in (("JSON", lambda e: e), ("raw ids", raw_ids)):
            total = 0
            for i in range(0, n, size):
                bundle = b"".join(len(form(e)).to_bytes(2, "little") + form(e)
                                  for e in events[i:i + size])
                total += len(c.compress(bundle))
            print(f"bundle of {size:>3}, {name:<7}: {total / n:6.1f} bytes an event")


if __name__ == "__main__":
    main()
