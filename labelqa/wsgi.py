import os

from django.core.wsgi import get_wsgi_application
from django.urls import get_resolver

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "labelqa.settings")
application = get_wsgi_application()

# Import every view module (and numpy, scipy, matplotlib behind analytics) now rather than on a worker's first
# request, which would otherwise take 1-2 s. With gunicorn --preload this happens once, in the master.
get_resolver().url_patterns
