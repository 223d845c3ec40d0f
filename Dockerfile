# labelqa: one image for every process (web, worker, gpu-worker, migrate); docker-compose.yml shows how they fit.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

# Requirements first, so a code change does not reinstall torch. Every pinned package ships a manylinux wheel
# (psycopg[binary] brings its own libpq), so the slim image needs no compiler.
COPY requirements.txt .
RUN pip install -r requirements.txt

COPY . .

# Static files are collected into the image and served by whitenoise from gunicorn: no separate static server.
# collectstatic touches no database; the throwaway key only satisfies settings at build time.
RUN useradd --system --uid 10001 --home-dir /app labelqa \
    && DJANGO_SECRET_KEY=collectstatic-build-only python manage.py collectstatic --noinput -v0 \
    && mkdir -p var/media \
    && chown -R labelqa var

USER labelqa
EXPOSE 8000

# gunicorn.conf.py (copied with the code) sets gthread workers, 4 threads each, and preloading. Override with
# GUNICORN_CMD_ARGS.
CMD ["gunicorn", "labelqa.wsgi", "--bind", "0.0.0.0:8000", "--workers", "3", "--access-logfile", "-"]
