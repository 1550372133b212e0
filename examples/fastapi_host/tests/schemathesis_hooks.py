"""A check that schemathesis runs beside its own (loaded through ``SCHEMATHESIS_HOOKS`` by
test_schemathesis.py).

The request models check only types and size caps, and the engine decides every value; the
document admits any value of the right type where ``fundcore`` exposes no rule to state. So a
request the document admits may be refused with 422, and schemathesis's
``positive_data_acceptance`` is told to accept 422 (schemathesis.toml). What it no longer checks,
this does: such a 422 is the engine's refusal of a value, never the host's refusal of a request
the document admits.
"""

from __future__ import annotations

from typing import Any

import schemathesis


@schemathesis.check
def only_the_engine_refuses_what_the_document_admits(ctx: Any, response: Any, case: Any) -> bool | None:
    """A 422 to a request generated from the document (positive data) is the engine's: its
    ``BELOW_MINIMUM``, or its ``VALIDATION_ERROR`` naming one field, whose message is
    ``"<field>: <problem>"`` and whose ``errors`` is ``{<field>: <problem>}``."""
    meta = case.meta
    if meta is None or not meta.generation.mode.is_positive or response.status_code != 422:
        return None
    body = response.json()
    if body.get("code") == "BELOW_MINIMUM" and body.get("errors") is None:
        return None
    errors = body.get("errors") or {}
    engine_refusal = (
        body.get("code") == "VALIDATION_ERROR"
        and len(errors) == 1
        and all(body.get("message") == f"{field}: {problem}" for field, problem in errors.items())
    )
    if not engine_refusal:
        raise AssertionError(f"the host refused a request the document admits: {body}")
    return None
