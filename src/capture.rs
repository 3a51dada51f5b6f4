//! Capture of the child's stderr: every byte is passed through to our own
//! stderr as soon as it is read, and the last `limit` bytes are kept for
//! analysis. The reading is driven by [`crate::supervise`]'s loop (no thread
//! of its own).
//!
//! Invariants: memory is bounded by the tail limit plus one read buffer,
//! whatever the child prints (gigabytes, or one line of hundreds of megabytes
//! with no newline: nothing here looks for line ends). A failure to write our
//! own stderr (closed, or a broken pipe) stops the pass-through but never the
//! draining, so the child is never blocked on a full pipe nor killed by
//! SIGPIPE because of us.

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::AsRawFd;

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

/// The tee of one stream, driven by its owner's loop: each [`Copier::pump`]
/// reads one chunk, passes it through, and keeps the tail.
#[derive(Debug)]
pub struct Copier {
    tail: Tail,
    buf: Vec<u8>,
    sink_ok: bool,
}

impl Copier {
    pub fn new(limit: usize) -> Copier {
        Copier {
            tail: Tail::new(limit),
            buf: vec![0u8; CHUNK],
            sink_ok: true,
        }
    }

    /// Reads one chunk from `source` and passes it to `sink`; returns its
    /// length, 0 at end-of-file. A failing sink is dropped for good, the
    /// reading goes on.
    pub fn pump(&mut self, mut source: impl Read, sink: &mut impl Write) -> io::Result<usize> {
        let n = source.read(&mut self.buf)?;
        let data = &self.buf[..n];
        // Pass through first: the user sees output before we spend any time
        // on bookkeeping.
        if self.sink_ok && n > 0 && sink.write_all(data).and_then(|()| sink.flush()).is_err() {
            // Our stderr is gone (EPIPE, EBADF): keep draining so the child
            // runs on undisturbed.
            self.sink_ok = false;
        }
        self.tail.push(data);
        Ok(n)
    }

    /// Reads what `source` (a pipe) holds now, without waiting for more,
    /// up to about `limit` bytes. True when it reached end-of-file: no
    /// writer is left. `source` is left non-blocking.
    pub fn drain(&mut self, source: &File, sink: &mut impl Write, limit: usize) -> bool {
        let fd = source.as_raw_fd();
        // SAFETY: fcntl on an open fd borrowed for the call.
        unsafe {
            let flags = libc::fcntl(fd, libc::F_GETFL);
            libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK);
        }
        let mut read = 0;
        while read < limit {
            match self.pump(source, sink) {
                Ok(0) => return true,
                Ok(n) => read += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                // WouldBlock: a writer is left but has nothing more now.
                // Anything else: the pipe is unusable; treat it as ended.
                Err(e) => return e.kind() != io::ErrorKind::WouldBlock,
            }
        }
        false
    }

    /// Whether every byte so far reached the sink.
    pub fn sink_ok(&self) -> bool {
        self.sink_ok
    }

    /// What was kept.
    pub fn finish(self) -> Captured {
        Captured {
            tail: self.tail.contents(),
            truncated: self.tail.truncated(),
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
    fn copier_passes_through_and_keeps_tail() {
        let (reader, mut writer) = os_pipe::pipe().unwrap();
        let reader = File::from(std::os::fd::OwnedFd::from(reader));
        let mut sink = Vec::new();
        let mut c = Copier::new(5);
        writer.write_all(b"hello\0\xffworld").unwrap();
        drop(writer);
        while c.pump(&reader, &mut sink).unwrap() > 0 {}
        let got = c.finish();
        assert_eq!(sink, b"hello\0\xffworld");
        assert_eq!(got.tail, b"world");
        assert!(got.truncated);
    }

    #[test]
    fn copier_keeps_draining_when_sink_fails() {
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
        let reader = File::from(std::os::fd::OwnedFd::from(reader));
        let mut c = Copier::new(8);
        let feeder = std::thread::spawn(move || {
            // More than a pipe's capacity: would block forever if not drained.
            writer.write_all(&vec![b'x'; 1 << 20]).unwrap();
            writer.write_all(b"12345678").unwrap();
        });
        while c.pump(&reader, &mut Broken).unwrap() > 0 {}
        feeder.join().unwrap();
        assert!(!c.sink_ok());
        assert_eq!(c.finish().tail, b"12345678");
    }

    #[test]
    fn drain_tells_an_open_pipe_from_a_closed_one() {
        let (reader, mut writer) = os_pipe::pipe().unwrap();
        let reader = File::from(std::os::fd::OwnedFd::from(reader));
        let mut sink = Vec::new();
        let mut c = Copier::new(64);
        writer.write_all(b"left in the pipe").unwrap();
        // A writer is left: what is there is read, and no waiting.
        assert!(!c.drain(&reader, &mut sink, 1 << 20));
        assert_eq!(sink, b"left in the pipe");
        drop(writer);
        assert!(c.drain(&reader, &mut sink, 1 << 20));
    }
}
