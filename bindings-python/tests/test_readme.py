"""The README quickstart runs as written and prints what its comments say."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def test_quickstart_runs_as_written():
    [code] = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, str(README), "exec"), {"__name__": "__readme__"})
    text = out.getvalue()
    assert "subscription 80000.00 420000.00" in text
    assert "INSUFFICIENT_BALANCE - No tiene saldo disponible para vincularse al fondo FDO-ACCIONES" in text
    assert "not float" in text
    assert "\n500000.00\n" in text
    assert "DispatchReport(delivered=2, retried=0, failed=0)" in text
