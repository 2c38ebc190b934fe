#!/usr/bin/env python3
"""Build sample.jsonl.gz, the catalog `wharf serve` loads into an empty database.

Source: MDN browser-compat-data (npm package @mdn/browser-compat-data, CC0-1.0):
one item per web platform feature that has an MDN page. Usage:

    npm install --prefix /tmp/bcd @mdn/browser-compat-data@8.1.9
    python3 make_sample.py /tmp/bcd/node_modules/@mdn/browser-compat-data/data.json | gzip -9n > sample.jsonl.gz
"""

import html
import json
import re
import sys

CATEGORIES = {
    "api": "Web API",
    "css": "CSS",
    "html": "HTML",
    "http": "HTTP",
    "javascript": "JavaScript",
    "svg": "SVG",
    "webassembly": "WebAssembly",
    "webextensions": "WebExtensions",
    "mathml": "MathML",
    "manifests": "Web app manifest",
}
BROWSERS = {"chrome": "Chrome", "firefox": "Firefox", "safari": "Safari", "edge": "Edge"}


def plain(text: str) -> str:
    return html.unescape(re.sub(r"<[^>]+>", "", text or "")).strip()


def split_words(identifier: str) -> str:
    """`AbortSignal` -> `Abort Signal`, `grid-template-columns` -> `grid template columns`,
    so that a search for the words finds the identifier."""
    spaced = re.sub(r"(?<=[a-z0-9])(?=[A-Z])|[-_]", " ", identifier)
    return re.sub(r"\s+", " ", spaced).strip()


def since(support: dict, browser: str):
    s = support.get(browser)
    if isinstance(s, list):
        s = s[0] if s else None
    if not isinstance(s, dict):
        return None
    v = s.get("version_added")
    return v if isinstance(v, str) and v else None


def items(data: dict):
    def walk(node: dict, path: list):
        for key, value in sorted(node.items()):
            if key == "__compat":
                compat = value
                url = compat.get("mdn_url")
                if not url:
                    continue
                yield make(path, compat, url)
            elif isinstance(value, dict):
                yield from walk(value, path + [key])

    for category in CATEGORIES:
        yield from walk(data.get(category, {}), [category])


def make(path: list, compat: dict, url: str) -> dict:
    category = path[0]
    name = path[-1].replace("_", " ")
    description = plain(compat.get("description", ""))
    parent = path[-2] if len(path) > 2 else None
    title = description or name
    if parent and parent not in CATEGORIES:
        title = f"{parent}: {title}"
    status = compat.get("status", {})
    tags = [category]
    for flag in ("deprecated", "experimental"):
        if status.get(flag):
            tags.append(flag)
    if status.get("standard_track"):
        tags.append("standard")
    support = compat.get("support", {})
    versions = {b: since(support, b) for b in BROWSERS}
    supported = [f"{BROWSERS[b]} {v}" for b, v in versions.items() if v and v not in ("preview",)]
    spec = compat.get("spec_url")
    specs = spec if isinstance(spec, list) else ([spec] if spec else [])
    sentences = [
        f"{description or name} is part of {CATEGORIES[category]}"
        + (f", in {'.'.join(path[1:-1])}" if len(path) > 2 else "")
        + ".",
    ]
    if status.get("deprecated"):
        sentences.append("It is deprecated: avoid it in new code.")
    if status.get("experimental"):
        sentences.append("It is experimental and may change.")
    sentences.append(f"Supported in {', '.join(supported)}." if supported else "Not supported by the major browsers.")
    words = " ".join(split_words(p) for p in path[1:])
    if words.lower() != (description or name).lower():
        sentences.append(f"Words: {words}.")
    if specs:
        hosts = sorted({re.sub(r"^https?://([^/]+)/.*$", r"\1", s) for s in specs})
        sentences.append(f"Specified at {', '.join(hosts)}.")
    return {
        "id": ".".join(path),
        "title": title,
        "body": " ".join(sentences),
        "url": url,
        "tags": tags,
        "attributes": {
            "category": category,
            "support": {b: v for b, v in versions.items() if v},
            "spec_urls": specs,
            "deprecated": bool(status.get("deprecated")),
            "experimental": bool(status.get("experimental")),
        },
    }


def main():
    data = json.load(open(sys.argv[1]))
    for item in items(data):
        print(json.dumps(item, ensure_ascii=False, sort_keys=True))


if __name__ == "__main__":
    main()
