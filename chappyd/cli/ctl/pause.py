"""`chappyctl pause` and `resume`: a flag stored in the backend, so every master on
every host sees it; masters check it before each reservation (within 2 s)."""

from __future__ import annotations

import argparse

from chappyd.cli.ctl.base import OK, Command, Context, checked, queue_name


class Pause(Command):
    paused = True

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("queue", metavar="QUEUE")

    def run(self, args: argparse.Namespace, ctx: Context) -> int:
        queue = checked("QUEUE", args.queue, queue_name)
        # idempotent: pausing a paused queue is not an error, as for Sidekiq and Laravel
        ctx.driver().set_paused(queue, self.paused)
        ctx.out(f"{'paused' if self.paused else 'resumed'} {queue}")
        return OK


class Resume(Pause):
    paused = False
