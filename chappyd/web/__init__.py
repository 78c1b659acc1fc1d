"""The dashboard: a small WSGI app over the driver interface (`chappyctl web`)."""
