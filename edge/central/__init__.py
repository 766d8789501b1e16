"""The centre: every device's events in one PostgreSQL database (``platewatch collect``).

    config      CollectorConfig: database URL, crops, retention, broker, batching
    migrate     numbered SQL files (migrations/NNN_name.sql) applied once, in order
    rows        MQTT message -> typed row (pure), merging one batch
    batching    when a batch is due (pure)
    writer      one batch -> one transaction; crop files; retention
    collector   the persistent MQTT session, the writer thread, ack after commit
    pg_history  the central store read like a device's history (search, crops, cameras)

Needs psycopg 3 (``pip install 'platewatch[central]'``); nothing else in ``edge`` imports this
package except lazily, so a device never needs it.
"""


def require_psycopg() -> None:
    """ImportError with the install command when psycopg 3 is missing."""
    try:
        import psycopg  # noqa: F401
    except ImportError as exc:
        raise ImportError(
            "the central store needs psycopg 3: pip install 'platewatch[central]' "
            "(or pip install 'psycopg[binary]')"
        ) from exc
