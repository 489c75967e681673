"""The one access rule (jobs.access), and the layout rules that keep it the only one."""
from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import AnonymousUser

from jobs import access, services
from jobs.models import Job
from jobs.services import JobSpec

ROOT = Path(__file__).resolve().parents[2]
#: Every app of the project (tests and benchmarks are not app code).
APPS = ["jobs", "transcription", "pipelines", "files", "events", "webhooks", "ai", "assistant", "launcher", "config"]
#: What product apps may import of the engine: its public surface, and its API and console helpers in their edges.
PUBLIC = {"jobs.models", "jobs.services", "jobs.selectors", "jobs.exceptions", "jobs.tasks", "jobs.access"}
EDGE_HELPERS = ("jobs.api.", "jobs.console.", "jobs.management.")


def python_files(*roots: str) -> list[Path]:
    return [p for r in roots for p in (ROOT / r).rglob("*.py") if "migrations" not in p.parts]


def imported_modules(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            found |= {node.module} | ({f"{node.module}.{a.name}" for a in node.names} if node.module == "jobs" else set())
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
    return found


@pytest.mark.django_db
def test_operators_see_every_row_owners_their_own_and_nobody_else_anything(alice: Any, bob: Any, staff: Any, django_user_model: Any) -> None:
    mine = services.enqueue(JobSpec(type="noop", owner=alice))[0]
    theirs = services.enqueue(JobSpec(type="noop", owner=bob))[0]
    nobodys = services.enqueue(JobSpec(type="noop"))[0]
    retired = django_user_model.objects.create_user("retired", is_staff=True, is_active=False)
    everything = Job.objects.all()
    assert set(access.visible(everything, staff)) == {mine, theirs, nobodys}
    assert set(access.visible(everything, alice)) == {mine}
    assert set(access.visible(everything, AnonymousUser())) == set()
    assert set(access.visible(everything, retired)) == set()  # an inactive operator is nobody
    assert access.can_see(alice, everything, mine.pk) and not access.can_see(alice, everything, theirs.pk)
    assert not access.can_see(alice, everything, "no-such-id")
    assert [access.is_operator(u) for u in (staff, alice, AnonymousUser(), retired, None)] == [True, False, False, False, False]


def test_no_app_code_tests_is_staff_outside_the_one_policy() -> None:
    offenders = [
        f"{p.relative_to(ROOT)}:{n}"
        for p in python_files(*APPS)
        if p != ROOT / "jobs" / "access.py"
        for n, line in enumerate(p.read_text().splitlines(), 1)
        if re.search(r"\bis_staff\b", line)
    ]
    assert offenders == []


def test_product_apps_use_the_engine_only_through_its_public_surface() -> None:
    """jobs/ imports no other app; other apps import jobs' public modules (and API/console helpers), never jobs.engine."""
    offenders = []
    for path in python_files("jobs"):
        offenders += [f"{path.relative_to(ROOT)} imports {m}" for m in imported_modules(path) if m.split(".")[0] in set(APPS) - {"jobs", "config"}]
    for path in python_files(*(set(APPS) - {"jobs", "config"})):
        for module in imported_modules(path):
            if module.startswith("jobs") and module not in PUBLIC and not module.startswith(EDGE_HELPERS) and module != "jobs":
                offenders.append(f"{path.relative_to(ROOT)} imports {module}")
    assert offenders == []


def test_no_module_is_over_about_400_lines() -> None:
    sizes = {str(p.relative_to(ROOT)): len(p.read_text().splitlines()) for p in python_files(*APPS)}
    assert {name: n for name, n in sizes.items() if n > 420} == {}
