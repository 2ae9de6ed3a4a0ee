"""The staff console: server-rendered pages under ``/console`` (Jinja2), one module per screen
group. Pages call domain services and hold no rules."""
