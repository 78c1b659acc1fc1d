"""The Redis backend: every state in Redis, every move one Lua script (redis-py)."""

from chappyd.drivers.redis.driver import RedisDriver

__all__ = ["RedisDriver"]
