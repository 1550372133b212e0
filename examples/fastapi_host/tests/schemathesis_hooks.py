"""A check that schemathesis runs beside its own (loaded through ``SCHEMATHESIS_HOOKS`` by
test_schemathesis.py's full run).

The document states the engine's rules on every value, so a request it admits (positive data) is
never refused as invalid. One refusal of the engine is about data the document cannot state: an
amount below the fund's minimum (``BELOW_MINIMUM``, 422), which the store holds and an admin
changes; and one is about two values the document cannot relate: a statement's ``from`` after its
``to`` (``VALIDATION_ERROR`` on ``from``). schemathesis's ``positive_data_acceptance`` is told to let 422 through
(schemathesis.toml), and this check refuses every 422 to positive data but that one.
"""

from __future__ import annotations

from typing import Any

import schemathesis

#: The engine's 422 to a well-formed request: about the store's data, not the request's form.
DATA_REFUSALS = frozenset({"BELOW_MINIMUM"})
#: The engine's 422 about how two values of a request relate, which the document cannot state
#: (each value's schema is independent): (path, the field named) — a statement's `from` after
#: its `to`.
RELATION_REFUSALS = frozenset({("/clients/{client_id}/statement", "from")})


@schemathesis.check
def only_the_funds_minimum_refuses_what_the_document_admits(ctx: Any, response: Any, case: Any) -> bool | None:
    """A 422 to a request generated from the document (positive data) is ``BELOW_MINIMUM``."""
    meta = case.meta
    if meta is None or not meta.generation.mode.is_positive or response.status_code != 422:
        return None
    body = response.json()
    if body.get("code") in DATA_REFUSALS and body.get("errors") is None:
        return None
    errors = body.get("errors")
    if (
        body.get("code") == "VALIDATION_ERROR"
        and isinstance(errors, dict)
        and len(errors) == 1
        and (case.path, next(iter(errors))) in RELATION_REFUSALS
    ):
        return None
    raise AssertionError(f"a request the document admits was refused as invalid: {body}")
