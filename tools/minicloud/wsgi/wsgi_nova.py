"""nova under gunicorn: the service parses argv as its own options, so
the WSGI module hides gunicorn's before importing the application."""

import sys

sys.argv = sys.argv[:1]

from nova.wsgi.osapi_compute import application  # noqa: E402,F401
