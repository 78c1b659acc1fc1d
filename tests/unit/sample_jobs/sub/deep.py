from chappyd import Job


class Deep(Job):
    def handle(self):
        pass
