#!/usr/bin/env bash
# Performance figures for ect-run, each against a baseline measured in the
# same run (interleaved), because the machine this runs on may be shared and
# noisy: the ratios are what to trust, the absolute numbers only roughly.
#
#   bash benches/run.sh
#
# Measures:
#   a. added wall time of `ect-run -- true` over plain `true`, against a
#      reference wrapper (benches/reference_wrapper.rs) measured alike, and
#      of a failing run and of the no-consent hint path;
#   b. throughput of 1 GiB written to the child's stderr, through ect-run
#      vs through `cat`;
#   c. peak RSS of ect-run itself while the child writes 1 GiB to stderr,
#      and while it writes one 256 MiB line with no newline, vs `cat`;
#   d. parse time of a 1 MiB stderr tail (`cargo bench --bench parse`).
# and prints a Markdown table, with the machine, to paste into the README.
#
# Needs: cargo, python3 (3.8+; standard library only), coreutils. Linux
# only (ptrace and /proc are used for c). No hyperfine.
#
# Tunables (environment): STARTUP_RUNS (300), THROUGHPUT_REPS (5), RSS_REPS (3),
# ONLY (abcd: the measures to run, e.g. ONLY=a for start-up alone).

set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

export STARTUP_RUNS="${STARTUP_RUNS:-300}"
export THROUGHPUT_REPS="${THROUGHPUT_REPS:-5}"
export RSS_REPS="${RSS_REPS:-3}"
export ONLY="${ONLY:-abcd}"

log() { printf '%s\n' "$*" >&2; }

log "== cargo build --release"
cargo build --release --quiet
if [[ $ONLY == *d* ]]; then
    log "== cargo bench --bench parse --no-run"
    cargo bench --bench parse --no-run --quiet
fi

ECT_RUN="$PWD/target/release/ect-run"
export ECT_RUN
[[ -x $ECT_RUN ]] || {
    log "no $ECT_RUN after the build"
    exit 1
}

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

log "== rustc benches/reference_wrapper.rs (the release profile's options)"
ref_flags=(--edition 2021 -C opt-level=3 -C codegen-units=1 -C lto=fat)
# Linked as ect-run's binary is (build.rs): position-dependent on Linux.
[[ $(uname -s) == Linux ]] && ref_flags+=(-C link-arg=-no-pie)
rustc "${ref_flags[@]}" benches/reference_wrapper.rs -o "$work/reference"
rustc "${ref_flags[@]}" --cfg fork benches/reference_wrapper.rs -o "$work/reference-fork"
export REFERENCE="$work/reference" REFERENCE_FORK="$work/reference-fork"
export FIXTURE="$PWD/tests/fixtures/python/toolbox_raise_error-3.11.txt"
# ect-run as a new user would run it: no config, no consent, nothing kept.
export XDG_CONFIG_HOME="$work/config" XDG_STATE_HOME="$work/state"
unset ECT_RUN_CONFIG DO_NOT_TRACK ESA_CLIMATE_TOOLBOX_FAILURE_REPORTING_SERVER_URL

load_start=$(cut -d' ' -f1-3 /proc/loadavg)
log "== a-c: process measurements (load average $load_start)"
WORK=$work python3 - >"$work/rows.md" <<'PY'
"""Timing and memory harness for benches/run.sh (standard library only)."""

import ctypes
import os
import random
import signal
import statistics
import subprocess
import sys
import time

ECT_RUN = os.environ["ECT_RUN"]
STARTUP_RUNS = int(os.environ["STARTUP_RUNS"])
THROUGHPUT_REPS = int(os.environ["THROUGHPUT_REPS"])
RSS_REPS = int(os.environ["RSS_REPS"])

GIB = 1 << 30
MIB = 1 << 20
DEVNULL = subprocess.DEVNULL

# The writers. The data goes to the CHILD's stderr (fd 2); its stdout is
# unused.
WRITE_1GIB = f"head -c {GIB} /dev/zero >&2"
WRITE_LINE = f"head -c {256 * MIB} /dev/zero | tr '\\0' x >&2"


def note(msg):
    print(msg, file=sys.stderr, flush=True)


def row(measure, ours, base, versus, target, met):
    print(f"| {measure} | {ours} | {base} | {versus} | {target} | {'yes' if met else 'NO'} |")


def timed(argv, **kw):
    t0 = time.perf_counter()
    subprocess.run(argv, check=True, **kw)
    return time.perf_counter() - t0


# --- a. start-up overhead -------------------------------------------------
#
# All commands are started the same way (subprocess.run, all three fds on
# /dev/null, programs looked up in PATH), so the harness's own cost cancels
# out in the differences. Every round runs each command once, in random
# order, after a warm-up, so load drift and cache effects hit all alike.
#
# The reference is benches/reference_wrapper.rs: the smallest Rust wrapper
# that spawns, tees stderr and waits (std's posix_spawn); "reference, fork"
# is the same with a no-op pre_exec, which makes std fork() as ect-run must
# (it sets PR_SET_PDEATHSIG between fork and exec). The failing runs use a
# fresh config and state directory: no consent, so a toolbox failure ends
# in the one-line opt-in hint.

FIXTURE = os.environ["FIXTURE"]
HINT_JOB = ["sh", "-c", f"cat '{FIXTURE}' >&2; exit 1"]


def rounds(cmds, runs):
    """Median wall time and median CPU time (user + system of the command
    and of the children it waited for, from wait4), in ms. CPU time is
    what a busy machine distorts least."""
    kw = dict(stdin=DEVNULL, stdout=DEVNULL, stderr=DEVNULL)
    wall = {name: [] for name in cmds}
    cpu = {name: [] for name in cmds}
    rng = random.Random(1)
    names = list(cmds)
    for i in range(20 + runs):
        rng.shuffle(names)
        for name in names:
            t0 = time.perf_counter()
            p = subprocess.Popen(cmds[name], **kw)
            _, _, ru = os.wait4(p.pid, 0)
            t = time.perf_counter() - t0
            p.returncode = 0  # reaped here, not by Popen
            if i >= 20:
                wall[name].append(t)
                cpu[name].append(ru.ru_utime + ru.ru_stime)
    med = lambda d: {n: statistics.median(v) * 1e3 for n, v in d.items()}
    return med(wall), med(cpu)


def startup():
    ref, ref_fork = os.environ["REFERENCE"], os.environ["REFERENCE_FORK"]
    cmds = {
        "true": ["true"],
        "ect-run -- true": [ECT_RUN, "--", "true"],
        "reference true": [ref, "true"],
        "reference, fork true": [ref_fork, "true"],
        "false": ["false"],
        "ect-run -- false": [ECT_RUN, "--", "false"],
        "hint job": HINT_JOB,
        "ect-run -- hint job": [ECT_RUN, "--"] + HINT_JOB,
        "reference hint job": [ref] + HINT_JOB,
        "ect-run --version": [ECT_RUN, "--version"],
        "reference (no command)": [ref],
    }
    m, c = rounds(cmds, STARTUP_RUNS)
    for name, ms in m.items():
        note(f"a. median of {STARTUP_RUNS}: {name}: {ms:.3f} ms wall, {c[name]:.3f} ms CPU")
    note(f"a. CPU time added over `true`: ect-run {c['ect-run -- true'] - c['true']:.3f} ms, "
         f"reference {c['reference true'] - c['true']:.3f} ms, "
         f"reference with fork {c['reference, fork true'] - c['true']:.3f} ms; "
         f"ect-run -- false over false {c['ect-run -- false'] - c['false']:.3f} ms; "
         f"hint path beyond a success "
         f"{(c['ect-run -- hint job'] - c['reference hint job']) - (c['ect-run -- true'] - c['reference true']):.3f} ms; "
         f"`ect-run --version` over the reference doing nothing "
         f"{c['ect-run --version'] - c['reference (no command)']:.3f} ms")
    ours = m["ect-run -- true"] - m["true"]
    base = m["reference true"] - m["true"]
    fork = m["reference, fork true"] - m["true"]
    fail = m["ect-run -- false"] - m["false"]
    hint = (m["ect-run -- hint job"] - m["reference hint job"]) - (
        m["ect-run -- true"] - m["reference true"])
    load = m["ect-run --version"] - m["reference (no command)"]
    note(f"a. added over `true`: ect-run {ours:.3f} ms, reference {base:.3f} ms, "
         f"reference with fork {fork:.3f} ms; ect-run -- false over false {fail:.3f} ms; "
         f"hint path beyond a success {hint:.3f} ms; "
         f"`ect-run --version` over the reference doing nothing {load:.3f} ms")
    row(f"Start-up: `ect-run -- true`, added over `true` (median of {STARTUP_RUNS})",
        f"+{ours:.2f} ms", f"+{base:.2f} ms (reference wrapper)",
        f"{ours / base:.2f}x", "<= 1.5x and < +1.5 ms", ours <= 1.5 * base and ours < 1.5)
    row("Failing run, nothing to report: `ect-run -- false`, added over `false`",
        f"+{fail:.2f} ms", f"+{ours:.2f} ms (`ect-run -- true`)",
        f"{fail - ours:+.2f} ms", "<= success + analysis (~0)", fail - ours < 0.25)
    row("Toolbox failure, no consent (hint): added beyond a successful run",
        f"+{hint:.2f} ms", "reference wrapper, same job", "", "< 2 ms + analysis", hint < 2.0)


# --- b. throughput ---------------------------------------------------------
#
# ect-run is "a pipe plus one copying process": the child writes into a
# pipe, ect-run reads it and writes every byte to its own stderr
# (/dev/null here). The fair baseline is exactly that with `cat` as the
# copier: the same writer command, its stderr a pipe (same default 64 KiB
# capacity), `cat` reading it and writing to /dev/null. Comparing with the
# writer alone (`head ... >/dev/null`) would leave out the pipe and the
# second process that any tee must have. Wall time of the whole pipeline,
# start to last exit, for 1 GiB.

def through_ect_run():
    return timed([ECT_RUN, "--", "sh", "-c", WRITE_1GIB],
                 stdin=DEVNULL, stdout=DEVNULL, stderr=DEVNULL)


def through_cat():
    t0 = time.perf_counter()
    writer = subprocess.Popen(["sh", "-c", WRITE_1GIB],
                              stdin=DEVNULL, stdout=DEVNULL, stderr=subprocess.PIPE)
    cat = subprocess.Popen(["cat"], stdin=writer.stderr, stdout=DEVNULL, stderr=DEVNULL)
    writer.stderr.close()
    if cat.wait() != 0 or writer.wait() != 0:
        raise RuntimeError("baseline pipeline failed")
    return time.perf_counter() - t0


def throughput():
    through_ect_run()  # warm-up: page cache, binaries
    through_cat()
    t_ours, t_base = [], []
    for i in range(THROUGHPUT_REPS):
        order = [(through_ect_run, t_ours), (through_cat, t_base)]
        if i % 2:
            order.reverse()
        for f, out in order:
            out.append(f())
    g_ours = 1 / statistics.median(t_ours)
    g_base = 1 / statistics.median(t_base)
    note("b. 1 GiB, seconds: ect-run " + " ".join(f"{t:.3f}" for t in t_ours)
         + "; cat " + " ".join(f"{t:.3f}" for t in t_base))
    ratio = g_ours / g_base
    row(f"Throughput: 1 GiB on the child's stderr (median of {THROUGHPUT_REPS})",
        f"{g_ours:.2f} GiB/s", f"{g_base:.2f} GiB/s (`cat`)",
        f"{ratio * 100:.0f} %", ">= 80 %", ratio >= 0.80)


# --- c. peak RSS of the copier alone -------------------------------------
#
# Not GNU time: `/usr/bin/time -f %M` reports the ru_maxrss that wait4()
# returns, which for the waited-for process is max(its own peak, the peak of
# every descendant it has itself waited for) -- the kernel fills it as
# getrusage(RUSAGE_BOTH). ect-run waits for its child, so the figure may be
# the child's (`head`, `tr`, a Python program...) rather than ect-run's.
# (Checked: `/usr/bin/time -f %M ect-run -- python3 -c
# 'x=bytearray(200_000_000)...'` prints ~208000 KiB.)
#
# Instead the copier is started under ptrace with PTRACE_O_TRACEEXIT: the
# kernel stops it at exit *before* its memory is released, and VmHWM
# (peak resident set) is read from /proc/PID/status at that moment: the
# whole life of ect-run alone, all its threads (they share one mm), and
# none of its children. Only the main thread is traced, and only signal
# deliveries and the exit stop it, so the cost is nil. The same is done for
# `cat`, fed by the same writer through a pipe.

libc = ctypes.CDLL(None, use_errno=True)
libc.ptrace.restype = ctypes.c_long
libc.ptrace.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_void_p, ctypes.c_void_p]
PTRACE_TRACEME = 0
PTRACE_CONT = 7
PTRACE_SETOPTIONS = 0x4200
PTRACE_O_TRACEEXIT = 0x40
PTRACE_O_EXITKILL = 0x100000
PTRACE_EVENT_EXIT = 6


def ptrace(req, pid, addr, data):
    if libc.ptrace(req, pid, addr, data) == -1:
        e = ctypes.get_errno()
        raise OSError(e, f"ptrace({req}): {os.strerror(e)}")


def vmhwm_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    raise RuntimeError(f"no VmHWM for {pid}")


def peak_rss_kib(argv, stdin_fd, stdout_fd, stderr_fd):
    """Runs argv; returns (its own VmHWM at exit in KiB, wait status)."""
    pid = os.fork()
    if pid == 0:
        try:
            os.dup2(stdin_fd, 0)
            os.dup2(stdout_fd, 1)
            os.dup2(stderr_fd, 2)
            if libc.ptrace(PTRACE_TRACEME, 0, None, None) == -1:
                os._exit(125)
            os.execvp(argv[0], argv)
        finally:
            os._exit(127)
    _, status = os.waitpid(pid, 0)  # stopped by SIGTRAP after execve
    if not (os.WIFSTOPPED(status) and os.WSTOPSIG(status) == signal.SIGTRAP):
        raise RuntimeError(f"{argv[0]}: did not start under ptrace (status {status:#x})")
    ptrace(PTRACE_SETOPTIONS, pid, None, PTRACE_O_TRACEEXIT | PTRACE_O_EXITKILL)
    ptrace(PTRACE_CONT, pid, None, None)
    hwm = None
    while True:
        _, status = os.waitpid(pid, 0)
        if os.WIFEXITED(status) or os.WIFSIGNALED(status):
            break
        sig = os.WSTOPSIG(status)
        if sig == signal.SIGTRAP and status >> 16 == PTRACE_EVENT_EXIT:
            hwm = vmhwm_kib(pid)
            sig = 0
        ptrace(PTRACE_CONT, pid, None, sig)  # pass any other signal on
    if hwm is None:
        raise RuntimeError(f"{argv[0]}: no exit stop seen")
    return hwm, status


def rss_ect_run(writer):
    null = os.open(os.devnull, os.O_RDWR)
    try:
        hwm, status = peak_rss_kib([ECT_RUN, "--", "sh", "-c", writer], null, null, null)
    finally:
        os.close(null)
    if not os.WIFEXITED(status) or os.WEXITSTATUS(status) != 0:
        raise RuntimeError(f"ect-run failed (status {status:#x})")
    return hwm


def rss_cat(writer):
    null = os.open(os.devnull, os.O_RDWR)
    try:
        w = subprocess.Popen(["sh", "-c", writer], stdin=null, stdout=null,
                             stderr=subprocess.PIPE)
        try:
            hwm, status = peak_rss_kib(["cat"], w.stderr.fileno(), null, null)
        finally:
            w.stderr.close()
            w.wait()
    finally:
        os.close(null)
    if not os.WIFEXITED(status) or os.WEXITSTATUS(status) != 0:
        raise RuntimeError(f"cat failed (status {status:#x})")
    return hwm


def gnu_time_kib(writer):
    """GNU time's %M around ect-run, for comparison only (see above)."""
    out = os.path.join(os.environ["WORK"], "time.out")
    subprocess.run(["/usr/bin/time", "-o", out, "-f", "%M",
                    ECT_RUN, "--", "sh", "-c", writer],
                   stdin=DEVNULL, stdout=DEVNULL, stderr=DEVNULL, check=True)
    with open(out) as f:
        return int(f.read().split()[-1])


def rss():
    for label, writer in [("1 GiB on stderr", WRITE_1GIB),
                          ("one 256 MiB line, no newline", WRITE_LINE)]:
        ours, base = [], []
        for i in range(RSS_REPS):
            order = [(rss_ect_run, ours), (rss_cat, base)]
            if i % 2:
                order.reverse()
            for f, out in order:
                out.append(f(writer))
        m_ours = statistics.median(ours) / 1024
        m_base = statistics.median(base) / 1024
        note(f"c. peak RSS, {label}, KiB: ect-run {ours}; cat {base}")
        row(f"Peak RSS of the copier: {label} (median of {RSS_REPS})",
            f"{m_ours:.1f} MiB", f"{m_base:.1f} MiB (`cat`)",
            f"{m_ours / m_base:.1f}x", "< 16 MiB", m_ours < 16)
    if os.path.exists("/usr/bin/time"):
        note("c. for comparison, GNU time %M around ect-run (includes the child it "
             f"reaps): {gnu_time_kib(WRITE_1GIB)} KiB (1 GiB), "
             f"{gnu_time_kib(WRITE_LINE)} KiB (256 MiB line)")


ONLY = os.environ["ONLY"]
if "a" in ONLY:
    startup()
if "b" in ONLY:
    throughput()
if "c" in ONLY:
    rss()
PY

: >"$work/parse.txt"
if [[ $ONLY == *d* ]]; then
    log "== d: cargo bench --bench parse"
    cargo bench --bench parse --quiet | tee "$work/parse.txt" >&2
fi

cpu=$(grep -m1 '^model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')
echo
echo "Machine: $(nproc) CPUs, ${cpu:-unknown CPU}, $(uname -sr);" \
    "load average before a-c: $load_start, at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "ect-run $(git rev-parse --short HEAD 2>/dev/null || echo '?')$(git diff --quiet HEAD -- src Cargo.toml 2>/dev/null || echo ' + uncommitted changes'), $(rustc --version)"
echo
echo "| Measure | ect-run | Baseline | ect-run vs baseline | Target | Met |"
echo "|---|---|---|---|---|---|"
cat "$work/rows.md"
grep -E '^\| (Parse|Peak memory of analysis)' "$work/parse.txt" || true
