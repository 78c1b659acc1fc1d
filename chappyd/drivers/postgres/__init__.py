"""The PostgreSQL backend: SKIP LOCKED claims, LISTEN/NOTIFY wake-ups (psycopg 3)."""

from chappyd.drivers.postgres.driver import PostgresDriver

__all__ = ["PostgresDriver"]
