//! The README tells the truth (issue #14): its walk-through block is what
//! `examples/walkthrough.py` produces with this build's ect-run, and the
//! example receiving server answers and logs as the toolbox's page's does.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn the_walkthrough_in_the_readme_is_what_ect_run_prints() {
    let out = Command::new("python3")
        .arg(root().join("examples").join("walkthrough.py"))
        .arg("--check")
        .env("ECT_RUN", assert_cmd::cargo::cargo_bin("ect-run"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn the_example_server_answers_and_logs_as_the_toolbox_page_does() {
    let dir = tempfile::tempdir().unwrap();
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let mut server = Command::new("python3")
        .arg(root().join("examples").join("receive_reports.py"))
        .arg(port.to_string())
        .arg("log.txt")
        .current_dir(dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut ready = String::new();
    BufReader::new(server.stdout.take().unwrap())
        .read_line(&mut ready)
        .unwrap();
    assert!(ready.starts_with("listening on"), "{ready}");
    let body = r#"{"toolbox-version": "1.7.2", "traceback": ["  File \"a.py\", line 1, in f\n    g()\n", "  File \"b.py\", line 2, in g\n"], "matched-frame": null}"#;
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(
        stream,
        "POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    server.kill().unwrap();
    server.wait().unwrap();
    assert!(answer.starts_with("HTTP/1.0 200 OK\r\n"), "{answer}");
    assert!(answer.contains("Content-Type: text/plain\r\n"), "{answer}");
    assert!(answer.ends_with("\r\n\r\nOK"), "{answer}");
    let log = std::fs::read_to_string(dir.path().join("log.txt")).unwrap();
    let (stamp, rest) = log.split_once('\n').unwrap();
    assert!(
        stamp.ends_with("+00:00"),
        "an ISO-8601 UTC timestamp: {stamp}"
    );
    // The page's layout: `key:` then the value (list items joined with a
    // newline), no blank line between keys, one at the end.
    assert_eq!(
        rest,
        "toolbox-version:\n1.7.2\ntraceback:\n  File \"a.py\", line 1, in f\n    g()\n\n  File \"b.py\", line 2, in g\nmatched-frame:\nNone\n\n"
    );
}
