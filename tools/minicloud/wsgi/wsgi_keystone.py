"""keystone under gunicorn: the service parses argv as its own options, so
the WSGI module hides gunicorn's before importing the application."""

import sys

sys.argv = sys.argv[:1]

from keystone.wsgi.api import application  # noqa: E402,F401
