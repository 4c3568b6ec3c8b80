"""`enqueue_after_commit` in a fresh web process, where the tasks modules are not imported yet."""

import subprocess
import sys

from tests.fixtures.servers import PROJECT_ROOT

# Threads of one gunicorn (gthread) worker enqueue their first tasks at the same moment.
FIRST_ENQUEUES_AT_ONCE = """
import threading
import django

django.setup()
from emr.kernel import enqueue

start, found, failed = threading.Barrier(8), [], []

def first_enqueue():
    start.wait()
    try:
        found.append(enqueue._task("workflows.dispatch_event").name)
    except Exception as error:
        failed.append(repr(error))

threads = [threading.Thread(target=first_enqueue) for _ in range(8)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
print(len(found), failed)
"""


def test_threads_enqueueing_their_first_tasks_at_once_all_find_the_task():
    # Found by bench/soak.py: Celery's autodiscovery answers a second thread with nothing while
    # the first is still importing, and that request answered 500 after its commit.
    result = subprocess.run(
        [sys.executable, "-c", FIRST_ENQUEUES_AT_ONCE],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert result.stdout.strip() == "8 []", result.stderr
