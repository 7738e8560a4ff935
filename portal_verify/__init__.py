"""portal-verify: an independent check of the Chifeng carbon-sink portal's certificates and of
its public transparency log.

It depends on nothing but the ``cryptography`` package and Python's standard library, and
imports nothing from the portal, so that anyone can read this one file and run it:

    portal-verify check CFC-2026-XXXX-XXXX --url https://portal.example [--since HEAD.json] [--save DIR]
    portal-verify check CFC-2026-XXXX-XXXX --offline DIR [--since HEAD.json]
    portal-verify monitor https://portal.example --state STATE.json

``check`` verifies a certificate's Ed25519 signature, its inclusion in the log under a signed
tree head, and — given a tree head saved earlier — that the log was only appended to since.
``monitor`` downloads the entries added since its last run, recomputes the root and checks every
tree head signed meanwhile. Every failure is one line starting ``FAIL:``; the exit status is 1
if anything failed, 0 otherwise.

The log (RFC 9162): a leaf is SHA-256(0x00 ‖ data), a node SHA-256(0x01 ‖ left ‖ right). A tree
head's signature is over the ASCII text
``"chifeng-carbon-portal transparency log tree head v1\\n<size>\\n<base64 root>\\n<ms>\\n"``.
"""

import argparse
import base64
import binascii
import hashlib
import json
import sys
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

HEAD_TITLE = "chifeng-carbon-portal transparency log tree head v1"
PAGE = 1000


# --- RFC 9162 ------------------------------------------------------------------------------------


def leaf_hash(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def verify_inclusion(leaf: bytes, index: int, size: int, proof: list[bytes], root: bytes) -> bool:
    """RFC 9162 §2.1.3.2: whether ``proof`` proves leaf hash ``leaf`` at ``index`` in the tree
    of ``size`` leaves with ``root``."""
    if not 0 <= index < size:
        return False
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root


def verify_consistency(
    first: int, second: int, first_root: bytes, second_root: bytes, proof: list[bytes]
) -> bool:
    """RFC 9162 §2.1.4.2: whether ``proof`` shows the tree of ``second`` leaves with
    ``second_root`` extends the tree of ``first`` leaves with ``first_root``."""
    if first == second:
        return not proof and first_root == second_root
    if not 0 < first < second or not proof:
        return False
    path = list(proof)
    if first & (first - 1) == 0:  # a power of two: the first tree is a subtree of the second
        path.insert(0, first_root)
    fn, sn = first - 1, second - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    return fr == first_root and sr == second_root and sn == 0


class Frontier:
    """The tree's right edge: the roots of the perfect subtrees of its size's binary
    decomposition, largest first. Enough to append leaves and compute the root."""

    def __init__(self, size: int = 0, hashes: list[bytes] | None = None):
        self.size = size
        self.hashes = list(hashes or [])

    def add(self, leaf: bytes) -> None:
        node, level = leaf, 0
        while self.size >> level & 1:
            node = node_hash(self.hashes.pop(), node)
            level += 1
        self.hashes.append(node)
        self.size += 1

    def root(self) -> bytes:
        if not self.hashes:
            return hashlib.sha256(b"").digest()
        root = self.hashes[-1]
        for left in reversed(self.hashes[:-1]):
            root = node_hash(left, root)
        return root


# --- what the portal publishes -------------------------------------------------------------------


class Failure(Exception):
    """One failed check, explained in one line."""


def b64(text) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, TypeError, ValueError):
        raise Failure(f"not base64: {str(text)[:40]!r}") from None


def load_keys(document) -> dict[str, Ed25519PublicKey]:
    try:
        return {
            k["key_id"]: Ed25519PublicKey.from_public_bytes(b64(k["public_key"])) for k in document["keys"]
        }
    except (KeyError, TypeError, ValueError) as exc:
        raise Failure(f"the signing keys are not readable ({exc})") from None


def signed(keys, text: str, signature: dict) -> bool:
    try:
        key = keys.get(signature["key_id"])
        if key is None or signature.get("alg") != "Ed25519":
            return False
        key.verify(b64(signature["value"]), text.encode("utf-8"))
        return True
    except (InvalidSignature, Failure, KeyError, TypeError, AttributeError):
        return False


def head_message(head) -> str:
    return f"{HEAD_TITLE}\n{head['tree_size']}\n{head['root_hash']}\n{head['timestamp']}\n"


def check_head(keys, head, what="tree head") -> None:
    try:
        size, timestamp = head["tree_size"], head["timestamp"]
        if (
            type(size) is not int
            or type(timestamp) is not int
            or size < 0
            or len(b64(head["root_hash"])) != 32
        ):
            raise Failure(f"the {what} is malformed")
    except (KeyError, TypeError, Failure):
        raise Failure(f"the {what} is malformed") from None
    if not signed(keys, head_message(head), head.get("signature") or {}):
        raise Failure(f"the {what} of size {size} is not signed by a published portal key")


def read_leaf(keys, data: bytes, index: int) -> dict:
    """A leaf's content, after checking its own signature."""
    try:
        leaf = json.loads(data.decode("utf-8"))
        statement = leaf["statement"]
        ok = leaf.get("v") == 1 and isinstance(statement, str) and isinstance(leaf["certificate"], str)
    except (ValueError, KeyError, TypeError, UnicodeDecodeError):
        raise Failure(f"log entry {index} is not a well-formed entry") from None
    if not ok:
        raise Failure(f"log entry {index} is not a well-formed entry")
    if not signed(keys, statement, leaf.get("signature") or {}):
        raise Failure(f"log entry {index}: its statement is not signed by a published portal key")
    return leaf


class Source:
    """The portal over HTTP, optionally saving what it reads; or a folder of saved answers."""

    def __init__(self, url: str | None = None, offline: Path | None = None, save: Path | None = None):
        self.url, self.offline, self.save = (url or "").rstrip("/"), offline, save

    def get(self, path: str, params: dict | None = None, name: str | None = None):
        if self.offline is not None:
            file = self.offline / name
            try:
                return json.loads(file.read_text(encoding="utf-8"))
            except (OSError, ValueError) as exc:
                raise Failure(f"cannot read {file} ({exc.__class__.__name__})") from None
        query = ("?" + urllib.parse.urlencode(params)) if params else ""
        address = f"{self.url}/api/v1{path}{query}"
        try:
            with urllib.request.urlopen(address, timeout=60) as response:
                document = json.loads(response.read())
        except urllib.error.HTTPError as exc:
            try:
                error = json.loads(exc.read())["error"]
                detail = f"{error['code']}: {error['message']}"
            except (ValueError, KeyError, TypeError):
                detail = exc.reason
            raise Failure(f"{address} answered {exc.code} ({detail})") from None
        except (urllib.error.URLError, OSError, ValueError) as exc:
            raise Failure(f"cannot read {address} ({exc})") from None
        if self.save is not None and name:
            self.save.mkdir(parents=True, exist_ok=True)
            (self.save / name).write_text(
                json.dumps(document, ensure_ascii=False, indent=1), encoding="utf-8"
            )
        return document


# --- check -------------------------------------------------------------------------------------


def check(number: str, source: Source, since: Path | None, say) -> list[str]:
    """Check one certificate; the failures (none: all good)."""
    failures = []
    keys = load_keys(source.get("/signing-keys", name="keys.json"))
    certificate = source.get(f"/certificates/{urllib.parse.quote(number)}", name="certificate.json")
    payload, signature = certificate.get("payload"), certificate.get("signature") or {}
    if not isinstance(payload, str) or not signed(keys, payload, signature):
        failures.append(f"certificate {number}: its Ed25519 signature does not verify")
    else:
        try:
            named = json.loads(payload).get("number")
        except (ValueError, AttributeError):
            named = None
        if named != number:
            failures.append(f"certificate {number}: the signed payload is for {named!r}")
        else:
            say(f"ok: certificate {number} is signed by the portal's key {signature.get('key_id')}")
    head = source.get("/log/tree-head", name="tree-head.json")
    check_head(keys, head)
    size, root = head["tree_size"], b64(head["root_hash"])
    say(f"ok: tree head of size {size} is signed by the portal")
    proof = source.get(
        "/log/proof/inclusion", {"certificate": number, "tree_size": size}, name="inclusion.json"
    )
    entries = proof.get("entries") or []
    if proof.get("tree_size") != size or not entries or entries[0].get("kind") != "issuance":
        failures.append(f"certificate {number}: the log shows no issuance under the tree head of size {size}")
    for entry in entries:
        index = entry.get("leaf_index")
        try:
            data = b64(entry.get("leaf_input"))
            leaf = read_leaf(keys, data, index)
            path = [b64(p) for p in entry.get("audit_path") or []]
        except Failure as exc:
            failures.append(str(exc))
            continue
        if leaf["certificate"] != number or leaf.get("kind") != entry.get("kind"):
            failures.append(f"log entry {index} is about {leaf['certificate']}, not {number}")
        elif leaf["kind"] == "issuance" and (leaf["statement"] != payload or leaf["signature"] != signature):
            failures.append(f"log entry {index} logs a different certificate {number} from the one served")
        elif type(index) is not int or not verify_inclusion(leaf_hash(data), index, size, path, root):
            failures.append(f"log entry {index} ({entry.get('kind')}): the inclusion proof does not verify")
        else:
            say(
                f"ok: {leaf['kind']} of {number} logged at index {index}, included in the tree of size {size}"
            )
    if certificate.get("status") == "revoked" and not any(e.get("kind") == "revocation" for e in entries):
        say(f"note: the revocation of {number} is not yet under the tree head of size {size}")
    if since is not None:
        try:
            earlier = json.loads(since.read_text(encoding="utf-8"))
            earlier = earlier.get("tree_head", earlier)  # a monitor's state file holds one too
        except (OSError, ValueError, AttributeError) as exc:
            raise Failure(f"cannot read the earlier tree head {since} ({exc.__class__.__name__})") from None
        check_head(keys, earlier, "earlier tree head")
        failures += consistent(source, earlier, head, say)
    return failures


def consistent(source: Source, earlier, later, say) -> list[str]:
    first, second = earlier["tree_size"], later["tree_size"]
    if second < first:
        return [f"the log shrank: a tree head of size {second} after one of size {first}"]
    if first == 0:
        say("ok: the earlier tree was empty: anything extends it")
        return []
    if first == second:
        if earlier["root_hash"] != later["root_hash"]:
            return [f"two signed tree heads of size {first} with different roots: the log was rewritten"]
        return []
    proof = source.get("/log/proof/consistency", {"first": first, "second": second}, name="consistency.json")
    path = [b64(p) for p in proof.get("proof") or []]
    if not verify_consistency(first, second, b64(earlier["root_hash"]), b64(later["root_hash"]), path):
        return [
            f"the tree of size {second} does not extend the tree of size {first}: the log was not only appended to"
        ]
    say(f"ok: the tree of size {second} extends the tree of size {first} (consistency proof verified)")
    return []


# --- monitor ------------------------------------------------------------------------------------


def monitor(source: Source, state_file: Path, say) -> list[str]:
    """Follow the log from the state saved last time; the failures (the state is saved only when
    there are none)."""
    keys = load_keys(source.get("/signing-keys"))
    state = None
    if state_file.exists():
        try:
            state = json.loads(state_file.read_text(encoding="utf-8"))
            frontier = Frontier(state["tree_size"], [b64(h) for h in state["frontier"]])
            seen = state["tree_head"]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise Failure(f"cannot read the state file {state_file} ({exc.__class__.__name__})") from None
    else:
        frontier, seen = Frontier(), None
    latest = source.get("/log/tree-head")
    check_head(keys, latest, "latest tree head")
    failures = []
    if seen is not None:
        if latest["tree_size"] < seen["tree_size"]:
            return [
                f"the log shrank: its tree head is of size {latest['tree_size']}, it was {seen['tree_size']}"
            ]
        if latest["timestamp"] < seen["timestamp"]:
            failures.append("the latest tree head is older than the one seen last time")
    heads, after, previous = {}, (seen["tree_size"] if seen else None), seen
    while True:
        page = source.get("/log/tree-heads", {} if after is None else {"after": after})
        for head in page.get("tree_heads") or []:
            check_head(keys, head)
            if previous is not None and (
                head["tree_size"] <= previous["tree_size"] or head["timestamp"] < previous["timestamp"]
            ):
                failures.append(
                    f"tree head of size {head['tree_size']} does not follow the one of size {previous['tree_size']}"
                )
            if head["tree_size"] <= latest["tree_size"]:
                heads[head["tree_size"]] = head
            previous = after_head = head
        if not page.get("more") or not page.get("tree_heads"):
            break
        after = after_head["tree_size"]
    start, end = frontier.size, latest["tree_size"]
    if seen is None and 0 in heads:
        failures += _root_matches(heads[0], frontier)
    while start < end:
        page = source.get("/log/entries", {"start": start, "end": end})
        entries = page.get("entries") or []
        if not entries:
            return [*failures, f"the log served no entries from {start} though its tree head has {end}"]
        for entry in entries:
            if entry.get("leaf_index") != frontier.size:
                return [
                    *failures,
                    f"log entry {frontier.size} is missing (the log served {entry.get('leaf_index')} instead)",
                ]
            data = b64(entry.get("leaf_input"))
            try:
                read_leaf(keys, data, frontier.size)
            except Failure as exc:
                failures.append(str(exc))
            frontier.add(leaf_hash(data))
            if frontier.size in heads:
                failures += _root_matches(heads[frontier.size], frontier)
        start = frontier.size
    if frontier.root() != b64(latest["root_hash"]):
        failures.append(
            f"the entries do not give the signed root of size {end}: an entry was changed or removed"
        )
    if seen is not None and not failures:
        failures += consistent(source, seen, latest, say)
    if failures:
        return failures
    state_file.write_text(
        json.dumps(
            {
                "url": source.url,
                "tree_size": frontier.size,
                "frontier": [base64.b64encode(h).decode("ascii") for h in frontier.hashes],
                "tree_head": latest,
            },
            indent=1,
        ),
        encoding="utf-8",
    )
    say(
        f"ok: {end - (seen['tree_size'] if seen else 0)} new entries; {len(heads)} tree head(s) checked; "
        f"the tree of size {end} has the signed root {latest['root_hash']}"
    )
    return []


def _root_matches(head, frontier: Frontier) -> list[str]:
    if frontier.root() != b64(head["root_hash"]):
        return [f"tree head of size {head['tree_size']}: its root is not the root of the entries served"]
    return []


# --- command line -------------------------------------------------------------------------------


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="portal-verify", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    check_parser = commands.add_parser("check", help="check one certificate and its place in the log")
    check_parser.add_argument("number", help="the certificate number, e.g. CFC-2026-7K3Q-9XHD")
    where = check_parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--url", help="the portal's address, e.g. https://portal.example")
    where.add_argument("--offline", type=Path, help="a folder saved earlier with --save")
    check_parser.add_argument(
        "--since", type=Path, help="a tree head (JSON) saved earlier: check the log only grew"
    )
    check_parser.add_argument("--save", type=Path, help="save what was read into this folder (for --offline)")
    monitor_parser = commands.add_parser("monitor", help="follow the log: new entries and tree heads")
    monitor_parser.add_argument("url", help="the portal's address")
    monitor_parser.add_argument(
        "--state", type=Path, required=True, help="where the last verified state is kept"
    )
    args = parser.parse_args(argv)

    def say(line):
        print(line, flush=True)

    try:
        if args.command == "check":
            source = Source(args.url, args.offline, args.save)
            failures = check(args.number.strip().upper(), source, args.since, say)
        else:
            failures = monitor(Source(args.url), args.state, say)
    except Failure as exc:
        failures = [str(exc)]
    for failure in failures:
        print(f"FAIL: {failure}", file=sys.stderr, flush=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
