//! Shared helpers of the fundcore benchmarks (see `benches/` and `benches/README.md`).

use std::path::Path;
use std::time::Instant;

use fundcore::{Channel, ClientId, Config, Durability, Engine, FundId};

/// The five funds of the default catalogue.
pub const FUNDS: [FundId; 5] = [1, 2, 3, 4, 5];

/// Opens a store in `dir` with the given durability and otherwise default settings.
pub fn open(dir: &Path, durability: Durability) -> Engine {
    let config = Config::builder()
        .durability(durability)
        .build()
        .expect("valid settings");
    Engine::open(dir, config).expect("open the store")
}

/// The periodic durability used by the benchmarks (sled's default flush interval).
pub const PERIODIC: Durability = Durability::Periodic { interval_ms: 500 };

/// Registers `n` clients whose names carry `tag`.
pub fn clients(engine: &Engine, n: usize, tag: &str) -> Vec<ClientId> {
    (0..n)
        .map(|i| {
            let channel = if i % 2 == 0 {
                Channel::Email
            } else {
                Channel::Sms
            };
            engine
                .register_client(
                    &format!("Bench {tag}{i}"),
                    &format!("bench{tag}{i}@example.com"),
                    &format!("+57300{:07}", i % 10_000_000),
                    channel,
                )
                .expect("register a client")
                .id
        })
        .collect()
}

/// A subscribe/cancel cycle over a pool of clients: op `k` subscribes or cancels, so every
/// call is a valid operation and balances never run out.
pub struct Mix {
    pool: Vec<ClientId>,
    k: usize,
}

impl Mix {
    /// A cycle over `pool`.
    pub fn new(pool: Vec<ClientId>) -> Mix {
        Mix { pool, k: 0 }
    }

    /// Runs the next operation (one subscribe or one cancel).
    pub fn step(&mut self, engine: &Engine) {
        let pair = self.k / 2;
        let client = self.pool[pair % self.pool.len()];
        let fund = FUNDS[(pair / self.pool.len()) % FUNDS.len()];
        if self.k.is_multiple_of(2) {
            engine
                .subscribe(client, fund, None, None)
                .expect("subscribe");
        } else {
            engine.cancel(client, fund, None).expect("cancel");
        }
        self.k += 1;
    }

    /// Runs whole subscribe/cancel pairs for about `seconds`; returns (ops, elapsed seconds).
    pub fn run_for(&mut self, engine: &Engine, seconds: f64) -> (u64, f64) {
        let start = Instant::now();
        let mut ops = 0u64;
        loop {
            self.step(engine);
            self.step(engine);
            ops += 2;
            if ops.is_multiple_of(64) && start.elapsed().as_secs_f64() >= seconds {
                break;
            }
        }
        (ops, start.elapsed().as_secs_f64())
    }
}

/// Percentile `q` (0..=1) of nanosecond samples, in microseconds.
pub fn percentile_us(samples: &mut [u64], q: f64) -> f64 {
    samples.sort_unstable();
    let i = ((samples.len() as f64 - 1.0) * q).round() as usize;
    samples[i] as f64 / 1000.0
}

/// Peak resident set size of this process (VmHWM), in bytes.
pub fn peak_rss_bytes() -> u64 {
    proc_status_kib("VmHWM:") * 1024
}

/// Current resident set size of this process (VmRSS), in bytes.
pub fn rss_bytes() -> u64 {
    proc_status_kib("VmRSS:") * 1024
}

fn proc_status_kib(key: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with(key))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// (apparent bytes, allocated bytes) of every file under `dir`.
pub fn dir_size(dir: &Path) -> (u64, u64) {
    use std::os::unix::fs::MetadataExt;
    let mut apparent = 0;
    let mut allocated = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).expect("read dir").flatten() {
            let meta = entry.metadata().expect("metadata");
            if meta.is_dir() {
                stack.push(entry.path());
            } else {
                apparent += meta.len();
                allocated += meta.blocks() * 512;
            }
        }
    }
    (apparent, allocated)
}

/// Where the benchmarks put their stores: `benches/work/` (the disk the fsync probe measures),
/// or `$FUNDCORE_BENCH_DIR`.
pub fn work_dir() -> std::path::PathBuf {
    let dir = std::env::var_os("FUNDCORE_BENCH_DIR")
        .map(Into::into)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("work"));
    std::fs::create_dir_all(&dir).expect("create the bench work dir");
    dir
}

/// Appends one figure (a JSON object) to the file named by `$FUNDCORE_BENCH_OUT`, if set, and
/// prints it.
pub fn emit(figure: &str) {
    println!("FIGURE {figure}");
    if let Some(path) = std::env::var_os("FUNDCORE_BENCH_OUT") {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .expect("open the figures file");
        writeln!(f, "{figure}").expect("write a figure");
    }
}
