//! The consent prompt on a real pseudo-terminal, typed into as a person
//! would (inquire reads the terminal in raw mode).

use rexpect::session::spawn_command;

use crate::support::Env;

fn consent_session(env: &Env) -> rexpect::session::PtySession {
    let mut c = env.std_cmd();
    c.env("TERM", "xterm")
        .args(["--consent", "--server-url", "http://127.0.0.1:9898/"]);
    spawn_command(c, Some(10_000)).unwrap()
}

#[test]
fn typing_yes_records_consent() {
    let env = Env::new();
    let mut p = consent_session(&env);
    p.exp_string("http://127.0.0.1:9898/").unwrap();
    p.exp_string("ect-run --revoke-consent").unwrap();
    p.exp_string("Please enter YES below to consent to reporting.")
        .unwrap();
    p.send_line("Yes").unwrap();
    p.exp_string("consent recorded for http://127.0.0.1:9898/")
        .unwrap();
    p.exp_eof().unwrap();
    let cfg: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(env.config_path()).unwrap()).unwrap();
    assert_eq!(cfg["consent"]["given"], true);
}

#[test]
fn anything_else_records_nothing() {
    let env = Env::new();
    let mut p = consent_session(&env);
    p.exp_string("Please enter YES below to consent to reporting.")
        .unwrap();
    p.send_line("y").unwrap();
    p.exp_string("no consent recorded").unwrap();
    p.exp_eof().unwrap();
    assert!(!env.config_path().exists());
    // Esc cancels: also no consent.
    let mut p = consent_session(&env);
    p.exp_string("Please enter YES below to consent to reporting.")
        .unwrap();
    p.send("\x1b").unwrap();
    p.flush().unwrap();
    p.exp_string("no consent recorded").unwrap();
    p.exp_eof().unwrap();
    assert!(!env.config_path().exists());
}

/// Ctrl-C at a terminal goes to the whole foreground process group; ect-run
/// must not send it a second time. The child counts what it receives.
#[test]
fn ctrl_c_reaches_the_child_once() {
    let env = Env::new();
    let prog = "import signal, sys, time\n\
        got = []\n\
        signal.signal(signal.SIGINT, lambda s, f: got.append(s))\n\
        print('ready', flush=True)\n\
        while not got:\n    time.sleep(0.01)\n\
        time.sleep(0.5)\n\
        print('SIGINT received %d time(s)' % len(got), flush=True)\n\
        sys.exit(3)\n";
    let mut c = env.std_cmd();
    c.args(["--", "python3", "-c", prog]);
    let mut p = spawn_command(c, Some(10_000)).unwrap();
    p.exp_string("ready").unwrap();
    p.send_control('c').unwrap();
    p.exp_string("SIGINT received 1 time(s)").unwrap();
    p.exp_eof().unwrap();
    match p.process().wait().unwrap() {
        rexpect::process::WaitStatus::Exited(_, code) => assert_eq!(code, 3),
        other => panic!("unexpected end: {other:?}"),
    }
}
