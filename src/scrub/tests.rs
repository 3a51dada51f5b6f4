use super::*;

#[path = "../../tests/support/scrub_table.rs"]
mod table;

fn table_scrubber(t: &table::Table) -> Scrubber {
    Scrubber::new(Some(&t.home), Some(&t.user)).with_hostname(&t.host)
}

#[test]
fn rules_compile_and_each_token_rule_fires_on_its_example() {
    let file: RuleFile = serde_json::from_str(RULES_JSON).unwrap();
    let s = Scrubber::new(None, None);
    for t in &file.token {
        let out = s.scrub(&t.example);
        assert!(
            RULES
                .regex(RULES.token_ids.iter().position(|id| *id == t.id).unwrap())
                .is_match(t.example.as_bytes()),
            "rule {} does not match its example",
            t.id
        );
        assert!(out.contains(MASK), "{}: {out}", t.id);
        let lower = t.example.to_ascii_lowercase();
        assert!(
            t.keywords.iter().any(|k| lower.contains(k.as_str())),
            "{}: no keyword in the example",
            t.id
        );
    }
}

#[test]
fn table_sizes_meet_the_issue() {
    let t = table::table();
    assert!(t.secrets.len() >= 80, "{}", t.secrets.len());
    assert!(t.kept.len() >= 40, "{}", t.kept.len());
}

/// Every secret of the table, in every place, is gone.
#[test]
fn secrets_table() {
    let t = table::table();
    let s = table_scrubber(&t);
    let mut failures = Vec::new();
    for secret in &t.secrets {
        let mut places = table::message_forms(&secret.text);
        places.push(("bare", secret.text.clone()));
        places.push(("source line", table::source_form(&secret.text)));
        places.push(("file path", table::path_form(&secret.text)));
        for (place, text) in places {
            let out = s.scrub(&text);
            for h in secret.hidden() {
                if out.contains(h) {
                    failures.push(format!("{place}: {text:?} -> {out:?} shows {h:?}"));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Every useful string of the table, alone and in every place, is kept.
#[test]
fn kept_table() {
    let t = table::table();
    let s = table_scrubber(&t);
    let mut failures = Vec::new();
    for kept in &t.kept {
        let mut places = table::message_forms(kept);
        places.push(("bare", kept.clone()));
        places.push(("source line", table::source_form(kept)));
        places.push(("file path", table::path_form(kept)));
        for (place, text) in places {
            let out = s.scrub(&text);
            if out != text {
                failures.push(format!("{place}: {text:?} -> {out:?}"));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn masks_say_what_was_there() {
    let s = Scrubber::new(Some("/home/alice"), Some("alice")).with_hostname("node12.example.edu");
    let cases = [
        (r#"File "/home/alice/envs/x.py""#, r#"File "~/envs/x.py""#),
        ("/home/alicex/data", "/home/alicex/data"),
        (
            "/scratch/alice/run-7/out.nc",
            "/scratch/<user>/run-7/out.nc",
        ),
        (
            "https://bob:hunter2@data.example.org/cube",
            "https://***@data.example.org/cube",
        ),
        ("password=hunter2 next", "password=*** next"),
        ("{'api_key': 'abc123xyz'}", "{'api_key': '***'}"),
        (
            r#"{"password": "a b c", "user": 3}"#,
            r#"{"password": "***", "user": 3}"#,
        ),
        ("DB_PASSWORD: s3cr3t", "DB_PASSWORD: ***"),
        (
            "Authorization: Bearer abcdefghijklmnop",
            "Authorization: Bearer ***",
        ),
        ("Cookie: a=1; b=2", "Cookie: ***"),
        (
            "password=a\n--password hunter3",
            "password=***\n--password ***",
        ),
        ("?sv=1&sig=abc%3D&x=2", "?sv=1&sig=***&x=2"),
        ("key AKIAIOSFODNN7EXAMPLE here", "key *** here"),
        (
            "https://hooks.slack.com/services/T0/B0/xyzxyzxyz",
            "https://hooks.slack.com/services/***",
        ),
        ("mail alice.smith@example.org now", "mail <email> now"),
        ("from 10.1.2.3 and 8.8.8.8", "from <ip> and 8.8.8.8"),
        ("fe80::1%eth0 down", "<ip> down"),
        ("on node12.example.edu (node12)", "on <host> (<host>)"),
        ("alice@node12", "<user>@<host>"),
        ("Alice's job", "<user>'s job"),
        ("division by zero", "division by zero"),
        (
            "ect_demo::main::h0123456789abcdef",
            "ect_demo::main::h0123456789abcdef",
        ),
        ("tokenizer=bert", "tokenizer=bert"),
    ];
    for (input, want) in cases {
        assert_eq!(s.scrub(input), want, "{input}");
    }
}

/// A user or host name that is also an ordinary word or path segment is
/// masked only where it names the user (issue 13's `site`, `ops`, `/root`).
#[test]
fn ordinary_names_are_masked_only_where_they_name_the_user() {
    let s = Scrubber::new(Some("/home/site"), Some("site"));
    assert_eq!(
        s.scrub("/opt/x/lib/python3.11/site-packages/y.py"),
        "/opt/x/lib/python3.11/site-packages/y.py"
    );
    assert_eq!(s.scrub("the site is down"), "the site is down");
    assert_eq!(s.scrub("/home/site/x.py"), "~/x.py");
    assert_eq!(s.scrub("/Users/site/x.py"), "/Users/<user>/x.py");
    assert_eq!(s.scrub("site@host1"), "<user>@host1");

    let s = Scrubber::new(Some("/home/ops"), Some("ops"));
    assert_eq!(
        s.scrub("esa_climate_toolbox/ops/resample.py"),
        "esa_climate_toolbox/ops/resample.py"
    );

    let s = Scrubber::new(Some("/root"), Some("root"));
    assert_eq!(s.scrub("/data/root/cci"), "/data/root/cci");
    assert_eq!(s.scrub("open /root/x.py"), "open ~/x.py");
    assert_eq!(s.scrub("x=/root"), "x=~");

    // $HOME elsewhere: /home/NAME, /Users/NAME and C:\Users\NAME still
    // name the user, and so does a directory beside $HOME.
    let s = Scrubber::new(Some("/gpfs/u/jdoe"), Some("jdoe"));
    assert_eq!(s.scrub("/home/jdoe/x"), "/home/<user>/x");
    assert_eq!(s.scrub(r"C:\Users\JDoe\x.py"), r"C:\Users\<user>\x.py");
    assert_eq!(s.scrub("/gpfs/u/jdoe/x"), "~/x");

    // Short names: only as a path segment under a home root.
    let s = Scrubber::new(Some("/"), Some("al"));
    assert_eq!(s.scrub("/usr/lib/python3/x.py"), "/usr/lib/python3/x.py");
    assert_eq!(s.scrub("al is here"), "al is here");
    assert_eq!(s.scrub("/scratch/al/x"), "/scratch/<user>/x");
    let s = Scrubber::new(None, None);
    assert_eq!(s.scrub("/home/x"), "/home/x");
}

#[test]
fn masks_are_stable_when_scrubbed_again() {
    let t = table::table();
    let s = table_scrubber(&t);
    for secret in &t.secrets {
        for (_, text) in table::message_forms(&secret.text) {
            let once = s.scrub(&text);
            assert_eq!(s.scrub(&once), once, "{text:?}");
        }
    }
}

#[test]
fn non_ascii_text_is_kept_whole() {
    let s = Scrubber::new(Some("/home/jürgen"), Some("jürgen"));
    assert_eq!(s.scrub("/home/jürgen/ü.py"), "~/ü.py");
    assert_eq!(
        s.scrub("Jürgen: ü password=ä€ß x"),
        "<user>: ü password=*** x"
    );
    assert_eq!(s.scrub("température ≥ 300 K"), "température ≥ 300 K");
}

#[test]
fn a_private_key_cut_short_is_masked_as_far_as_it_goes() {
    let s = Scrubber::new(None, None);
    assert_eq!(
        s.scrub("a\n-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\nsee the log"),
        "a\n***\nsee the log"
    );
    assert_eq!(
        s.scrub("-----BEGIN EC PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,0123\n\nMHcCAQEEIIrYSSNQFaA2Hwf1duRSxKtLYX5CB04fSeQ6tF1aY/PuoAoGCCqGSM49\n-----END EC PRIVATE KEY----- done"),
        "*** done"
    );
}

/// Word-by-word search is for the first few hundred bytes only: a report's
/// thousands of short strings go through the automaton, and both find the
/// same.
#[test]
fn short_text_is_searched_word_by_word_then_by_the_automaton() {
    let s = Scrubber::new(Some("/home/alice"), Some("alice"));
    let line = "alice: token=ghp_0123456789abcdefghijABCDEFGHIJ012345 in /home/alice/x.py";
    let first = s.scrub(line);
    let finder = s.finder.get().expect("made on first use");
    assert!(finder.find.get().is_none(), "one line needs no automaton");
    for _ in 0..20 {
        assert_eq!(s.scrub(line), first);
    }
    assert!(
        finder.find.get().is_some(),
        "many lines are searched by the automaton"
    );
    assert_eq!(s.scrub(line), first);
    assert!(
        !first.contains("ghp_0123") && !first.contains("alice"),
        "{first}"
    );
}
