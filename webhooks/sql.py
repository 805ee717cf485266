"""The webhooks app's raw SQL: named, static statements, each with its purpose. Everything else
is the ORM. Parameters are named; values are adapted by ``webhooks.services`` through Django's
own field preparation."""

# Store one delivery unless an event with its dedupe key is stored already: returns the new id,
# or no row for a duplicate. One round trip on the ingest path (where webhook volume arrives),
# with no savepoint and no ERROR in the server's log for each duplicate, as a caught
# IntegrityError would cost. PostgreSQL and SQLite (>= 3.35) alike.
INSERT_EVENT_UNLESS_DUPLICATE = """
INSERT INTO webhooks_webhookevent (
    provider, event_type, dedupe_key, webhook_id, lead_email, source, raw_body, status,
    attempts, max_attempts, next_attempt_at, last_error, received_at, processed_at,
    claimed_by, requeue_count, requeued_by
) VALUES (
    %(provider)s, %(event_type)s, %(dedupe_key)s, %(webhook_id)s, %(lead_email)s, %(source)s,
    %(raw_body)s, %(status)s, 0, %(max_attempts)s, %(next_attempt_at)s, '', %(received_at)s,
    %(processed_at)s, '', 0, ''
)
ON CONFLICT (dedupe_key) DO NOTHING
RETURNING id
"""
