"""Dead letters grouped by error fingerprint: two fields, the open-groups index, and a backfill of every existing letter.

Not atomic: the backfill commits 1,000 letters per transaction (a large table never holds one long
transaction or lock), and only reads letters still without a fingerprint, so an interrupted run
picks up where it stopped. The index is built after the backfill, so the backfill does not update it.
"""
from collections import defaultdict
from typing import Any

from django.db import migrations, models, transaction

CHUNK = 1000


def backfill(apps: Any, schema_editor: Any) -> None:
    from jobs.engine.fingerprint import fingerprint

    DeadLetter = apps.get_model("jobs", "DeadLetter")
    db = schema_editor.connection.alias
    last = 0
    while True:
        rows = list(
            DeadLetter.objects.using(db).filter(fingerprint="", pk__gt=last).order_by("pk")
            .values_list("pk", "reason", "job__error_class", "job__failed_reason", "job__traceback")[:CHUNK]
        )
        if not rows:
            return
        same: dict[tuple[str, str], list[int]] = defaultdict(list)
        for pk, reason, error_class, failed_reason, trace in rows:
            # A job retried in place has its error cleared: then the letter's own reason is what is left.
            found = fingerprint(error_class=error_class or "", message=(failed_reason or reason) if error_class else reason, traceback=trace or "")
            same[(found.digest, found.signature)].append(pk)
        # One UPDATE per error in the chunk (a chunk holds few errors), rather than bulk_update's CASE over every row.
        with transaction.atomic(using=db):
            for (digest, signature), pks in same.items():
                DeadLetter.objects.using(db).filter(pk__in=pks).update(fingerprint=digest, signature=signature)
        last = rows[-1][0]


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("jobs", "0006_console_history"),
    ]

    operations = [
        migrations.AddField(
            model_name="deadletter",
            name="fingerprint",
            field=models.CharField(blank=True, default="", max_length=16),
        ),
        migrations.AddField(
            model_name="deadletter",
            name="signature",
            field=models.CharField(blank=True, default="", help_text="e.g. ValueError: bad row <n> @ tasks.py in parse", max_length=300),
        ),
        migrations.RunPython(backfill, migrations.RunPython.noop, atomic=False),
        migrations.AddIndex(
            model_name="deadletter",
            index=models.Index(
                condition=models.Q(("resolved_at__isnull", True)), fields=["fingerprint", "queue", "created_at", "id"], name="deadletter_open_fp"
            ),
        ),
    ]
