"""The job engine: durable jobs in the database, carried by RQ. Imports no other project app."""
