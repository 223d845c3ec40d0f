import os
from importlib import import_module

from django.conf import settings
from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "labelqa.settings")
application = get_wsgi_application()

# Import every view module (and numpy, scipy, matplotlib behind analytics) now rather than on a worker's first
# request, which would otherwise take 1-2 s. With gunicorn's preload_app this happens once, in the master.
import_module(settings.ROOT_URLCONF)
