"""A throw-away Bugsink for ect-run's tests: one process, SQLite in a given
directory, bound to 127.0.0.1 on a free port.

    python bugsink_test_server.py DIR [TEMPLATE_DIR]   # serve
    python bugsink_test_server.py DIR --migrate-only   # make a template

Run with the Python of the virtual environment that scripts/test-env.sh
makes. Serving, it copies the migrated databases of TEMPLATE_DIR, creates a
user, a team, a project and an API token, prints one JSON line on stdout
({"url", "dsn", "project", "token"}) once it listens, and serves until its
stdin closes, so it never outlives the test process that started it (a pipe
closes however that process ends); it then removes DIR.

Settings: events are digested in the request (TASK_ALWAYS_EAGER), checked
against the event schema (VALIDATE_ON_DIGEST = "strict"; a rejected event
is logged as "ValidationError in digest" and not stored, while the sender
still got HTTP 200), and Bugsink does not phone home.
"""

import json
import os
import shutil
import socket
import sys
import threading


def main():
    base = os.path.abspath(sys.argv[1])
    migrate_only = sys.argv[2:] == ["--migrate-only"]
    template = "" if migrate_only or len(sys.argv) < 3 else sys.argv[2]
    os.makedirs(base, exist_ok=True)

    # Bind first: the real port goes into BASE_URL, which Bugsink uses to
    # build DSNs.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    port = sock.getsockname()[1]

    conf = os.path.join(base, "bugsink_test_conf.py")
    with open(conf, "w") as f:
        f.write(CONF.format(base=base, port=port))
    sys.path.insert(0, base)
    os.environ["DJANGO_SETTINGS_MODULE"] = "bugsink_test_conf"

    # Databases migrated once per bugsink version (by test-env.sh) are
    # copied: migrating from scratch takes over ten seconds.
    for name in ("db.sqlite3", "snappea.sqlite3"):
        if template and os.path.exists(os.path.join(template, name)):
            shutil.copyfile(os.path.join(template, name), os.path.join(base, name))

    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0, interactive=False)
    call_command("migrate", database="snappea", verbosity=0, interactive=False)
    if migrate_only:
        return

    from django.contrib.auth import get_user_model
    from bsmain.models import AuthToken
    from projects.models import Project
    from teams.models import Team

    # No password: nobody logs in, and hashing one costs a second.
    get_user_model().objects.create_superuser("admin", "admin@example.org", None)
    team = Team.objects.create(name="ect")
    project = Project.objects.create(name="ect-run tests", team=team)
    token = AuthToken.create_full_access().token

    threading.Thread(target=exit_when_stdin_closes, args=(base,), daemon=True).start()

    from wsgiref.simple_server import WSGIRequestHandler, WSGIServer
    from socketserver import ThreadingMixIn
    from django.core.wsgi import get_wsgi_application

    class Server(ThreadingMixIn, WSGIServer):
        daemon_threads = True

    class Handler(WSGIRequestHandler):
        def log_message(self, format, *args):
            sys.stderr.write("request: " + (format % args) + "\n")

    # The socket is bound already (its port is in the settings): give the
    # server what its own bind would have set.
    server = Server(("127.0.0.1", port), Handler, bind_and_activate=False)
    server.socket.close()
    server.socket = sock
    server.server_name = "127.0.0.1"
    server.server_port = port
    server.setup_environ()
    server.set_app(get_wsgi_application())
    print(json.dumps({
        "url": f"http://127.0.0.1:{port}",
        "dsn": project.dsn,
        "project": project.id,
        "token": token,
    }), flush=True)
    server.serve_forever()


def exit_when_stdin_closes(base):
    while sys.stdin.buffer.read(4096):
        pass
    shutil.rmtree(base, ignore_errors=True)
    os._exit(0)


CONF = '''
from bugsink.settings.default import *  # noqa

SECRET_KEY = "ect-run-tests-only"
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
DATABASES["default"]["NAME"] = "{base}/db.sqlite3"
DATABASES["snappea"]["NAME"] = "{base}/snappea.sqlite3"
SNAPPEA = {{"TASK_ALWAYS_EAGER": True}}
EMAIL_BACKEND = "django.core.mail.backends.dummy.EmailBackend"
TIME_ZONE = "UTC"

BUGSINK = {{
    "BASE_URL": "http://127.0.0.1:{port}",
    "SINGLE_USER": True,
    "SINGLE_TEAM": True,
    "VALIDATE_ON_DIGEST": "strict",
    "PHONEHOME": False,
    "INGEST_STORE_BASE_DIR": "{base}/ingestion",
}}
'''


if __name__ == "__main__":
    main()
