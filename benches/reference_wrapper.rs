//! The smallest Rust wrapper that does what ect-run must at the least:
//! start the command (fork and exec, here std's posix_spawn), copy its
//! stderr through while keeping the last 1 MiB, wait, and exit with its
//! status. The start-up benchmark (benches/run.sh) measures ect-run's
//! added time against this one's; it is built there with rustc and the
//! release profile's options, and is not part of ect-run.

use std::io::{Read, Write};
use std::os::unix::process::ExitStatusExt;
use std::process::{Command, Stdio};

const TAIL: usize = 1 << 20;

fn main() {
    let mut args = std::env::args_os().skip(1);
    let Some(program) = args.next() else {
        eprintln!("usage: reference_wrapper COMMAND [ARGS...]");
        std::process::exit(2);
    };
    let mut cmd = Command::new(program);
    cmd.args(args).stderr(Stdio::piped());
    // Built with `--cfg fork`: a no-op pre_exec makes std fork() and exec
    // instead of posix_spawn, as ect-run must for its own pre_exec.
    #[cfg(fork)]
    // SAFETY: the closure does nothing.
    unsafe {
        std::os::unix::process::CommandExt::pre_exec(&mut cmd, || Ok(()));
    }
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("reference_wrapper: {e}");
            std::process::exit(127);
        }
    };
    let mut pipe = child.stderr.take().expect("piped stderr");
    let mut tail: Vec<u8> = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut out = std::io::stderr();
    loop {
        match pipe.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                let _ = out.write_all(&buf[..n]);
                tail.extend_from_slice(&buf[..n]);
                if tail.len() > 2 * TAIL {
                    tail.drain(..tail.len() - TAIL);
                }
            }
        }
    }
    let status = child.wait().expect("wait");
    std::hint::black_box(&tail);
    let code = match (status.code(), status.signal()) {
        (Some(c), _) => c,
        (None, Some(s)) => 128 + s,
        _ => 1,
    };
    std::process::exit(code);
}
