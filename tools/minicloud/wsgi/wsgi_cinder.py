"""cinder-api under gunicorn: Cinder reads its options from argv, so the
WSGI module gives it its config file there."""

import os
import sys

sys.argv = ['cinder-api', '--config-file',
            os.environ['MINICLOUD_CINDER_CONF']]

from cinder.wsgi.api import application  # noqa: E402,F401
