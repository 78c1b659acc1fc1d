"""Command-line entry points: they parse, call and format; no queue logic lives here."""
