"""gunicorn settings; gunicorn reads this file from the working directory (`gunicorn labelqa.wsgi`).

Command-line flags and GUNICORN_CMD_ARGS override it; WEB_CONCURRENCY sets the number of worker processes.
"""

# Load the app (and numpy, scipy, matplotlib behind it) once in the master, before forking: workers start warm
# and share those pages copy-on-write.
preload_app = True
# Threads let a worker overlap one request's database waits with another request's Python work.
worker_class = "gthread"
threads = 4
