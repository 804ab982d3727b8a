"""The WSGI application, for a WSGI server of one's own; ``ratepad server run`` serves the ASGI
one (``asgi.py``), in which live streams hold no thread."""

from __future__ import annotations

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "ratepad_server.settings")
application = get_wsgi_application()
