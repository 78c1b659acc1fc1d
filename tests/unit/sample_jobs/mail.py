from chappyd import Job
from tests.unit.sample_jobs import Top  # imported, not defined here: not registered twice


class SendWelcomeEmail(Job):
    queue = "emails"
    tries = 5

    def handle(self):
        pass

    class Nested(Job):
        def handle(self):
            pass


class PhpNamed(Job):
    name = "App\\Jobs\\SendWelcomeEmail"

    def handle(self):
        pass


__all__ = ["PhpNamed", "SendWelcomeEmail", "Top"]
