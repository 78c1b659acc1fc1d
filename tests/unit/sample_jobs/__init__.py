from chappyd import Job


class Top(Job):
    def handle(self):
        pass
