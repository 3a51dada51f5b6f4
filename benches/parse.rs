//! Time and memory of analysing a stderr tail, against a single pass over
//! the same bytes (issue 11, requirement 5).
//!
//! Run with `cargo bench --bench parse` (or through `bash benches/run.sh`).
//! Only std and the library: no criterion, no rand.
//!
//! Shapes, built deterministically, each cut to the size measured (the
//! *last* bytes of a longer text, as the capture's ring buffer keeps them):
//!   1. log lines (timestamps, INFO) ending with a ~20-frame Python traceback;
//!   2. Python tracebacks joined into exception chains (about 10 000 per
//!      MiB... in blocks of three);
//!   3. `Traceback (most recent call last):` headers in a row (30 000 a MiB);
//!   4. the same tracebacks as 2, behind `srun --label` prefixes of 4
//!      interleaved ranks;
//!   5. random bytes (xorshift64*: invalid UTF-8, NULs, CRs, ESCs, few `\n`);
//!   6. one line with no newline;
//!   7. beyond the shapes, tracebacks of 1 000 frames in a row, the
//!      worst case of reading in windows.
//!
//! Every input is parsed with `truncated = false`, so the first (partial)
//! line is parsed too: the worst case.
//!
//! Baselines, measured in the same run: `wc -l` itself (coreutils), the
//! single pass of the issue, run on a file of 16 copies of the same bytes,
//! less its run on an empty file, per MiB: what its pass over the bytes
//! costs, without its start-up; and, interleaved iteration by iteration
//! with the analysis, a loop in this process that counts the `\n` bytes.
//! The machine is shared and noisy, so the ratios are the figures to trust.
//!
//! Linearity: the time per MiB at 1, 4, 16 and 64 MiB. Memory: the peak of
//! bytes allocated while analysing (a counting global allocator), over the
//! input's size.

#![allow(clippy::unwrap_used)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use ect_run::parse::parse_tail;

const MIB: usize = 1 << 20;
const WARMUP: usize = 5;
const ITERATIONS: usize = 40;
/// Target (issue 11): at most this many times a single pass (`wc -l`).
const TARGET_RATIO: f64 = 5.0;
/// Target: peak memory at most this many times the tail.
const TARGET_MEMORY: f64 = 2.0;

/// Counts the bytes allocated now and at the peak.
struct Counting;

static NOW: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards to the system allocator; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let now = NOW.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
        PEAK.fetch_max(now, Ordering::Relaxed);
        // SAFETY: the caller's contract is the system allocator's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        NOW.fetch_sub(layout.size(), Ordering::Relaxed);
        // SAFETY: as above.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new: usize) -> *mut u8 {
        if new > layout.size() {
            let now = NOW.fetch_add(new - layout.size(), Ordering::Relaxed) + new - layout.size();
            PEAK.fetch_max(now, Ordering::Relaxed);
        } else {
            NOW.fetch_sub(layout.size() - new, Ordering::Relaxed);
        }
        // SAFETY: as above.
        unsafe { System.realloc(ptr, layout, new) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Deterministic xorshift64* generator.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// The last `size` bytes of `text`, as the capture would keep them.
fn last(text: &[u8], size: usize) -> Vec<u8> {
    assert!(text.len() >= size, "input too short");
    text[text.len() - size..].to_vec()
}

const SITE: &str = "/home/alice/envs/ect/lib/python3.11/site-packages";

/// A realistic ~20-frame traceback ending in a toolbox operation.
fn traceback(rng: &mut XorShift, frames: usize, class: &str, message: &str) -> String {
    let mut s = String::from("Traceback (most recent call last):\n");
    s.push_str(&format!(
        "  File \"/home/alice/work/pipeline_{}.py\", line {}, in <module>\n    main()\n",
        rng.below(100),
        rng.below(400) + 1
    ));
    for k in 1..frames {
        let (pkg, module) = match k % 4 {
            0 => ("xarray/core", "dataset"),
            1 => ("esa_climate_toolbox/ops", "resample"),
            2 => ("dask/array", "core"),
            _ => ("esa_climate_toolbox/core", "cube"),
        };
        let func = format!("step_{k}_{}", rng.below(1000));
        let line = rng.below(3000) + 1;
        s.push_str(&format!(
            "  File \"{SITE}/{pkg}/{module}.py\", line {line}, in {func}\n"
        ));
        s.push_str(&format!(
            "    result = {func}(ds, var_name=\"analysed_sst\", chunks={{'time': {}}})\n",
            rng.below(64) + 1
        ));
        if k % 3 == 0 {
            // Python 3.11+ position markers.
            s.push_str("             ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^\n");
        }
    }
    s.push_str(&format!("{class}: {message}\n"));
    s
}

fn log_line(rng: &mut XorShift, n: u64) -> String {
    let h = (n / 3600) % 24;
    let m = (n / 60) % 60;
    let sec = n % 60;
    format!(
        "2024-05-01 {h:02}:{m:02}:{sec:02},{:03} INFO [worker-{}] esa_climate_toolbox.ops.compute: \
         processed chunk {}/{} of esacci-sst-{}.zarr ({}.{} MB/s)\n",
        rng.below(1000),
        rng.below(8),
        n,
        n + rng.below(100_000),
        2000 + rng.below(24),
        rng.below(200),
        rng.below(10)
    )
}

/// 1. Log lines, then a ~20-frame traceback at the very end.
fn logs_then_traceback(size: usize) -> Vec<u8> {
    let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
    let tb = traceback(
        &mut rng,
        20,
        "ValueError",
        "cannot resample variable 'analysed_sst': time coordinate is not monotonic",
    );
    let mut text = String::new();
    let mut n = 0u64;
    while text.len() + tb.len() < size + 4096 {
        text.push_str(&log_line(&mut rng, n));
        n += 1;
    }
    text.push_str(&tb);
    last(text.as_bytes(), size)
}

/// 2. Repeated chains of tracebacks: `During handling...` and `The above
///    exception was the direct cause...`, as a long-running service that
///    logs every failed job would print them.
fn repeated_chained_tracebacks(size: usize) -> Vec<u8> {
    let mut rng = XorShift(0xD1B5_4A32_D192_ED03);
    let mut text = String::new();
    let mut job = 0u64;
    while text.len() < size + 4096 {
        let frames = 3 + rng.below(12) as usize;
        text.push_str(&traceback(
            &mut rng,
            frames,
            "KeyError",
            &format!("'analysed_sst_{job}'"),
        ));
        text.push_str("\nDuring handling of the above exception, another exception occurred:\n\n");
        text.push_str(&traceback(
            &mut rng,
            frames / 2 + 2,
            "xarray.core.merge.MergeError",
            "conflicting values for variable 'lat' on objects to be combined",
        ));
        text.push_str("\nThe above exception was the direct cause of the following exception:\n\n");
        text.push_str(&traceback(
            &mut rng,
            4,
            "esa_climate_toolbox.core.ValidationError",
            &format!("job {job} failed: inputs cannot be merged"),
        ));
        job += 1;
    }
    last(text.as_bytes(), size)
}

/// 3. Random bytes.
fn random_bytes(size: usize) -> Vec<u8> {
    let mut rng = XorShift(0x0123_4567_89AB_CDEF);
    let mut out = Vec::with_capacity(size);
    while out.len() < size {
        out.extend_from_slice(&rng.next().to_le_bytes());
    }
    out.truncate(size);
    out
}

/// 3. `Traceback` headers in a row.
fn headers(size: usize) -> Vec<u8> {
    let h = "Traceback (most recent call last):\n";
    last(h.repeat(size / h.len() + 1).as_bytes(), size)
}

/// 4. The chains of 2 behind `srun --label` prefixes of 4 ranks, their
///    lines interleaved.
fn srun_ranks(size: usize) -> Vec<u8> {
    let text = repeated_chained_tracebacks(size);
    let mut out = Vec::with_capacity(size + size / 4);
    for (i, line) in text.split(|&b| b == b'\n').enumerate() {
        out.extend_from_slice(format!("{}: ", (i / 3) % 4).as_bytes());
        out.extend_from_slice(line);
        out.push(b'\n');
    }
    last(&out, size)
}

/// 7. Tracebacks of 1 000 frames (the most Python prints of one: a deep
///    recursion through several functions, which it does not fold), about
///    200 KiB each, one after another: a window cuts one, so windows agree
///    only once they hold two whole, and all but the last 64 KiB are read.
///    Not one of the shapes: here as the worst case of reading in
///    windows.
fn deep_tracebacks(size: usize) -> Vec<u8> {
    let mut rng = XorShift(0x2545_F491_4F6C_DD1D);
    let mut text = String::new();
    let mut n = 0;
    while text.len() < size + 4096 {
        text.push_str(&traceback(
            &mut rng,
            1000,
            "RecursionError",
            &format!("maximum recursion depth exceeded (run {n})"),
        ));
        n += 1;
    }
    last(text.as_bytes(), size)
}

/// 4. One line of 1 MiB, no newline (a progress bar gone wrong, a binary
///    dump, a huge repr).
fn one_line(size: usize) -> Vec<u8> {
    let mut out = vec![b'x'; size];
    // Not all the same byte: some structure a regex might chew on.
    for (i, b) in out.iter_mut().enumerate() {
        if i % 97 == 0 {
            *b = b' ';
        } else if i % 89 == 0 {
            *b = b':';
        }
    }
    out
}

/// A single pass in this process: the `\n` bytes, counted one by one.
fn count_newlines(input: &[u8]) -> usize {
    input.iter().filter(|&&b| b == b'\n').count()
}

/// Copies of the input `wc -l` reads, so that its start-up is small beside
/// its pass over the bytes.
const WC_COPIES: usize = 16;
const WC_RUNS: usize = 15;

/// `wc -l` (the program) over `input`: the median of its runs on a file of
/// [`WC_COPIES`] copies, less the median on an empty file, over the copies.
/// `None` where there is no `wc`.
fn wc_l_ms(input: &[u8]) -> Option<f64> {
    let dir = std::env::temp_dir().join(format!("ect-run-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).ok()?;
    let full = dir.join("copies");
    let empty = dir.join("empty");
    std::fs::write(&full, input.repeat(WC_COPIES)).ok()?;
    std::fs::write(&empty, b"").ok()?;
    let run = |path: &std::path::Path| -> Option<Duration> {
        let start = Instant::now();
        let out = std::process::Command::new("wc")
            .arg("-l")
            .arg(path)
            .stdout(std::process::Stdio::null())
            .status()
            .ok()?;
        out.success().then(|| start.elapsed())
    };
    let (mut a, mut b) = (Vec::new(), Vec::new());
    for _ in 0..WC_RUNS {
        a.push(run(&full)?);
        b.push(run(&empty)?);
    }
    let _ = std::fs::remove_dir_all(&dir);
    let per_copy = (median_ms(&mut a) - median_ms(&mut b)) / WC_COPIES as f64;
    Some(per_copy.max(1e-3))
}

fn median_ms(times: &mut [Duration]) -> f64 {
    times.sort();
    times[times.len() / 2].as_secs_f64() * 1e3
}

/// Median times of the analysis and of the counting loop, interleaved.
fn time(input: &[u8], iterations: usize) -> (f64, f64) {
    let mut t = [Vec::new(), Vec::new()];
    for i in 0..iterations + WARMUP.min(iterations) {
        for k in 0..2 {
            // Alternate which goes first, so drift in the machine's load
            // hits both alike.
            let which = (i + k) % 2;
            let start = Instant::now();
            if which == 0 {
                black_box(parse_tail(black_box(input), false));
            } else {
                black_box(count_newlines(black_box(input)));
            }
            if i >= WARMUP.min(iterations) {
                t[which].push(start.elapsed());
            }
        }
    }
    let [a, b] = &mut t;
    (median_ms(a), median_ms(b))
}

/// Peak bytes allocated while analysing `input`, beyond what was
/// allocated before.
fn peak_memory(input: &[u8]) -> usize {
    let before = NOW.load(Ordering::Relaxed);
    PEAK.store(before, Ordering::Relaxed);
    black_box(parse_tail(input, false));
    PEAK.load(Ordering::Relaxed) - before
}

type Shape = (&'static str, fn(usize) -> Vec<u8>);

fn main() {
    // `cargo bench` passes `--bench`; any other argument selects the shapes
    // whose name contains it (`cargo bench --bench parse -- random`).
    let filters: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let shapes: [Shape; 7] = [
        ("log lines + traceback", logs_then_traceback),
        ("chained tracebacks", repeated_chained_tracebacks),
        ("Traceback headers in a row", headers),
        ("srun-prefixed chains, 4 ranks", srun_ranks),
        ("random bytes", random_bytes),
        ("one line, no newline", one_line),
        ("tracebacks of 1 000 frames", deep_tracebacks),
    ];
    let shapes: Vec<&Shape> = shapes
        .iter()
        .filter(|(name, _)| filters.is_empty() || filters.iter().any(|f| name.contains(f.as_str())))
        .collect();
    println!(
        "ect_run::parse::parse_tail (what an analysis runs; truncated = false), release build\n"
    );
    println!(
        "| Shape (1 MiB) | analysis | `wc -l` | counting loop | vs `wc -l` | vs loop | peak memory / tail | ms per MiB at 1 / 4 / 16 / 64 MiB |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    let mut worst_ratio: f64 = 0.0;
    let mut worst_memory: f64 = 0.0;
    // Rows in the summary table of benches/run.sh.
    let mut summary = Vec::new();
    for (name, make) in shapes {
        let input = make(MIB);
        let (parse, count) = time(&input, ITERATIONS);
        let wc = wc_l_ms(&input);
        let memory = peak_memory(&input) as f64 / MIB as f64;
        let mut per_mib = Vec::new();
        for (mib, iterations) in [(1, ITERATIONS), (4, 10), (16, 3), (64, 1)] {
            let input = make(mib * MIB);
            let (t, _) = time(&input, iterations);
            per_mib.push(format!("{:.2}", t / mib as f64));
        }
        let met = |ok: bool| if ok { "yes" } else { "NO" };
        // The baseline is `wc -l`; without one, the loop stands in.
        let (base, base_name) = match wc {
            Some(wc) => (wc, "`wc -l`"),
            None => (count, "counting loop"),
        };
        summary.push(format!(
            "| Parse 1 MiB tail: {name} | {parse:.2} ms | {base:.2} ms ({base_name}) | {:.1}x | <= {TARGET_RATIO}x | {} |",
            parse / base,
            met(parse / base <= TARGET_RATIO)
        ));
        summary.push(format!(
            "| Peak memory of analysis: {name} | {memory:.2} MiB | 1 MiB (the tail) | {memory:.2}x | <= {TARGET_MEMORY}x | {} |",
            met(memory <= TARGET_MEMORY)
        ));
        worst_ratio = worst_ratio.max(parse / base);
        worst_memory = worst_memory.max(memory);
        println!(
            "| {name} | {parse:.2} ms | {} | {count:.2} ms | {} | {:.1}x | {memory:.2} | {} |",
            wc.map_or("none".to_string(), |w| format!("{w:.2} ms")),
            wc.map_or("".to_string(), |w| format!("{:.1}x", parse / w)),
            parse / count,
            per_mib.join(" / ")
        );
    }
    println!();
    for row in &summary {
        println!("{row}");
    }
    println!(
        "\nWorst: {worst_ratio:.1}x `wc -l` (target <= {TARGET_RATIO}x: {}), peak memory {worst_memory:.2}x the tail (target <= {TARGET_MEMORY}x: {})",
        if worst_ratio <= TARGET_RATIO {
            "met"
        } else {
            "NOT met"
        },
        if worst_memory <= TARGET_MEMORY {
            "met"
        } else {
            "NOT met"
        },
    );
}
