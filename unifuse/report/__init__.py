"""Static reports (HTML pages that open from the file system, no server)."""

from .html import Figure, Section, write_html_report  # noqa: F401
