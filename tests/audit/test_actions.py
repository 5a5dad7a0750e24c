"""Every action code has a name in the dashboard and a line in docs/audit.md."""

from __future__ import annotations

from pathlib import Path

from saassy.audit.actions import ACTION_LABELS, AuditAction

AUDIT_DOC = Path(__file__).resolve().parents[2] / "docs" / "audit.md"


def test_every_action_has_a_label_and_is_documented() -> None:
    assert set(ACTION_LABELS) == set(AuditAction)
    documented = AUDIT_DOC.read_text(encoding="utf-8")
    assert [a.value for a in AuditAction if f"| `{a.value}` |" not in documented] == []
