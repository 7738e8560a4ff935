"""``/api/v1/log/…``: the transparency log, public (no key). Hashes and leaves are standard
base64; refusals are 4xx error objects."""

import base64

from flask import jsonify, request, url_for
from flask_babel import gettext as _

from portal.api.views import api_error, bp
from portal.certificates import numbers
from portal.certificates import services as certificates
from portal.core.guard import public
from portal.extensions import db
from portal.transparency import services


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _no_head():
    return api_error(404, "no_tree_head", _("The log has no signed tree head yet."))


@bp.get("/log/tree-head")
@public
def log_tree_head():
    head = services.latest_head()
    if head is None:
        return _no_head()
    return services.head_json(head)


@bp.get("/log/tree-heads")
@public
def log_tree_heads():
    after = services.parse_size(request.args.get("after"), "after", required=False)
    heads = services.heads_after(after)
    return {
        "tree_heads": [services.head_json(h) for h in heads],
        "more": len(heads) == services.PAGE_LIMIT,
    }


def entry_json(entry) -> dict:
    return {
        "leaf_index": entry.leaf_index,
        "kind": entry.kind,
        "certificate": entry.certificate_number,
        "logged_at": entry.logged_at.isoformat(),
        "leaf_input": _b64(bytes(entry.leaf_input)),
    }


@bp.get("/log/entries")
@public
def log_entries():
    start = services.parse_size(request.args.get("start"), "start", required=False) or 0
    end = services.parse_size(request.args.get("end"), "end", required=False)
    found, size = services.entries(start, end)
    return {
        "start": start,
        "end": start + len(found),
        "tree_size": size,
        "entries": [entry_json(e) for e in found],
    }


@bp.get("/log/proof/inclusion")
@public
def log_inclusion_proof():
    text = request.args.get("certificate", "")
    size = services.parse_size(request.args.get("tree_size"), "tree_size", required=False, minimum=1)
    number = numbers.normalise(text) if isinstance(text, str) and len(text) <= 40 else None
    head = None
    if size is None:
        head = services.latest_head()
        size = head.tree_size if head is not None else 0
    events, paths = services.certificate_proofs(number, max(size, 1)) if number is not None else ([], [])
    if not events:
        try:
            found = certificates.look_up(text[:40], request.remote_addr or "unknown")
        except certificates.LookupRefused:
            db.session.commit()  # the failed look-up is counted even though the answer is an error
            return api_error(
                429, "too_many_lookups", _("Too many look-ups of unknown numbers. Please wait a few minutes.")
            )
        db.session.commit()
        if found is None:
            return api_error(404, "unknown_certificate", _("No certificate has this number."))
        return api_error(404, "not_logged", _("This certificate is not in the log yet."))
    covered = [e for e in events if e.leaf_index < size]
    if head is not None or size == 0:
        if not covered:
            response = api_error(
                409,
                "not_yet_signed",
                _(
                    "This certificate was logged at index %(index)s; the signed tree head that includes it "
                    "is published within a minute. Please try again shortly.",
                    index=events[0].leaf_index,
                ),
            )
            return response[0], response[1], {"Retry-After": "30"}
    elif not covered:
        raise services.LogError(
            "leaf_not_in_tree",
            _("Entry %(index)s is not in a tree of %(size)s entries.", index=events[0].leaf_index, size=size),
            field="tree_size",
        )
    listed = [
        {**entry_json(e), "audit_path": [_b64(h) for h in path]}
        for e, path in zip(covered, paths, strict=True)
    ]
    body = {
        "certificate": number,
        "tree_size": size,
        "leaf_index": covered[0].leaf_index,
        "audit_path": listed[0]["audit_path"],
        "entries": listed,
    }
    if head is not None:
        body["tree_head"] = services.head_json(head)
    return _cacheable(jsonify(body), fixed=head is None)


def _cacheable(response, *, fixed: bool):
    """A proof for sizes the client named never changes: shared caches may keep it for good.
    One for the latest signed tree head changes with the next head: kept only if revalidated
    (its ETag makes that a 304 when nothing changed)."""
    response.headers["Cache-Control"] = "public, max-age=31536000, immutable" if fixed else "no-cache"
    response.add_etag()
    return response.make_conditional(request) if request.if_none_match else response


@bp.get("/log/proof/consistency")
@public
def log_consistency_proof():
    first = services.parse_size(request.args.get("first"), "first", minimum=1)
    second = services.parse_size(request.args.get("second"), "second", required=False, minimum=1)
    fixed = second is not None
    if second is None:
        head = services.latest_head()
        if head is None:
            return _no_head()
        second = head.tree_size
    proof = [_b64(h) for h in services.consistency(first, second)]
    return _cacheable(jsonify({"first": first, "second": second, "proof": proof}), fixed=fixed)


def proof_url(number: str) -> str:
    return url_for("api.log_inclusion_proof", certificate=number)
