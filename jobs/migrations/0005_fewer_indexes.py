"""Fewer indexes to write on every enqueue: each one a composite index already serves.

- Job.owner and JobEvent.job lose their single-column index (job_owner_created and jobevent_job lead
  with the same column); on PostgreSQL the job_id one took a varchar_pattern_ops twin with it.
- On PostgreSQL, Django gives every indexed varchar a second, varchar_pattern_ops index for LIKE;
  nothing searches idempotency keys, group refs or retry_of by prefix, so those go. The job id's
  stays: the console finds a job by the start of its id.
A 10,000-job enqueue_many writes its rows in about two thirds of the time (bench/engine.py).
"""
from typing import Any

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

#: (table, column) whose varchar_pattern_ops index is dropped.
PATTERN_INDEXES = [("jobs_job", "idempotency_key"), ("jobs_job", "group_ref"), ("jobs_job", "retry_of_id")]


def drop_pattern_indexes(apps: Any, schema_editor: Any) -> None:
    if schema_editor.connection.vendor != "postgresql":
        return
    with schema_editor.connection.cursor() as cursor:
        for table, column in PATTERN_INDEXES:
            cursor.execute(
                "SELECT indexname FROM pg_indexes WHERE tablename = %s AND indexdef LIKE %s",
                [table, f"%({column} varchar_pattern_ops)%"],
            )
            for (name,) in cursor.fetchall():
                schema_editor.execute(f"DROP INDEX IF EXISTS {schema_editor.quote_name(name)}")


def create_pattern_indexes(apps: Any, schema_editor: Any) -> None:
    if schema_editor.connection.vendor != "postgresql":
        return
    for table, column in PATTERN_INDEXES:
        name = schema_editor.quote_name(f"{table}_{column}_like")
        schema_editor.execute(f"CREATE INDEX IF NOT EXISTS {name} ON {table} ({column} varchar_pattern_ops)")


class Migration(migrations.Migration):

    dependencies = [
        ('jobs', '0004_schedules'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AlterField(
            model_name='job',
            name='owner',
            field=models.ForeignKey(blank=True, db_index=False, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='jobs', to=settings.AUTH_USER_MODEL),
        ),
        migrations.AlterField(
            model_name='jobevent',
            name='job',
            field=models.ForeignKey(db_constraint=False, db_index=False, on_delete=django.db.models.deletion.DO_NOTHING, related_name='events', to='jobs.job'),
        ),
        migrations.RunPython(drop_pattern_indexes, create_pattern_indexes),
    ]
