#!/usr/bin/env python3
"""Write N synthetic catalog items as JSON Lines, for benchmarks.

Titles and bodies are built from the words of the bundled sample catalog, so
the word frequencies (and hence the search work) look like real data; ids are
`gen-0000001` ... so that `get_item` can pick any of them.

    python3 generate.py 1000000 > items-1m.jsonl
"""

import gzip
import json
import random
import re
import sys
from pathlib import Path

SAMPLE = Path(__file__).resolve().parents[2] / "crates/wharf-catalog/data/sample.jsonl.gz"


def main():
    n = int(sys.argv[1])
    rng = random.Random(42)
    words = []
    tags = set()
    with gzip.open(SAMPLE, "rt") as f:
        for line in f:
            item = json.loads(line)
            words.extend(w.lower() for w in re.findall(r"[A-Za-z][A-Za-z0-9]{2,}", item["title"] + " " + item["body"]))
            tags.update(item["tags"])
    tags = sorted(tags)
    out = sys.stdout
    for i in range(1, n + 1):
        title = " ".join(rng.choice(words) for _ in range(rng.randint(2, 6)))
        body = " ".join(rng.choice(words) for _ in range(rng.randint(15, 60)))
        item = {
            "id": f"gen-{i:07d}",
            "title": title,
            "body": body,
            "url": f"https://catalog.example/items/{i}",
            "tags": rng.sample(tags, 2),
            "attributes": {"n": i},
        }
        out.write(json.dumps(item, separators=(",", ":")) + "\n")


if __name__ == "__main__":
    main()
