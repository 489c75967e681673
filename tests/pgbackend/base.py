"""PostgreSQL for the test process: Django's backend, flushing between transactional tests with DELETE instead of TRUNCATE.

pytest-django empties every table after each `transaction=True` test. TRUNCATE makes new files
for each table and index (about 0.1 s for 25 tables here, whatever they hold); DELETE of the few
rows a test leaves takes milliseconds. Foreign keys are deferrable, so one transaction with the
constraints deferred deletes in any order. Content types and permissions are kept: they are derived
from the models, and the post_migrate signal after the flush would only write them back. Everything else is the stock backend; `conftest.py`
selects it for the test process only (workers started by tests use the stock one).
"""
from __future__ import annotations

from typing import Any

from django.db.backends.postgresql import base, operations


#: Rows derived from the models, which the post_migrate signal after each flush would write back as they were.
KEPT = {"django_content_type", "auth_permission"}


class DatabaseOperations(operations.DatabaseOperations):
    def sql_flush(self, style: Any, tables: Any, *, reset_sequences: bool = False, allow_cascade: bool = False) -> list[str]:
        if not tables or reset_sequences:
            return super().sql_flush(style, tables, reset_sequences=reset_sequences, allow_cascade=allow_cascade)
        return ["SET CONSTRAINTS ALL DEFERRED"] + [
            f"{style.SQL_KEYWORD('DELETE FROM')} {style.SQL_FIELD(self.quote_name(t))};" for t in tables if t not in KEPT
        ]


class DatabaseWrapper(base.DatabaseWrapper):
    ops_class = DatabaseOperations
