"""Irreversible actions ask first.

A form for such an action (retire, deliver, revoke, terminate, delete, suspend, bar …) posts as
usual; the view checks what was asked (refusing bad input on the form's own page), and unless the
request carries the confirmation it answers with a page, drawn by the server, that says what will
happen and posts the same fields again with the confirmation added. Nothing changes before that
second request, and no JavaScript is needed.
"""

from flask import render_template, request

#: The field a confirmation page adds to the form it posts again.
FIELD = "confirm"
VALUE = "yes"


def confirmed() -> bool:
    """Whether this request is the confirmed one."""
    return request.form.get(FIELD) == VALUE


def ask(
    *,
    title: str,
    consequences: list[str],
    button: str,
    back: str,
    facts: list[tuple[str, str]] = (),
    irreversible: bool = True,
    action: str | None = None,
):
    """The confirmation page for the form being posted: ``consequences`` say what will happen,
    ``facts`` what was asked for; ``button`` does it (posting the same fields to ``action``,
    this request's URL by default), ``back`` is where cancelling goes."""
    fields = [(k, v) for k, v in request.form.items(multi=True) if k not in (FIELD, "csrf_token")]
    return render_template(
        "confirm.html",
        title=title,
        consequences=consequences,
        facts=list(facts),
        button=button,
        back=back,
        irreversible=irreversible,
        action=action or request.full_path.rstrip("?"),
        fields=fields,
        confirm_field=FIELD,
        confirm_value=VALUE,
    )
