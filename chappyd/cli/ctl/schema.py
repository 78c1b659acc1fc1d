"""`chappyctl queue:migration` (print the SQL schema) and `migrate` (apply it), for
databases where the application's user has no DDL rights (CHAPPY_AUTO_MIGRATE=0)."""

from __future__ import annotations

import argparse
import dataclasses

from chappyd.cli.ctl.base import OK, Command, Context, Refused
from chappyd.drivers import open_driver

#: A placeholder URL to build a driver of another kind than configured: drivers
#: connect lazily and schema_sql() needs no connection.
_OFFLINE_URLS = {"postgres": "postgresql://localhost/chappyd", "sqlite": "sqlite:///queue.sqlite3"}


class Migration(Command):
    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--driver", choices=sorted(_OFFLINE_URLS),
                            help="the SQL dialect (default: the configured database's)")

    def run(self, args: argparse.Namespace, ctx: Context) -> int:
        settings = ctx.settings
        if args.driver is not None:
            settings = dataclasses.replace(settings, queue_driver="database",
                                           database_url=_OFFLINE_URLS[args.driver])
        elif settings.backend == "redis":
            raise Refused("the Redis backend has no SQL schema (its keys need none); "
                          "use --driver postgres|sqlite for a database's")
        driver = open_driver(settings)
        try:
            sql = driver.schema_sql()
        finally:
            driver.close()
        if not sql.strip():
            raise Refused(f"the {driver.kind} driver has no SQL schema")
        ctx.stdout.write(sql if sql.endswith("\n") else sql + "\n")
        return OK


class Migrate(Command):
    def run(self, args: argparse.Namespace, ctx: Context) -> int:
        driver = ctx.driver(probe=False)
        # idempotent DDL: a schema applied by hand from queue:migration is accepted
        note = ctx.first_contact(driver.migrate)
        if note:  # it adopted a table another program made: say what it found
            ctx.out(note)
        ctx.out(f"schema up to date: {ctx.settings.backend_description}")
        return OK
