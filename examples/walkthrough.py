"""Runs the README's walk-through for real and prints it as a transcript:
the toolbox's example server, consent, a failure on purpose, the server's
log. The README's walk-through block is this script's output; a test fails
when they differ.

    python3 examples/walkthrough.py            # print the transcript
    python3 examples/walkthrough.py --update   # rewrite the README's block
    python3 examples/walkthrough.py --check    # exit 1, with a diff, if stale

ect-run is taken from $ECT_RUN, else target/debug/ect-run (build it first
with `cargo build`). Everything runs in a private temporary home: your own
config and outbox are not touched. What differs from run to run or machine
to machine is normalised: the temporary home shows as `~`, times as
2026-11-25T10:53:17.960178, the port as 9898.
"""
import difflib
import os
import pathlib
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
BEGIN = "<!-- walkthrough: begin (made by examples/walkthrough.py; do not edit) -->"
END = "<!-- walkthrough: end -->"


def port_to_use():
    """9898, the toolbox's default, as a user would have it; another free
    port only if something else holds 9898 (then it is shown as 9898)."""
    for want in (9898, 0):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", want))
                return s.getsockname()[1]
            except OSError:
                continue
    sys.exit("walkthrough: no free port")


def main():
    ect_run = os.environ.get("ECT_RUN") or str(ROOT / "target" / "debug" / "ect-run")
    if not os.access(ect_run, os.X_OK):
        sys.exit(f"walkthrough: no ect-run at {ect_run}: run `cargo build` first")
    tmp = pathlib.Path(tempfile.mkdtemp(prefix="ect-walk-"))
    try:
        text = run(ect_run, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if "--update" in sys.argv:
        README.write_text(replace_block(README.read_text(), text))
    elif "--check" in sys.argv:
        current = block(README.read_text())
        if current != text:
            diff = difflib.unified_diff(
                current.splitlines(True), text.splitlines(True), "README.md", "walkthrough.py"
            )
            sys.stdout.write("".join(diff))
            sys.exit("walkthrough: the README's walk-through is stale: "
                     "run `cargo build && python3 examples/walkthrough.py --update`")
    else:
        sys.stdout.write(text)


def run(ect_run, tmp):
    home = tmp / "home"
    work = home / "work"
    site = home / "envs" / "ect" / "lib" / "site-packages"
    work.mkdir(parents=True)
    # The toolbox's test failure: the real toolbox when it is installed
    # would do the same; the stand-in keeps the output the same everywhere.
    shutil.copytree(ROOT / "examples" / "standin", site)
    port = port_to_use()
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "USER": "walker",
        "LANG": "C.UTF-8",
        "XDG_CONFIG_HOME": str(home / ".config"),
        "XDG_STATE_HOME": str(home / ".local" / "state"),
        "PYTHONPATH": str(site),
    }
    if port != 9898:
        env["ESA_CLIMATE_TOOLBOX_FAILURE_REPORTING_SERVER_URL"] = f"http://localhost:{port}"
    out = []

    def show(cmd, output):
        out.append(f"$ {cmd}\n{output}")

    server = subprocess.Popen(
        [sys.executable, str(ROOT / "examples" / "receive_reports.py"), str(port), "server-log.txt"],
        cwd=work, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )
    try:
        first = server.stdout.readline()
        show("python3 examples/receive_reports.py 9898 server-log.txt &", first)
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.05)
        p = subprocess.run([ect_run, "--consent"], cwd=work, env=env, input="YES\n",
                           capture_output=True, text=True)
        show("echo YES | ect-run --consent", p.stdout + p.stderr)
        p = subprocess.run([ect_run, "--test-failure"], cwd=work, env=env,
                           capture_output=True, text=True)
        show("ect-run --test-failure", p.stdout + p.stderr + f"[exit status {p.returncode}]\n")
        p = subprocess.run([ect_run, "--status"], cwd=work, env=env,
                           capture_output=True, text=True)
        show("ect-run --status", p.stdout + p.stderr)
        show("cat server-log.txt", (work / "server-log.txt").read_text())
    finally:
        server.kill()
        server.wait()
    return normalise("\n".join(out), home, port)


def normalise(text, home, port):
    text = text.replace(str(home), "~")
    if port != 9898:
        text = text.replace(str(port), "9898").replace(
            "(from ESA_CLIMATE_TOOLBOX_FAILURE_REPORTING_SERVER_URL)", "(from the toolbox's default)")
    text = re.sub(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?", "2026-11-25T10:53:17.960178", text)
    return text


def block(readme):
    start = readme.index(BEGIN) + len(BEGIN)
    end = readme.index(END)
    return readme[start:end].removeprefix("\n```console\n").removesuffix("```\n")


def replace_block(readme, text):
    start = readme.index(BEGIN) + len(BEGIN)
    end = readme.index(END)
    return readme[:start] + "\n```console\n" + text + "```\n" + readme[end:]


if __name__ == "__main__":
    main()
