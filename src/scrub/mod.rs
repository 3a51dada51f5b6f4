//! Removing what is private from text before it leaves the machine.
//!
//! Masked: the home directory where a path starts with it (`~`); the user
//! name where it names the user (`<user>`); the machine's host name
//! (`<host>`); credentials in URLs, values of secret-named keys, `Bearer` and
//! `Basic` credentials, PEM private keys, well-known token shapes and long
//! high-entropy strings (`***`); e-mail addresses (`<email>`); private and
//! link-local IP addresses (`<ip>`). Public host names and addresses, package
//! paths, class names, numbers and ordinary words are kept: a report must
//! stay useful.
//!
//! The token shapes, entropy limits, key names and ordinary words are data
//! (`rules.toml`, from gitleaks and detect-secrets; see there). Every rule
//! runs over the original text and marks byte ranges; the ranges are merged
//! and replaced in one pass, so one rule's mask cannot hide or break what
//! another must see. The work is linear in the input: one scan classifies
//! the bytes (high-entropy runs, address separators); one case-insensitive
//! Aho-Corasick pass finds the rules' keywords and the user's and host's
//! names, and picks the few rules worth running (as gitleaks does); each of
//! those is one pass of a `regex` (linear by that crate's guarantee); one
//! literal search finds the home directory.
//!
//! Pure: no I/O except in [`Scrubber::from_env`].

use std::collections::HashSet;
use std::sync::{LazyLock, OnceLock};

use aho_corasick::AhoCorasick;
use regex::bytes::{Regex, RegexBuilder};
use serde::Deserialize;

const MASK: &str = "***";
const USER_MASK: &str = "<user>";
const HOST_MASK: &str = "<host>";
const EMAIL_MASK: &str = "<email>";
const IP_MASK: &str = "<ip>";
const HOME_MASK: &str = "~";

/// Auth schemes kept in front of a masked credential.
const SCHEMES: [&str; 6] = ["bearer", "basic", "token", "digest", "negotiate", "ntlm"];
/// Roots under which a path segment is a user's home directory.
const HOME_ROOTS: [&str; 3] = ["/home", "/users", "/scratch"];

#[derive(Deserialize)]
struct RuleFile {
    entropy: Entropy,
    keys: Keys,
    words: Words,
    token: Vec<TokenRule>,
}

#[derive(Deserialize)]
struct Entropy {
    hex_min_len: usize,
    hex_limit: f64,
    base64_min_len: usize,
    base64_limit: f64,
}

#[derive(Deserialize)]
struct Keys {
    anywhere: Vec<String>,
    segment: Vec<String>,
    whole_line: Vec<String>,
}

#[derive(Deserialize)]
struct Words {
    ordinary: Vec<String>,
}

#[derive(Deserialize)]
struct TokenRule {
    id: String,
    regex: String,
    keywords: Vec<String>,
    #[cfg_attr(not(test), allow(dead_code))]
    example: String,
}

/// What a rule's match means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Rule {
    Token,
    KeyValue,
    DashKey,
    UrlCredentials,
    Email,
    Ipv4,
    Ipv6,
    Bearer,
    Basic,
}

struct Rules {
    entropy: Entropy,
    whole_line: Vec<String>,
    ordinary: HashSet<String>,
    /// The rules' patterns, each compiled when it is first needed (most
    /// never are in a given run).
    patterns: Vec<String>,
    regexes: Vec<OnceLock<Regex>>,
    kinds: Vec<Rule>,
    #[cfg_attr(not(test), allow(dead_code))]
    token_ids: Vec<String>,
    /// Every rule's keywords, lower-cased: a rule runs only on text that
    /// holds one of its keywords, in any case (as in gitleaks). They are
    /// searched for together with the names (see [`Finder`]).
    keywords: Vec<String>,
    /// The rules (bits) each keyword stands for.
    keyword_rules: Vec<u128>,
    ipv4: usize,
    ipv6: usize,
    email: usize,
}

impl Rules {
    fn regex(&self, i: usize) -> &Regex {
        self.regexes[i].get_or_init(|| ascii_regex(&self.patterns[i]))
    }

    /// The rules that may match a text: those with a keyword in it
    /// (`bits`), and those whose characters it holds enough of (`seen`).
    fn candidates(
        &self,
        text: &[u8],
        mut bits: u128,
        seen: Seen,
    ) -> impl Iterator<Item = usize> + use<> {
        if seen.dots >= 3 {
            bits |= 1 << self.ipv4;
        }
        if seen.colons >= 7 || (seen.colons >= 2 && memchr::memmem::find(text, b"::").is_some()) {
            bits |= 1 << self.ipv6;
        }
        if seen.at {
            bits |= 1 << self.email;
        }
        std::iter::from_fn(move || {
            let i = bits.trailing_zeros();
            bits &= bits.wrapping_sub(1);
            (i < 128).then_some(i as usize)
        })
    }
}

/// Characters counted while scanning a text for high-entropy runs.
#[derive(Debug, Default, Clone, Copy)]
struct Seen {
    dots: usize,
    colons: usize,
    at: bool,
}

fn ascii_regex(pattern: &str) -> Regex {
    RegexBuilder::new(pattern)
        .unicode(false)
        .build()
        .unwrap_or_else(|e| panic!("scrub rule {pattern:?}: {e}"))
}

/// `(?:one|two)` of escaped words.
fn alternation<S: AsRef<str>>(words: impl IntoIterator<Item = S>) -> String {
    let v: Vec<String> = words
        .into_iter()
        .map(|w| regex::escape(w.as_ref()))
        .collect();
    format!("(?:{})", v.join("|"))
}

/// A key that names a secret: its last part is a secret word (any prefix:
/// `DB_PASSWORD`, `mytoken`), or a short word standing as a part of its own
/// (`api_key`, `x-api-sig`, `apiKey`, `APIKEY` — but not `monkey`).
fn key_pattern(keys: &Keys) -> String {
    let anywhere = alternation(&keys.anywhere);
    let segment = alternation(&keys.segment);
    let camel: Vec<String> = keys
        .segment
        .iter()
        .flat_map(|w| {
            let mut cap = w.clone();
            if let Some(first) = cap.get_mut(0..1) {
                first.make_ascii_uppercase();
            }
            [cap, w.to_ascii_uppercase()]
        })
        .collect();
    let camel = alternation(&camel);
    format!(
        r"(?:[A-Za-z0-9]+[_.-])*(?:[A-Za-z0-9]*(?i:{anywhere})|[A-Za-z0-9]*(?-i:{camel})|(?i:{segment}))"
    )
}

/// `rules.toml`, as JSON (build.rs).
const RULES_JSON: &str = include_str!(concat!(env!("OUT_DIR"), "/scrub-rules.json"));

static RULES: LazyLock<Rules> = LazyLock::new(|| {
    let file: RuleFile = serde_json::from_str(RULES_JSON).expect("src/scrub/rules.toml is valid");
    let key = key_pattern(&file.keys);
    // A value: the inside of quotes (JSON, repr, shell), else a run up to a
    // delimiter of the forms it comes in (query strings, dicts, headers).
    let value = r#"(?P<value>\\?"[^"\n]*"?|\\?'[^'\n]*'?|[^\s"',;&)}\]>]+)"#;
    let fixed: Vec<(Rule, String)> = vec![
        (
            Rule::KeyValue,
            format!(
                r#"(?:^|[^A-Za-z0-9_.-])-*\\?["']?(?P<key>{key})\\?["']?[ \t]*[:=][ \t]*{value}"#
            ),
        ),
        (
            Rule::DashKey,
            format!(r#"(?:^|[^A-Za-z0-9_.-])--?(?P<key>{key})[ \t]+{value}"#),
        ),
        (
            Rule::UrlCredentials,
            r#"[A-Za-z][A-Za-z0-9+.-]*://(?P<secret>[^\s/?#@"'<>]+)@"#.into(),
        ),
        (
            Rule::Email,
            r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}".into(),
        ),
        (Rule::Ipv4, r"[0-9]{1,3}(?:\.[0-9]{1,3}){3}".into()),
        (
            Rule::Ipv6,
            r"[0-9A-Fa-f]{0,4}(?::[0-9A-Fa-f]{0,4}){2,7}(?:%[0-9A-Za-z_.-]+)?".into(),
        ),
        (
            Rule::Bearer,
            r"(?i)\bbearer[ \t]+(?P<secret>[A-Za-z0-9._~+/=-]+)".into(),
        ),
        (
            Rule::Basic,
            // RFC 7617: standard base64 of `user:password`.
            r"(?i)\bbasic[ \t]+(?P<secret>[A-Za-z0-9+/=]+)".into(),
        ),
    ];
    let mut patterns: Vec<String> = Vec::new();
    let mut kinds = Vec::new();
    let mut token_ids = Vec::new();
    let mut keyword_lists: Vec<Vec<String>> = Vec::new();
    for t in &file.token {
        patterns.push(t.regex.clone());
        kinds.push(Rule::Token);
        token_ids.push(t.id.clone());
        keyword_lists.push(t.keywords.clone());
    }
    // Keys shorter than 3 letters (`pw`) as they stand before a value.
    let key_words: Vec<String> = file
        .keys
        .anywhere
        .iter()
        .chain(&file.keys.segment)
        .flat_map(|k| {
            if k.len() >= 3 {
                vec![k.clone()]
            } else {
                ["=", ":", "\"", "'", " ", "\t", "\\"]
                    .iter()
                    .map(|after| format!("{k}{after}"))
                    .collect()
            }
        })
        .collect();
    for (kind, p) in fixed {
        patterns.push(p);
        kinds.push(kind);
        keyword_lists.push(match kind {
            Rule::KeyValue | Rule::DashKey => key_words.clone(),
            Rule::UrlCredentials => vec!["://".into()],
            Rule::Email => vec![],
            Rule::Bearer => vec!["bearer".into()],
            Rule::Basic => vec!["basic".into()],
            // Checked by counting separators instead (see `candidates`).
            Rule::Ipv4 | Rule::Ipv6 | Rule::Token => vec![],
        });
    }
    assert!(
        patterns.len() <= 128,
        "more scrub rules than bits in a u128"
    );
    for list in &keyword_lists {
        for w in list {
            assert!(w.len() >= 3, "scrub keyword {w:?} is shorter than 3 bytes");
        }
    }
    let mut words: Vec<String> = Vec::new();
    let mut keyword_rules: Vec<u128> = Vec::new();
    for (rule, list) in keyword_lists.iter().enumerate() {
        for w in list {
            let w = w.to_ascii_lowercase();
            let id = match words.iter().position(|x| *x == w) {
                Some(id) => id,
                None => {
                    words.push(w);
                    keyword_rules.push(0);
                    words.len() - 1
                }
            };
            keyword_rules[id] |= 1 << rule;
        }
    }
    let kinds_index = |k: Rule| kinds.iter().position(|x| *x == k).unwrap_or(0);
    let (ipv4, ipv6, email) = (
        kinds_index(Rule::Ipv4),
        kinds_index(Rule::Ipv6),
        kinds_index(Rule::Email),
    );
    Rules {
        entropy: file.entropy,
        whole_line: file.keys.whole_line,
        ordinary: file
            .words
            .ordinary
            .iter()
            .map(|w| w.to_lowercase())
            .collect(),
        regexes: patterns.iter().map(|_| OnceLock::new()).collect(),
        patterns,
        kinds,
        token_ids,
        keywords: words,
        keyword_rules,
        ipv4,
        ipv6,
        email,
    }
});

/// A name to mask where it names the user or the machine.
#[derive(Debug, Clone)]
struct Name {
    lower: String,
    /// Also an ordinary word or path segment: masked only in the places
    /// that name a user or a machine.
    ordinary: bool,
    kind: NameKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum NameKind {
    User,
    Host,
}

impl Name {
    fn new(name: &str, kind: NameKind) -> Option<Name> {
        let name = name.trim();
        if name.is_empty() || name.eq_ignore_ascii_case("localhost") {
            return None;
        }
        let lower = name.to_lowercase();
        let ordinary = name.chars().count() < 3 || RULES.ordinary.contains(&lower);
        Some(Name {
            lower,
            ordinary,
            kind,
        })
    }
}

/// Text is searched word by word until it adds up to this many bytes (the
/// history's line and class, when nothing is reported); then by the
/// automaton, built once (a report's many strings).
const SHORT_TEXT: usize = 400;

/// Finds the rules' keywords and the user's and host's names, in any case,
/// in one pass over a string.
#[derive(Debug)]
struct Finder {
    /// The keywords and names, lower-cased: for short text, searched one by
    /// one rather than by an automaton.
    words: Vec<String>,
    /// Built once the text searched adds up to [`SHORT_TEXT`]: building it
    /// costs more than searching a line for every word one by one.
    find: OnceLock<AhoCorasick>,
    /// The bytes searched word by word so far.
    searched: std::sync::atomic::AtomicUsize,
    /// Per pattern: the rules of every keyword it starts with (itself
    /// included). Only the longest pattern at a place is reported, and
    /// every shorter one starting there is there too.
    bits: Vec<u128>,
    /// Per pattern: the lengths of the names it starts with.
    names: Vec<Vec<usize>>,
    /// Names with other than ASCII letters: a regex, for Unicode case
    /// folding (rare).
    unicode_names: Option<Regex>,
}

impl Finder {
    fn new(names: &[Name]) -> Finder {
        let rules = &*RULES;
        let mut words: Vec<String> = rules.keywords.clone();
        let mut own: Vec<u128> = rules.keyword_rules.clone();
        let mut is_name = vec![false; words.len()];
        for n in names.iter().filter(|n| n.lower.is_ascii()) {
            match words.iter().position(|w| *w == n.lower) {
                Some(i) => is_name[i] = true,
                None => {
                    words.push(n.lower.clone());
                    own.push(0);
                    is_name.push(true);
                }
            }
        }
        let mut bits = own.clone();
        let mut name_lens = vec![Vec::new(); words.len()];
        for (k, word) in words.iter().enumerate() {
            for (j, other) in words.iter().enumerate() {
                if word.starts_with(other.as_str()) {
                    bits[k] |= own[j];
                    if is_name[j] {
                        name_lens[k].push(other.len());
                    }
                }
            }
        }
        let unicode: Vec<String> = names
            .iter()
            .filter(|n| !n.lower.is_ascii())
            .map(|n| regex::escape(&n.lower))
            .collect();
        let unicode_names = (!unicode.is_empty())
            .then(|| {
                RegexBuilder::new(&format!("(?i){}", unicode.join("|")))
                    .build()
                    .ok()
            })
            .flatten();
        Finder {
            words,
            find: OnceLock::new(),
            searched: std::sync::atomic::AtomicUsize::new(0),
            bits,
            names: name_lens,
            unicode_names,
        }
    }

    /// The rules whose keywords `text` holds; calls `name(start, end)` for
    /// every place a name is found.
    fn scan(&self, text: &[u8], mut name: impl FnMut(usize, usize)) -> u128 {
        let mut bits = 0;
        let searched = self
            .searched
            .fetch_add(text.len(), std::sync::atomic::Ordering::Relaxed);
        if searched + text.len() <= SHORT_TEXT && self.find.get().is_none() {
            // Every occurrence of every word: the same as the automaton
            // finds (the words found at one place are prefixes of one
            // another, and it reports the longest with its prefixes).
            let lower = text.to_ascii_lowercase();
            for (p, word) in self.words.iter().enumerate() {
                for start in memchr::memmem::find_iter(&lower, word.as_bytes()) {
                    bits |= self.bits[p];
                    if self.names[p].contains(&word.len()) {
                        name(start, start + word.len());
                    }
                }
            }
            if let Some(re) = &self.unicode_names {
                for m in re.find_iter(text) {
                    name(m.start(), m.end());
                }
            }
            return bits;
        }
        let find = self.find.get_or_init(|| {
            AhoCorasick::builder()
                .ascii_case_insensitive(true)
                .match_kind(aho_corasick::MatchKind::LeftmostLongest)
                // A contiguous NFA: built in a third of a DFA's time (a run
                // builds it once, for a few strings), scanning about as
                // fast on short report strings; no prefilter, as the
                // keywords' first bytes are common.
                .kind(Some(aho_corasick::AhoCorasickKind::ContiguousNFA))
                .prefilter(false)
                .build(&self.words)
                .expect("scrub keywords and names form an automaton")
        });
        // The longest pattern starting at each place where one starts:
        // resuming one byte after a match's start (not after its end) finds
        // patterns that overlap it. Linear: each step re-reads at most the
        // longest pattern's length.
        let mut at = 0;
        while let Some(m) = find.find(aho_corasick::Input::new(text).span(at..text.len())) {
            let p = m.pattern().as_usize();
            bits |= self.bits[p];
            for len in &self.names[p] {
                name(m.start(), m.start() + len);
            }
            at = m.start() + 1;
        }
        if let Some(re) = &self.unicode_names {
            for m in re.find_iter(text) {
                name(m.start(), m.end());
            }
        }
        bits
    }
}

impl Default for Scrubber {
    fn default() -> Scrubber {
        Scrubber::new(None, None)
    }
}

/// Masks what is private in text. Built once per run from the environment
/// (or with [`Scrubber::new`] in tests) and applied to every string of a
/// report.
#[derive(Debug, Clone)]
pub struct Scrubber {
    home: Option<memchr::memmem::Finder<'static>>,
    /// The parent of `$HOME`, lower-cased: one more home-directory root.
    home_parent: Option<String>,
    /// Longest first, so that a host's full name wins over its first part.
    names: Vec<Name>,
    /// Finds the keywords and `names`.
    /// Built on first use, once the names are all known: building the
    /// automaton is the costly part of making a scrubber.
    finder: std::sync::Arc<OnceLock<Finder>>,
    /// Only for measuring what scrubbing costs (the benchmark).
    disabled: bool,
}

impl Scrubber {
    /// From `$HOME`, the login name (`$USER`, `$LOGNAME`) and the host name
    /// (`gethostname`, and `$HOSTNAME` when set).
    pub fn from_env() -> Scrubber {
        let home = std::env::var("HOME").ok();
        let user = std::env::var("USER")
            .or_else(|_| std::env::var("LOGNAME"))
            .ok();
        let mut s = Scrubber::new(home.as_deref(), user.as_deref());
        if let Some(h) = system_hostname() {
            s = s.with_hostname(&h);
        }
        if let Ok(h) = std::env::var("HOSTNAME") {
            s = s.with_hostname(&h);
        }
        s
    }

    pub fn new(home: Option<&str>, user: Option<&str>) -> Scrubber {
        let home = home
            .map(|h| h.trim_end_matches('/').to_string())
            .filter(|h| h.len() > 1); // HOME=/ would turn every path into ~
        // The directory holding home directories (`/gpfs/home` for
        // `/gpfs/home/alice`); `/` would make every top directory one.
        let home_parent = home
            .as_deref()
            .and_then(|h| h.rsplit_once('/'))
            .map(|(parent, _)| parent.to_lowercase())
            .filter(|p| !p.is_empty());
        let names = user
            .and_then(|u| Name::new(u, NameKind::User))
            .into_iter()
            .collect();
        Scrubber {
            home: home.map(|h| memchr::memmem::Finder::new(h.as_bytes()).into_owned()),
            home_parent,
            names,
            finder: std::sync::Arc::new(OnceLock::new()),
            disabled: false,
        }
        .with_names_found()
    }

    fn with_names_found(mut self) -> Scrubber {
        self.names.sort_by_key(|n| std::cmp::Reverse(n.lower.len()));
        self.names.dedup_by(|a, b| a.lower == b.lower);
        self.finder = std::sync::Arc::new(OnceLock::new());
        self
    }

    /// Also masks the machine's host name `host` (and its first label, for
    /// a fully qualified one).
    pub fn with_hostname(mut self, host: &str) -> Scrubber {
        let host = host.trim().trim_end_matches('.');
        self.names.extend(Name::new(host, NameKind::Host));
        if let Some((short, _)) = host.split_once('.') {
            self.names.extend(Name::new(short, NameKind::Host));
        }
        self.with_names_found()
    }

    /// A scrubber that masks nothing, to measure the cost of scrubbing
    /// (benches/scrub.rs). Never use it for a report.
    #[doc(hidden)]
    pub fn disabled() -> Scrubber {
        Scrubber {
            disabled: true,
            ..Scrubber::new(None, None)
        }
    }

    pub fn scrub(&self, text: &str) -> String {
        if self.disabled {
            return text.to_string();
        }
        let mut spans = Spans::default();
        let rules = &*RULES;
        let bytes = text.as_bytes();
        let seen = entropy_spans(&rules.entropy, bytes, &mut spans);
        let bits = self
            .finder
            .get_or_init(|| Finder::new(&self.names))
            .scan(bytes, |s, e| self.name_span(s, e, text, &mut spans));
        for i in rules.candidates(bytes, bits, seen) {
            rule_spans(rules, i, text, &mut spans);
        }
        if let Some(home) = &self.home {
            home_spans(home, text, &mut spans);
        }

        spans.apply(text)
    }

    /// The name found at `s..e`, if it names the user or the machine here.
    fn name_span(&self, s: usize, e: usize, text: &str, spans: &mut Spans) {
        if !text.is_char_boundary(s) || !text.is_char_boundary(e) {
            return;
        }
        let found = &text[s..e];
        let is = |n: &&Name| {
            if found.is_ascii() {
                n.lower.eq_ignore_ascii_case(found)
            } else {
                n.lower == found.to_lowercase()
            }
        };
        // Case folding may pair up characters that lower-casing does not:
        // such a match is taken for the user's name, to be safe.
        let (kind, ordinary) = self
            .names
            .iter()
            .find(is)
            .map_or((NameKind::User, false), |n| (n.kind, n.ordinary));
        let before = text[..s].chars().next_back();
        let after = text[e..].chars().next();
        let whole = match kind {
            // `alice_2024`, `Alice:`, `run-alice` but not `malice`.
            NameKind::User => {
                before.is_none_or(|c| !c.is_alphabetic())
                    && after.is_none_or(|c| !c.is_alphabetic())
            }
            NameKind::Host => {
                before.is_none_or(|c| !c.is_alphanumeric() && c != '-')
                    && after.is_none_or(|c| !c.is_alphanumeric() && c != '-')
            }
        };
        if !whole {
            return;
        }
        let names_it = match kind {
            NameKind::User => {
                (after == Some('@') && before.is_none_or(|c| !is_path_char(c)))
                    || (self.under_home_root(&text[..s]) && after.is_none_or(|c| !is_path_char(c)))
            }
            NameKind::Host => {
                before == Some('@') || text[..s].ends_with("//") || before == Some('\\')
            }
        };
        if !ordinary || names_it {
            let mask = match kind {
                NameKind::User => USER_MASK,
                NameKind::Host => HOST_MASK,
            };
            spans.push(s, e, mask);
        }
    }

    /// Whether `before` ends with a home-directory root and a separator
    /// (`/home/`, `/Users/`, `C:\Users\`, `/scratch/`, the parent of
    /// `$HOME`), the root standing at the start of a path.
    fn under_home_root(&self, before: &str) -> bool {
        let Some(rest) = before.strip_suffix(['/', '\\']) else {
            return false;
        };
        let rest = rest.as_bytes();
        let roots = HOME_ROOTS
            .iter()
            .copied()
            .chain(self.home_parent.as_deref());
        for root in roots {
            let root = root.as_bytes();
            // Either separator (`C:\Users`, `c:/users`), in any case; only
            // the end is looked at, so this stays linear.
            let Some(head_len) = rest.len().checked_sub(root.len()) else {
                continue;
            };
            let same = rest[head_len..]
                .iter()
                .zip(root)
                .all(|(a, b)| a.eq_ignore_ascii_case(b) || (*b == b'/' && *a == b'\\'));
            if !same {
                continue;
            }
            let head = &rest[..head_len];
            // A drive letter in front of a Windows root.
            let head = match head {
                [h @ .., d, b':'] if d.is_ascii_alphabetic() => h,
                _ => head,
            };
            // The root starts a path: nothing of a name right before it.
            let before_root = head.last().map(|&b| b as char);
            if before_root.is_none_or(|c| c.is_ascii() && !is_path_char(c)) {
                return true;
            }
        }
        false
    }
}

/// The home directory where a path starts with it: at the start, or after
/// something that cannot be part of a path (`/data/root/cci` is not
/// `$HOME=/root`), and followed by a separator or the path's end.
fn home_spans(home: &memchr::memmem::Finder<'_>, text: &str, spans: &mut Spans) {
    let len = home.needle().len();
    for i in home.find_iter(text.as_bytes()) {
        let end = i + len;
        if !text.is_char_boundary(i) || !text.is_char_boundary(end) {
            continue;
        }
        let before = text[..i].chars().next_back();
        let after = text[end..].chars().next();
        if before.is_none_or(|c| !is_path_char(c) && c != '/' && c != '\\')
            && after.is_none_or(|c| !is_name_char(c))
        {
            spans.push(i, end, HOME_MASK);
        }
    }
}

/// Characters of a file or directory name.
fn is_name_char(c: char) -> bool {
    c.is_alphanumeric() || matches!(c, '_' | '-' | '.')
}

/// Characters inside a path (a name, or a separator).
fn is_path_char(c: char) -> bool {
    is_name_char(c) || c == '~'
}

/// Spans of rule `i` in `text`.
fn rule_spans(rules: &Rules, i: usize, text: &str, spans: &mut Spans) {
    let re = rules.regex(i);
    let bytes = text.as_bytes();
    match rules.kinds[i] {
        Rule::Token | Rule::UrlCredentials | Rule::Bearer => {
            for c in re.captures_iter(bytes) {
                if let Some(m) = c.name("secret").or_else(|| c.get(0)) {
                    spans.push(m.start(), m.end(), MASK);
                }
            }
        }
        Rule::Basic => {
            // `Basic` is also an English word: mask what follows it only when
            // that looks like a credential, not like the next word.
            for c in re.captures_iter(bytes) {
                let Some(m) = c.name("secret") else { continue };
                let v = m.as_bytes();
                let credential_like = v.iter().any(|b| b.is_ascii_digit() || b"+=".contains(b))
                    || v.iter().skip(1).any(u8::is_ascii_uppercase);
                if credential_like {
                    spans.push(m.start(), m.end(), MASK);
                }
            }
        }
        Rule::KeyValue | Rule::DashKey => {
            for c in re.captures_iter(bytes) {
                let (Some(key), Some(value)) = (c.name("key"), c.name("value")) else {
                    continue;
                };
                key_value_span(
                    rules,
                    text,
                    key.as_bytes(),
                    value.start(),
                    value.end(),
                    spans,
                );
            }
        }
        Rule::Email => {
            for m in re.find_iter(bytes) {
                // `https://user:pw@host` is a URL's credentials (masked as
                // such, the public host kept), not an address.
                // Looking back a bounded way keeps this linear.
                let floor = m.start().saturating_sub(256);
                let word_start = bytes[floor..m.start()]
                    .iter()
                    .rposition(u8::is_ascii_whitespace)
                    .map_or(floor, |p| floor + p + 1);
                let in_url = bytes[word_start..m.start()]
                    .windows(3)
                    .rposition(|w| w == b"://")
                    .is_some_and(|p| !bytes[word_start + p + 3..m.start()].contains(&b'/'));
                if !in_url {
                    spans.push(m.start(), m.end(), EMAIL_MASK);
                }
            }
        }
        Rule::Ipv4 => {
            for m in re.find_iter(bytes) {
                let before = bytes[..m.start()].last();
                let after = &bytes[m.end()..];
                let standalone = before.is_none_or(|b| !b.is_ascii_digit() && *b != b'.')
                    && !after.first().is_some_and(u8::is_ascii_digit)
                    && !(after.first() == Some(&b'.')
                        && after.get(1).is_some_and(u8::is_ascii_digit));
                let private = std::str::from_utf8(m.as_bytes())
                    .ok()
                    .and_then(|s| s.parse::<std::net::Ipv4Addr>().ok())
                    .is_some_and(is_private_v4);
                if standalone && private {
                    spans.push(m.start(), m.end(), IP_MASK);
                }
            }
        }
        Rule::Ipv6 => {
            for m in re.find_iter(bytes) {
                let s = std::str::from_utf8(m.as_bytes()).unwrap_or("");
                let addr = s.split('%').next().unwrap_or("");
                let before = bytes[..m.start()].last();
                let standalone = before.is_none_or(|b| !b.is_ascii_alphanumeric());
                if standalone
                    && addr
                        .parse::<std::net::Ipv6Addr>()
                        .is_ok_and(|a| is_private_v6(&a))
                {
                    spans.push(m.start(), m.end(), IP_MASK);
                }
            }
        }
    }
}

/// The span of a secret-named key's value: the inside of its quotes, else
/// the bare value; for a header like `Cookie:` the rest of the line, after
/// an auth scheme if there is one.
fn key_value_span(
    rules: &Rules,
    text: &str,
    key: &[u8],
    start: usize,
    end: usize,
    spans: &mut Spans,
) {
    let bytes = text.as_bytes();
    let key = String::from_utf8_lossy(key).to_ascii_lowercase();
    let value = &bytes[start..end];
    let scheme_len = |v: &[u8]| {
        SCHEMES.iter().find_map(|s| {
            let n = s.len();
            (v.len() > n
                && v[..n].eq_ignore_ascii_case(s.as_bytes())
                && matches!(v[n], b' ' | b'\t'))
            .then_some(n + 1)
        })
    };
    if rules.whole_line.iter().any(|w| key.ends_with(w.as_str())) {
        let line_end = bytes[start..]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(bytes.len(), |p| start + p);
        let rest = &bytes[start..line_end];
        let from = start + scheme_len(rest).unwrap_or(0);
        if from < line_end {
            spans.push(from, line_end, MASK);
        }
        return;
    }
    // `token: Bearer x`: the scheme stays, the Bearer rule masks x.
    if SCHEMES
        .iter()
        .any(|s| value.eq_ignore_ascii_case(s.as_bytes()))
    {
        return;
    }
    let (mut s, mut e) = (start, end);
    if bytes[s] == b'\\' {
        s += 1;
    }
    if matches!(bytes[s], b'"' | b'\'') {
        let q = bytes[s];
        s += 1;
        if e > s && bytes[e - 1] == q {
            e -= 1;
        }
        if e > s && bytes[e - 1] == b'\\' {
            e -= 1;
        }
    }
    if e > s && &bytes[s..e] != MASK.as_bytes() {
        spans.push(s, e, MASK);
    }
}

fn is_private_v4(a: std::net::Ipv4Addr) -> bool {
    let o = a.octets();
    a.is_private()
        || a.is_link_local()
        // Shared address space (RFC 6598), used by carrier NAT and VPNs.
        || (o[0] == 100 && (64..128).contains(&o[1]))
}

fn is_private_v6(a: &std::net::Ipv6Addr) -> bool {
    let s = a.segments();
    // Unique local (fc00::/7) and link-local (fe80::/10).
    (s[0] & 0xfe00) == 0xfc00 || (s[0] & 0xffc0) == 0xfe80
}

const B64: u8 = 1;
const DOT: u8 = 2;
const COLON: u8 = 4;
const AT: u8 = 8;

/// What each byte is, for the one scan over a text: base64 (standard and
/// URL-safe), or a separator an address needs.
static CLASS: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        t[b] = if c.is_ascii_alphanumeric() || matches!(c, b'+' | b'/' | b'=' | b'_' | b'-') {
            B64
        } else if c == b'.' {
            DOT
        } else if c == b':' {
            COLON
        } else if c == b'@' {
            AT
        } else {
            0
        };
        b += 1;
    }
    t
};

/// Long runs of base64 or hex characters that look random (detect-secrets'
/// Shannon-entropy test), except paths.
fn entropy_spans(limits: &Entropy, bytes: &[u8], spans: &mut Spans) -> Seen {
    let mut seen = Seen::default();
    let mut i = 0;
    while i < bytes.len() {
        let class = CLASS[bytes[i] as usize];
        if class & B64 == 0 {
            seen.dots += usize::from(class & DOT != 0);
            seen.colons += usize::from(class & COLON != 0);
            seen.at |= class & AT != 0;
            i += 1;
            continue;
        }
        let start = i;
        while i < bytes.len() && CLASS[bytes[i] as usize] & B64 != 0 {
            i += 1;
        }
        let run = &bytes[start..i];
        if run.len() < limits.hex_min_len.min(limits.base64_min_len) {
            continue;
        }
        // Hex parts (`sha256-<hex>`, `key-<hex>`); not the toolchain's
        // public commit in a Rust backtrace's `/rustc/<hash>/` paths.
        let mut off = start;
        for part in run.split(|b| !b.is_ascii_alphanumeric()) {
            if part.len() >= limits.hex_min_len
                && part.iter().all(u8::is_ascii_hexdigit)
                && part.iter().any(u8::is_ascii_alphabetic)
                && !bytes[..off].ends_with(b"/rustc/")
                && shannon(part) >= limits.hex_limit
            {
                spans.push(off, off + part.len(), MASK);
            }
            off += part.len() + 1;
        }
        // A path (`/opt/x/...`, `python3.11/site-packages/...`) is not a
        // secret as a whole; but its parts that are not words, taken
        // together, may be one (a base64 key holds `/` too).
        let before = start.checked_sub(1).map(|p| bytes[p]);
        let path = run[0] == b'/' || matches!(before, Some(b'.' | b'~' | b'\\'));
        if !path {
            base64_span(limits, start, run, spans);
            continue;
        }
        let mut off = start;
        let mut chain: Option<(usize, usize)> = None;
        for seg in run.split(|&b| b == b'/') {
            if is_word(seg) {
                if let Some((s, e)) = chain.take() {
                    base64_span(limits, s, &bytes[s..e], spans);
                }
            } else {
                let (s, _) = chain.unwrap_or((off, off));
                chain = Some((s, off + seg.len()));
            }
            off += seg.len() + 1;
        }
        if let Some((s, e)) = chain {
            base64_span(limits, s, &bytes[s..e], spans);
        }
    }
    seen
}

/// A path segment that reads as a name: `site-packages`, `python311`,
/// `Library`, `CDR`; not `bFEtrXlY` or `Q+eeY`.
fn is_word(seg: &[u8]) -> bool {
    let tail = seg.get(1..).unwrap_or(&[]);
    let plain = |b: &u8| matches!(b, b'_' | b'-' | b'.') || b.is_ascii_digit();
    tail.iter().all(|b| b.is_ascii_lowercase() || plain(b))
        || seg.iter().all(|b| b.is_ascii_uppercase() || plain(b))
}

fn base64_span(limits: &Entropy, start: usize, c: &[u8], spans: &mut Spans) {
    if c.len() >= limits.base64_min_len
        && c.iter().any(u8::is_ascii_digit)
        && c.iter().any(u8::is_ascii_uppercase)
        && c.iter().any(u8::is_ascii_lowercase)
        && shannon(c) >= limits.base64_limit
    {
        spans.push(start, start + c.len(), MASK);
    }
}

/// Shannon entropy in bits per character. `log2` from the pure-Rust
/// `libm` crate, not `f64::log2`: that one is the system's libm, whose
/// loading would cost every start of ect-run (README, Benchmarks).
fn shannon(s: &[u8]) -> f64 {
    let mut counts = [0u32; 256];
    for &b in s {
        counts[b as usize] += 1;
    }
    let n = s.len() as f64;
    counts
        .iter()
        .filter(|&&c| c > 0)
        .map(|&c| {
            let p = f64::from(c) / n;
            -p * libm::log2(p)
        })
        .sum()
}

/// Byte ranges to replace, each with its mask.
#[derive(Default)]
struct Spans(Vec<(usize, usize, &'static str)>);

impl Spans {
    fn push(&mut self, start: usize, end: usize, mask: &'static str) {
        if start < end {
            self.0.push((start, end, mask));
        }
    }

    /// The text with every range replaced; overlapping ranges become one,
    /// masked as the widest of them says (an e-mail address over the user
    /// name in it, the home directory over the user name in it).
    fn apply(mut self, text: &str) -> String {
        if self.0.is_empty() {
            return text.to_string();
        }
        self.0
            .sort_by(|a, b| a.0.cmp(&b.0).then((b.1 - b.0).cmp(&(a.1 - a.0))));
        let mut out = String::with_capacity(text.len());
        let mut pos = 0;
        let mut iter = self.0.into_iter().peekable();
        while let Some((mut start, mut end, mut mask)) = iter.next() {
            let mut widest = end - start;
            while let Some(&(s, e, m)) = iter.peek() {
                if s >= end {
                    break;
                }
                if e - s > widest {
                    widest = e - s;
                    mask = m;
                }
                end = end.max(e);
                iter.next();
            }
            // Whole characters only (a byte class may stop inside one).
            start = start.max(pos);
            while !text.is_char_boundary(start) {
                start -= 1;
            }
            while !text.is_char_boundary(end) {
                end += 1;
            }
            if start < pos {
                start = pos;
            }
            out.push_str(&text[pos..start]);
            out.push_str(mask);
            pos = end;
        }
        out.push_str(&text[pos..]);
        out
    }
}

/// The machine's host name, from `gethostname(2)`, else `/etc/hostname`.
fn system_hostname() -> Option<String> {
    let mut buf = [0u8; 256];
    // SAFETY: `buf` is valid for writes of `buf.len()` bytes; the result is
    // read only up to the first NUL, and not at all on failure.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc == 0
        && let Some(end) = buf.iter().position(|&b| b == 0)
        && let Ok(s) = std::str::from_utf8(&buf[..end])
    {
        return Some(s.to_string());
    }
    std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|s| s.trim().to_string())
}

#[cfg(test)]
mod tests;
