//! Capture of the child's stderr: every byte is passed through to our own
//! stderr as soon as it is read, and the last `limit` bytes are kept for
//! analysis.
//!
//! Invariants: memory is bounded by the tail limit plus one read buffer,
//! whatever the child prints (gigabytes, or one line of hundreds of megabytes
//! with no newline: nothing here looks for line ends). A failure to write our
//! own stderr (closed, or a broken pipe) stops the pass-through but never the
//! draining, so the child is never blocked on a full pipe nor killed by
//! SIGPIPE because of us.

use std::io::{self, Read, Write};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

/// Default number of stderr bytes kept for analysis: 1 MiB.
pub const DEFAULT_TAIL_LIMIT: usize = 1 << 20;

/// Size of one read from the child's pipe. 64 KiB is the Linux pipe's
/// default capacity, so one read usually empties it.
const CHUNK: usize = 64 * 1024;

/// A ring buffer holding the last `limit` bytes written to it.
#[derive(Debug)]
pub struct Tail {
    buf: Vec<u8>,
    limit: usize,
    /// Where the next byte goes once `buf` is full.
    head: usize,
    /// Total bytes ever pushed; tells whether the start was cut off.
    total: u64,
}

impl Tail {
    pub fn new(limit: usize) -> Tail {
        Tail {
            buf: Vec::new(),
            limit,
            head: 0,
            total: 0,
        }
    }

    pub fn push(&mut self, mut data: &[u8]) {
        self.total += data.len() as u64;
        if self.limit == 0 {
            return;
        }
        if data.len() >= self.limit {
            // Only the last `limit` bytes of this chunk can survive.
            data = &data[data.len() - self.limit..];
            self.buf.clear();
            self.buf.extend_from_slice(data);
            self.head = 0;
            return;
        }
        let room = self.limit - self.buf.len();
        if room > 0 {
            let n = room.min(data.len());
            self.buf.extend_from_slice(&data[..n]);
            data = &data[n..];
        }
        while !data.is_empty() {
            let n = (self.limit - self.head).min(data.len());
            self.buf[self.head..self.head + n].copy_from_slice(&data[..n]);
            self.head = (self.head + n) % self.limit;
            data = &data[n..];
        }
    }

    /// The kept bytes, oldest first.
    pub fn contents(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.buf.len());
        out.extend_from_slice(&self.buf[self.head..]);
        out.extend_from_slice(&self.buf[..self.head]);
        out
    }

    /// True when more bytes were pushed than kept, so the text's start is
    /// missing (a parser must not trust the first line to be whole).
    pub fn truncated(&self) -> bool {
        self.total > self.buf.len() as u64
    }

    /// The last `limit` bytes of a whole stream, read in bounded memory.
    pub fn read_from(mut source: impl Read, limit: usize) -> io::Result<Tail> {
        let mut tail = Tail::new(limit);
        let mut buf = vec![0u8; CHUNK];
        loop {
            match source.read(&mut buf) {
                Ok(0) => return Ok(tail),
                Ok(n) => tail.push(&buf[..n]),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }
}

/// What was captured once the stream ended (or was abandoned).
#[derive(Debug)]
pub struct Captured {
    pub tail: Vec<u8>,
    pub truncated: bool,
}

/// A running tee of one stream.
#[derive(Debug)]
pub struct Tee {
    tail: Arc<Mutex<Tail>>,
    done: mpsc::Receiver<()>,
    thread: Option<thread::JoinHandle<()>>,
}

impl Tee {
    /// Starts copying `source` to `sink` on its own thread.
    pub fn start<R, W>(mut source: R, mut sink: W, limit: usize) -> io::Result<Tee>
    where
        R: Read + Send + 'static,
        W: Write + Send + 'static,
    {
        let tail = Arc::new(Mutex::new(Tail::new(limit)));
        let (tx, done) = mpsc::channel();
        let shared = Arc::clone(&tail);
        let thread = thread::Builder::new()
            .name("ect-run-stderr".into())
            .spawn(move || {
                let mut buf = vec![0u8; CHUNK];
                let mut sink_ok = true;
                loop {
                    let n = match source.read(&mut buf) {
                        Ok(0) => break,
                        Ok(n) => n,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                        Err(_) => break,
                    };
                    // Pass through first: the user sees output before we spend
                    // any time on bookkeeping.
                    if sink_ok
                        && sink
                            .write_all(&buf[..n])
                            .and_then(|()| sink.flush())
                            .is_err()
                    {
                        // Our stderr is gone (EPIPE, EBADF): keep draining so
                        // the child runs on undisturbed.
                        sink_ok = false;
                    }
                    if let Ok(mut t) = shared.lock() {
                        t.push(&buf[..n]);
                    }
                }
                let _ = tx.send(());
            })?;
        Ok(Tee {
            tail,
            done,
            thread: Some(thread),
        })
    }

    /// Waits for the stream to end, then returns what was kept.
    ///
    /// `grace` bounds the wait: the child has exited when this is called, so
    /// an open pipe now means a grandchild inherited it (a daemon, say). We
    /// must not hang on it, so after `grace` we take what we have.
    pub fn finish(mut self, grace: Duration) -> Captured {
        if self.done.recv_timeout(grace).is_ok()
            && let Some(t) = self.thread.take()
        {
            let _ = t.join();
        }
        let t = match self.tail.lock() {
            Ok(t) => t,
            Err(poisoned) => poisoned.into_inner(),
        };
        Captured {
            tail: t.contents(),
            truncated: t.truncated(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tail_keeps_last_bytes() {
        type Case<'a> = (usize, &'a [&'a [u8]], &'a [u8]);
        let cases: &[Case] = &[
            (4, &[b"ab"], b"ab"),
            (4, &[b"abcd"], b"abcd"),
            (4, &[b"abcdef"], b"cdef"),
            (4, &[b"ab", b"cd", b"ef"], b"cdef"),
            (4, &[b"abc", b"defgh", b"i"], b"fghi"),
            (3, &[b"a", b"b", b"c", b"d", b"e"], b"cde"),
            (0, &[b"abc"], b""),
        ];
        for (limit, chunks, want) in cases {
            let mut t = Tail::new(*limit);
            for c in *chunks {
                t.push(c);
            }
            assert_eq!(t.contents(), *want, "limit {limit} chunks {chunks:?}");
        }
    }

    #[test]
    fn tail_reports_truncation() {
        let mut t = Tail::new(4);
        t.push(b"abcd");
        assert!(!t.truncated());
        t.push(b"e");
        assert!(t.truncated());
        assert_eq!(t.contents(), b"bcde");
    }

    #[test]
    fn tee_passes_through_and_keeps_tail() {
        let (reader, mut writer) = os_pipe::pipe().unwrap();
        let sink = Arc::new(Mutex::new(Vec::new()));
        struct Shared(Arc<Mutex<Vec<u8>>>);
        impl Write for Shared {
            fn write(&mut self, b: &[u8]) -> io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(b);
                Ok(b.len())
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let tee = Tee::start(reader, Shared(Arc::clone(&sink)), 5).unwrap();
        writer.write_all(b"hello\0\xffworld").unwrap();
        drop(writer);
        let got = tee.finish(Duration::from_secs(5));
        assert_eq!(&*sink.lock().unwrap(), b"hello\0\xffworld");
        assert_eq!(got.tail, b"world");
        assert!(got.truncated);
    }

    #[test]
    fn tee_keeps_draining_when_sink_fails() {
        struct Broken;
        impl Write for Broken {
            fn write(&mut self, _: &[u8]) -> io::Result<usize> {
                Err(io::Error::from(io::ErrorKind::BrokenPipe))
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let (reader, mut writer) = os_pipe::pipe().unwrap();
        let tee = Tee::start(reader, Broken, 8).unwrap();
        // More than a pipe's capacity: would block forever if not drained.
        let big = vec![b'x'; 1 << 20];
        writer.write_all(&big).unwrap();
        writer.write_all(b"12345678").unwrap();
        drop(writer);
        let got = tee.finish(Duration::from_secs(5));
        assert_eq!(got.tail, b"12345678");
    }
}
