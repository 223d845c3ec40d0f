"""PostgreSQL drops gunicorn's connection in the middle of a request: a clean 503 page, and the next request works."""

import threading

import psycopg
import pytest
from django.conf import settings

from tests.live import (
    blocked_backends,
    database_conninfo,
    http_login,
    live_env,
    output_of,
    start_gunicorn,
    stop,
    wait_until,
)


@pytest.mark.live
@pytest.mark.django_db(transaction=True)
def test_a_connection_killed_mid_request_gets_a_clean_503_and_the_next_request_works(pets, reviewer, tmp_path):
    server, base = start_gunicorn(live_env(settings.CELERY_BROKER_URL), tmp_path / "gunicorn.log")
    try:
        session = http_login(base, reviewer.username)
        # Leasing reads review_batch; with the table locked the request waits inside PostgreSQL.
        locker = psycopg.connect(database_conninfo())
        locker.execute("LOCK TABLE review_batch IN ACCESS EXCLUSIVE MODE")
        answers = []
        request = threading.Thread(
            target=lambda: answers.append(session.get(f"{base}/review/next/", allow_redirects=False, timeout=30))
        )
        request.start()
        try:
            [backend] = wait_until(blocked_backends, timeout=30, what="the request blocking on review_batch")
            with psycopg.connect(database_conninfo(), autocommit=True) as admin:
                admin.execute("SELECT pg_terminate_backend(%s)", [backend])
            request.join(timeout=30)
        finally:
            locker.rollback()
            locker.close()

        [response] = answers
        assert response.status_code == 503, output_of(server)
        text = " ".join(response.text.split())
        assert "The database connection was lost" in text and "wait a few seconds, reload the page" in text
        assert "Traceback" not in text and "OperationalError" not in text
        assert response.headers["Retry-After"] == "5"
        assert "terminating connection due to administrator command" in output_of(server), "the error is logged"

        following = session.get(f"{base}/review/next/", allow_redirects=False, timeout=30)
        assert following.status_code == 302 and following.headers["Location"].startswith("/review/batch/")
    finally:
        stop(server)
