//! A tiny, std-only HTTP/1.1 server on 127.0.0.1 for integration tests.
//!
//! Every connection is handled on its own (detached) thread. Each connection
//! carries exactly one request: the request line, headers and body
//! (`Content-Length` or `Transfer-Encoding: chunked`) are read completely,
//! the request is recorded, and only then is it answered according to the
//! current [`Behavior`], always with `Connection: close`.
//!
//! Dropping the [`TestServer`] stops the accept loop (a non-blocking listener
//! polled every couple of milliseconds), closes the listener, and shuts down
//! every connection that is still open — including connections held by
//! [`Behavior::Hang`] — so nothing ever keeps the test process alive.
//!
//! Requests that are never completed by the client (connection closed before
//! the end of the headers or body, or a malformed request line/framing) are
//! not recorded; malformed ones are answered with `400 Bad Request`.

// Each integration test binary uses a different subset of this module, and
// panicking on setup failure is the right thing for a test helper.
#![allow(dead_code, clippy::expect_used, clippy::unwrap_used)]

use std::collections::HashMap;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// How often the accept loop polls the non-blocking listener.
const ACCEPT_POLL: Duration = Duration::from_millis(2);
/// Safety net: a client that stalls mid-request is dropped after this long.
const READ_TIMEOUT: Duration = Duration::from_secs(30);
/// Longest request line / header line accepted.
const MAX_LINE: u64 = 64 * 1024;
/// Most header lines accepted in one request.
const MAX_HEADERS: usize = 256;

/// One recorded HTTP request.
#[derive(Clone, Debug)]
pub struct Request {
    /// e.g. `"POST"`.
    pub method: String,
    /// The raw request target, query string included (e.g. `"/v1/x?y=1"`).
    pub path: String,
    /// Header fields in arrival order, names as sent, values trimmed.
    pub headers: Vec<(String, String)>,
    /// The body, already de-chunked for `Transfer-Encoding: chunked`.
    pub body: Vec<u8>,
}

impl Request {
    /// First header with this name (ASCII case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body parsed as JSON; panics with the body in the message if it is not JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "body of request {} {} is not valid JSON ({e}); body was: {:?}",
                self.method,
                self.path,
                String::from_utf8_lossy(&self.body)
            )
        })
    }
}

/// How the server answers requests.
#[derive(Clone, Debug)]
pub enum Behavior {
    /// `200 OK`, `Content-Type: text/plain`, body `OK`.
    Ok,
    /// The given status with a short text/plain body such as `500 Internal Server Error`.
    Status(u16),
    /// The given status (e.g. 429 or 503) plus a `Retry-After` header with this value.
    RetryAfter(u16, String),
    /// Read and record the request, then never answer; the socket stays open
    /// until the server is dropped.
    Hang,
    /// The given 3xx status with a `Location` header.
    Redirect(u16, String),
    /// The given status when the body contains the text, else `200 OK`.
    RejectIfBodyContains(String, u16),
    /// `200 OK` after waiting this long.
    Delay(Duration),
    /// Read and record the request, then abort the connection with a TCP RST
    /// (`SO_LINGER` with a zero timeout set through `libc::setsockopt`; on
    /// non-unix targets the socket is merely dropped).
    Reset,
}

struct Shared {
    addr: SocketAddr,
    stop: AtomicBool,
    behavior: Mutex<Behavior>,
    requests: Mutex<Vec<Request>>,
    recorded: Condvar,
    /// Clones of every open connection, so Drop can shut them all down.
    /// Hung connections simply stay here until then.
    conns: Mutex<HashMap<u64, TcpStream>>,
    next_id: AtomicU64,
}

/// A recording HTTP server on `127.0.0.1:<ephemeral port>`.
pub struct TestServer {
    shared: Arc<Shared>,
    accept_thread: Option<JoinHandle<()>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panicking test thread must not poison the server for everyone else.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl TestServer {
    /// Starts a server answering every request with [`Behavior::Ok`].
    pub fn start() -> TestServer {
        TestServer::with_behavior(Behavior::Ok)
    }

    /// Starts a server answering every request with `b`.
    pub fn with_behavior(b: Behavior) -> TestServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("test server: bind 127.0.0.1:0");
        listener
            .set_nonblocking(true)
            .expect("test server: set listener non-blocking");
        let addr = listener.local_addr().expect("test server: local_addr");
        let shared = Arc::new(Shared {
            addr,
            stop: AtomicBool::new(false),
            behavior: Mutex::new(b),
            requests: Mutex::new(Vec::new()),
            recorded: Condvar::new(),
            conns: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(0),
        });
        let accept_shared = Arc::clone(&shared);
        let accept_thread = thread::Builder::new()
            .name(format!("test-server-{}", addr.port()))
            .spawn(move || accept_loop(listener, accept_shared))
            .expect("test server: spawn accept thread");
        TestServer {
            shared,
            accept_thread: Some(accept_thread),
        }
    }

    /// Changes how subsequent requests are answered. A request whose
    /// `requests()` entry is already visible has already picked its behavior.
    pub fn set_behavior(&self, b: Behavior) {
        *lock(&self.shared.behavior) = b;
    }

    /// `"http://127.0.0.1:PORT/"`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/", self.port())
    }

    pub fn port(&self) -> u16 {
        self.shared.addr.port()
    }

    /// Every request recorded so far, in the order they were completely read.
    pub fn requests(&self) -> Vec<Request> {
        lock(&self.shared.requests).clone()
    }

    /// Waits until at least `n` requests are recorded or `timeout` passes,
    /// then returns whatever has been recorded (check its length).
    pub fn wait_for_requests(&self, n: usize, timeout: Duration) -> Vec<Request> {
        let deadline = Instant::now() + timeout;
        let mut reqs = lock(&self.shared.requests);
        while reqs.len() < n {
            let now = Instant::now();
            if now >= deadline {
                break;
            }
            reqs = self
                .shared
                .recorded
                .wait_timeout(reqs, deadline - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        reqs.clone()
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.accept_thread.take() {
            // Exits within one poll interval; the listener is closed with it.
            let _ = t.join();
        }
        // No new connection can be registered now; release every open one
        // (this also wakes connection threads blocked in read).
        let conns: Vec<TcpStream> = lock(&self.shared.conns).drain().map(|(_, s)| s).collect();
        for s in conns {
            let _ = s.shutdown(Shutdown::Both);
        }
    }
}

/// `http://127.0.0.1:PORT/` for a port where nothing listens (bound to :0,
/// then released; another process could in theory grab it in between).
pub fn closed_port_url() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("closed_port_url: bind 127.0.0.1:0");
    let port = listener
        .local_addr()
        .expect("closed_port_url: local_addr")
        .port();
    drop(listener);
    format!("http://127.0.0.1:{port}/")
}

fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    while !shared.stop.load(Ordering::SeqCst) {
        match listener.accept() {
            Ok((stream, _)) => {
                // Some platforms make accepted sockets inherit O_NONBLOCK.
                if stream.set_nonblocking(false).is_err() {
                    continue;
                }
                let Ok(clone) = stream.try_clone() else {
                    continue;
                };
                let id = shared.next_id.fetch_add(1, Ordering::SeqCst);
                lock(&shared.conns).insert(id, clone);
                let conn_shared = Arc::clone(&shared);
                let spawned = thread::Builder::new()
                    .name(format!("test-server-conn-{id}"))
                    .spawn(move || handle_connection(stream, id, conn_shared));
                if spawned.is_err() {
                    lock(&shared.conns).remove(&id);
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => thread::sleep(ACCEPT_POLL),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            // e.g. ECONNABORTED or EMFILE: back off a little and keep going.
            Err(_) => thread::sleep(ACCEPT_POLL),
        }
    }
}

fn handle_connection(stream: TcpStream, id: u64, shared: Arc<Shared>) {
    let _ = stream.set_read_timeout(Some(READ_TIMEOUT));
    let mut reader = BufReader::new(&stream);
    let mut writer = &stream;

    let request = match read_request(&mut reader, &mut writer) {
        Ok(Some(r)) => r,
        Ok(None) => {
            // Client went away (or timed out) before finishing a request.
            lock(&shared.conns).remove(&id);
            return;
        }
        Err(msg) => {
            let _ = writer.write_all(&response(400, "Bad Request", &[], msg.as_bytes(), false));
            finish(&stream, &mut reader);
            lock(&shared.conns).remove(&id);
            return;
        }
    };

    // Pick the behavior before the request becomes visible, so a test that
    // sees request N and then calls set_behavior() only affects request N+1.
    let behavior = lock(&shared.behavior).clone();
    let head_only = request.method.eq_ignore_ascii_case("HEAD");
    let behavior = match behavior {
        Behavior::RejectIfBodyContains(text, code) => {
            if String::from_utf8_lossy(&request.body).contains(&text) {
                Behavior::Status(code)
            } else {
                Behavior::Ok
            }
        }
        other => other,
    };
    {
        let mut reqs = lock(&shared.requests);
        reqs.push(request);
        shared.recorded.notify_all();
    }

    match &behavior {
        Behavior::Ok => {
            let _ = writer.write_all(&response(200, "OK", &[], b"OK", head_only));
            finish(&stream, &mut reader);
        }
        &Behavior::Status(code) | &Behavior::RetryAfter(code, _) => {
            let retry_after = match &behavior {
                Behavior::RetryAfter(_, value) => vec![("Retry-After", value.as_str())],
                _ => Vec::new(),
            };
            let body = format!("{code} {}\n", reason(code));
            let resp = response(code, reason(code), &retry_after, body.as_bytes(), head_only);
            let _ = writer.write_all(&resp);
            finish(&stream, &mut reader);
        }
        Behavior::Redirect(code, location) => {
            let extra = [("Location", location.as_str())];
            let resp = response(*code, reason(*code), &extra, b"moved\n", head_only);
            let _ = writer.write_all(&resp);
            finish(&stream, &mut reader);
        }
        Behavior::Delay(d) => {
            std::thread::sleep(*d);
            let _ = writer.write_all(&response(200, "OK", &[], b"OK", head_only));
            finish(&stream, &mut reader);
        }
        Behavior::RejectIfBodyContains(..) => unreachable!("resolved above"),
        Behavior::Hang => {
            // Leave the clone registered in `conns`: it keeps the socket open
            // until TestServer::drop shuts it down. If the server is already
            // being dropped (clone drained), our own handle closes it here.
            return;
        }
        Behavior::Reset => {
            set_linger_zero(&stream);
            // Dropping both handles below closes the socket -> RST.
        }
    }
    lock(&shared.conns).remove(&id);
}

/// Graceful close: send FIN, then drain whatever the client still sends so
/// that closing does not turn into an RST that could eat the response.
fn finish(stream: &TcpStream, reader: &mut BufReader<&TcpStream>) {
    let _ = stream.shutdown(Shutdown::Write);
    let _ = stream.set_read_timeout(Some(Duration::from_millis(200)));
    let deadline = Instant::now() + Duration::from_secs(1);
    let mut buf = [0u8; 4096];
    while Instant::now() < deadline {
        match reader.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
    }
}

#[cfg(unix)]
fn set_linger_zero(stream: &TcpStream) {
    use std::os::unix::io::AsRawFd;
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: valid socket fd owned by `stream`; pointer and length describe
    // a properly initialised `libc::linger` that outlives the call.
    let rc = unsafe {
        libc::setsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&linger as *const libc::linger).cast::<libc::c_void>(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        )
    };
    debug_assert_eq!(
        rc,
        0,
        "setsockopt(SO_LINGER) failed: {}",
        io::Error::last_os_error()
    );
}

#[cfg(not(unix))]
fn set_linger_zero(_stream: &TcpStream) {}

/// Reads one line (up to `\n`), without the line ending. `Ok(None)` on EOF
/// before any byte; `Err` if the line is too long or cut short.
fn read_line(reader: &mut impl BufRead) -> Result<Option<String>, String> {
    let mut buf = Vec::new();
    match reader.by_ref().take(MAX_LINE).read_until(b'\n', &mut buf) {
        Ok(0) => return Ok(None),
        Ok(_) => {}
        Err(e) => return Err(format!("read error: {e}")),
    }
    if buf.last() != Some(&b'\n') {
        return Err("line too long or connection closed mid-line".to_string());
    }
    buf.pop();
    if buf.last() == Some(&b'\r') {
        buf.pop();
    }
    Ok(Some(String::from_utf8_lossy(&buf).into_owned()))
}

/// Like `read_line` but EOF is an error (we are in the middle of a request).
fn read_line_required(reader: &mut impl BufRead) -> Result<String, String> {
    read_line(reader)?.ok_or_else(|| "connection closed mid-request".to_string())
}

/// Reads one complete request. `Ok(None)` means the client closed (or timed
/// out) before sending a complete request — nothing to answer or record.
/// `Err` means a malformed request that should get a 400.
fn read_request(
    reader: &mut impl BufRead,
    writer: &mut impl Write,
) -> Result<Option<Request>, String> {
    // Request line, skipping stray empty lines (RFC 9112 §2.2).
    let line = loop {
        match read_line(reader) {
            Ok(Some(l)) if l.is_empty() => continue,
            Ok(Some(l)) => break l,
            Ok(None) | Err(_) => return Ok(None),
        }
    };
    let mut parts = line.split_whitespace();
    let (Some(method), Some(path), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(format!("malformed request line: {line:?}"));
    };
    if !version.starts_with("HTTP/") {
        return Err(format!("malformed request line: {line:?}"));
    }
    let (method, path) = (method.to_string(), path.to_string());

    let Ok(headers) = read_fields(reader) else {
        return Ok(None);
    };
    let find = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    };

    let chunked =
        find("Transfer-Encoding").is_some_and(|v| v.to_ascii_lowercase().contains("chunked"));
    let content_length = match find("Content-Length") {
        Some(v) if !chunked => Some(
            v.trim()
                .parse::<u64>()
                .map_err(|_| format!("bad Content-Length: {v:?}"))?,
        ),
        _ => None,
    };
    let has_body = chunked || content_length.is_some_and(|n| n > 0);
    if has_body && find("Expect").is_some_and(|v| v.eq_ignore_ascii_case("100-continue")) {
        let _ = writer.write_all(b"HTTP/1.1 100 Continue\r\n\r\n");
        let _ = writer.flush();
    }

    let body = if chunked {
        match read_chunked(reader) {
            Ok(b) => b,
            Err(ChunkError::Closed) => return Ok(None),
            Err(ChunkError::Malformed(m)) => return Err(m),
        }
    } else if let Some(len) = content_length {
        let mut body = Vec::new();
        match reader.by_ref().take(len).read_to_end(&mut body) {
            Ok(n) if n as u64 == len => body,
            _ => return Ok(None),
        }
    } else {
        Vec::new()
    };

    Ok(Some(Request {
        method,
        path,
        headers,
        body,
    }))
}

/// Header (or trailer) fields up to and including the empty line.
fn read_fields(reader: &mut impl BufRead) -> Result<Vec<(String, String)>, String> {
    let mut fields = Vec::new();
    loop {
        let line = read_line_required(reader)?;
        if line.is_empty() {
            return Ok(fields);
        }
        if fields.len() >= MAX_HEADERS {
            return Err("too many header fields".to_string());
        }
        // Lines without a colon are ignored rather than fatal.
        if let Some((name, value)) = line.split_once(':') {
            fields.push((name.trim().to_string(), value.trim().to_string()));
        }
    }
}

enum ChunkError {
    Closed,
    Malformed(String),
}

fn read_chunked(reader: &mut impl BufRead) -> Result<Vec<u8>, ChunkError> {
    let mut body = Vec::new();
    loop {
        let line = read_line_required(reader).map_err(|_| ChunkError::Closed)?;
        let size_str = line.split(';').next().unwrap_or("").trim();
        let size = u64::from_str_radix(size_str, 16)
            .map_err(|_| ChunkError::Malformed(format!("bad chunk size line: {line:?}")))?;
        if size == 0 {
            // Trailer section (ignored), ends with an empty line.
            read_fields(reader).map_err(|_| ChunkError::Closed)?;
            return Ok(body);
        }
        let start = body.len();
        let n = reader
            .by_ref()
            .take(size)
            .read_to_end(&mut body)
            .map_err(|_| ChunkError::Closed)?;
        if (n as u64) != size {
            return Err(ChunkError::Closed);
        }
        debug_assert_eq!(body.len() - start, n);
        let end = read_line_required(reader).map_err(|_| ChunkError::Closed)?;
        if !end.is_empty() {
            return Err(ChunkError::Malformed(
                "chunk data not followed by CRLF".to_string(),
            ));
        }
    }
}

fn response(
    code: u16,
    reason: &str,
    extra: &[(&str, &str)],
    body: &[u8],
    head_only: bool,
) -> Vec<u8> {
    let mut out = format!(
        "HTTP/1.1 {code} {reason}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for (name, value) in extra {
        out.push_str(&format!("{name}: {value}\r\n"));
    }
    out.push_str("\r\n");
    let mut out = out.into_bytes();
    if !head_only {
        out.extend_from_slice(body);
    }
    out
}

fn reason(code: u16) -> &'static str {
    match code {
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        204 => "No Content",
        301 => "Moved Permanently",
        302 => "Found",
        303 => "See Other",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        304 => "Not Modified",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        409 => "Conflict",
        413 => "Content Too Large",
        418 => "I'm a teapot",
        422 => "Unprocessable Content",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Status",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const WAIT: Duration = Duration::from_secs(5);

    fn connect(server: &TestServer) -> TcpStream {
        let s = TcpStream::connect(("127.0.0.1", server.port())).expect("connect to test server");
        s.set_read_timeout(Some(WAIT)).unwrap();
        s
    }

    /// Sends raw bytes and reads the whole response (server closes the connection).
    fn roundtrip(server: &TestServer, raw: &[u8]) -> String {
        let mut s = connect(server);
        s.write_all(raw).unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).expect("read response");
        out
    }

    #[test]
    fn ok_records_method_path_headers_body() {
        let server = TestServer::start();
        assert_eq!(server.url(), format!("http://127.0.0.1:{}/", server.port()));
        let body = r#"{"exit_code":3,"name":"job"}"#;
        let raw = format!(
            "POST /v1/ping?x=1 HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Test-Token: abc\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        let resp = roundtrip(&server, raw.as_bytes());
        assert!(resp.starts_with("HTTP/1.1 200 OK\r\n"), "{resp}");
        assert!(resp.contains("Connection: close\r\n"), "{resp}");
        assert!(resp.contains("Content-Type: text/plain\r\n"), "{resp}");
        assert!(resp.ends_with("\r\n\r\nOK"), "{resp}");

        let reqs = server.requests();
        assert_eq!(reqs.len(), 1);
        let r = &reqs[0];
        assert_eq!(r.method, "POST");
        assert_eq!(r.path, "/v1/ping?x=1");
        assert_eq!(r.header("x-test-token"), Some("abc"));
        assert_eq!(r.header("CONTENT-TYPE"), Some("application/json"));
        assert_eq!(r.header("missing"), None);
        assert_eq!(r.body, body.as_bytes());
        assert_eq!(r.json()["exit_code"], 3);
    }

    #[test]
    fn chunked_body_is_decoded() {
        let server = TestServer::start();
        let mut s = connect(&server);
        // Split across writes to exercise partial reads.
        s.write_all(b"PUT /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nWi")
            .unwrap();
        thread::sleep(Duration::from_millis(20));
        s.write_all(b"ki\r\n5;ext=1\r\npedia\r\n0\r\nX-Trailer: t\r\n\r\n")
            .unwrap();
        let mut resp = String::new();
        s.read_to_string(&mut resp).unwrap();
        assert!(resp.starts_with("HTTP/1.1 200 OK\r\n"), "{resp}");
        let reqs = server.requests();
        assert_eq!(reqs.len(), 1);
        assert_eq!(reqs[0].method, "PUT");
        assert_eq!(reqs[0].body, b"Wikipedia");
    }

    #[test]
    fn retry_after_and_status_behaviors() {
        let server = TestServer::with_behavior(Behavior::RetryAfter(429, "7".to_string()));
        let resp = roundtrip(&server, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
        assert!(
            resp.starts_with("HTTP/1.1 429 Too Many Requests\r\n"),
            "{resp}"
        );
        assert!(resp.contains("\r\nRetry-After: 7\r\n"), "{resp}");
        assert!(resp.contains("Connection: close\r\n"), "{resp}");

        server.set_behavior(Behavior::Status(500));
        let resp = roundtrip(&server, b"GET /again HTTP/1.1\r\nHost: x\r\n\r\n");
        assert!(
            resp.starts_with("HTTP/1.1 500 Internal Server Error\r\n"),
            "{resp}"
        );
        assert!(!resp.contains("Retry-After"), "{resp}");

        let paths: Vec<String> = server.requests().into_iter().map(|r| r.path).collect();
        assert_eq!(paths, ["/", "/again"]);
    }

    #[test]
    fn concurrent_clients_are_all_recorded() {
        let server = TestServer::start();
        let port = server.port();
        let clients: Vec<_> = (0..8)
            .map(|i| {
                thread::spawn(move || {
                    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
                    s.set_read_timeout(Some(WAIT)).unwrap();
                    let body = format!("client {i}");
                    let raw = format!(
                        "POST /c/{i} HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n{body}",
                        body.len()
                    );
                    s.write_all(raw.as_bytes()).unwrap();
                    let mut resp = String::new();
                    s.read_to_string(&mut resp).unwrap();
                    assert!(resp.ends_with("OK"), "{resp}");
                })
            })
            .collect();
        for c in clients {
            c.join().unwrap();
        }
        let reqs = server.wait_for_requests(8, WAIT);
        assert_eq!(reqs.len(), 8);
        let mut paths: Vec<String> = reqs.iter().map(|r| r.path.clone()).collect();
        paths.sort();
        let expected: Vec<String> = (0..8).map(|i| format!("/c/{i}")).collect();
        assert_eq!(paths, expected);
        for r in &reqs {
            let i = r.path.trim_start_matches("/c/");
            assert_eq!(r.body, format!("client {i}").as_bytes());
        }
    }

    #[test]
    fn hang_is_recorded_and_released_on_drop() {
        let server = TestServer::with_behavior(Behavior::Hang);
        let mut s = connect(&server);
        s.write_all(b"POST /h HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nhi")
            .unwrap();
        let reqs = server.wait_for_requests(1, WAIT);
        assert_eq!(reqs.len(), 1);
        assert_eq!(reqs[0].body, b"hi");

        // No answer while the server lives.
        s.set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        let mut buf = [0u8; 64];
        let err = s
            .read(&mut buf)
            .expect_err("hung connection must not answer");
        assert!(
            matches!(
                err.kind(),
                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
            ),
            "{err:?}"
        );

        let started = Instant::now();
        drop(server);
        assert!(
            // Polled every few milliseconds: seconds mean it hung.
            started.elapsed() < Duration::from_secs(5),
            "drop took {:?}",
            started.elapsed()
        );

        // The client now sees the connection closed (EOF or reset), not a timeout.
        s.set_read_timeout(Some(WAIT)).unwrap();
        let started = Instant::now();
        match s.read(&mut buf) {
            Ok(0) => {}
            Ok(n) => panic!("unexpected {n} bytes from hung connection"),
            Err(e) => assert_eq!(e.kind(), io::ErrorKind::ConnectionReset, "{e:?}"),
        }
        assert!(started.elapsed() < Duration::from_secs(2));
    }

    #[test]
    fn reset_is_recorded_and_aborts() {
        let server = TestServer::with_behavior(Behavior::Reset);
        let mut s = connect(&server);
        s.write_all(b"GET /r HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        let mut buf = Vec::new();
        let res = s.read_to_end(&mut buf);
        assert!(buf.is_empty(), "no response bytes expected");
        if cfg!(unix) {
            let err = res.expect_err("expected a connection reset");
            assert_eq!(err.kind(), io::ErrorKind::ConnectionReset, "{err:?}");
        }
        assert_eq!(server.wait_for_requests(1, WAIT).len(), 1);
        assert_eq!(server.requests()[0].path, "/r");
    }

    #[test]
    fn closed_port_refuses() {
        let url = closed_port_url();
        let port: u16 = url
            .trim_start_matches("http://127.0.0.1:")
            .trim_end_matches('/')
            .parse()
            .unwrap();
        assert!(TcpStream::connect(("127.0.0.1", port)).is_err());
    }
}
