//! Footprint after 1,000,000 transactions: bytes on disk per transaction (directory size after
//! flush) and the process's peak RSS (VmHWM). Periodic durability, 10,000 clients, two writer
//! threads. `FOOTPRINT_TRANSACTIONS` (default 1,000,000) and `FOOTPRINT_MAX_SECONDS` (default
//! 300) bound the run; the figure says how many transactions were actually written.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Instant;

use fundcore_benches::{
    Mix, PERIODIC, clients, dir_size, emit, open, peak_rss_bytes, rss_bytes, work_dir,
};
use serde_json::json;

fn env_u64(key: &str, default: u64) -> u64 {
    std::env::var(key)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let target = env_u64("FOOTPRINT_TRANSACTIONS", 1_000_000);
    let max_secs = env_u64("FOOTPRINT_MAX_SECONDS", 300) as f64;
    let dir = tempfile::Builder::new()
        .prefix("rust-footprint-")
        .tempdir_in(work_dir())
        .expect("temp dir");
    let engine = open(dir.path(), PERIODIC);
    let start = Instant::now();
    let threads = 2u64;
    let pools: Vec<_> = (0..threads)
        .map(|t| clients(&engine, 5_000, &format!("f{t}-")))
        .collect();
    let done = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let handles: Vec<_> = pools
        .into_iter()
        .map(|pool| {
            let engine = engine.clone();
            let done = done.clone();
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut mix = Mix::new(pool);
                let quota = target / threads;
                let mut n = 0;
                while n < quota && !stop.load(Ordering::Relaxed) {
                    mix.step(&engine);
                    n += 1;
                    if n.is_multiple_of(1000) {
                        done.fetch_add(1000, Ordering::Relaxed);
                        if start.elapsed().as_secs_f64() > max_secs {
                            stop.store(true, Ordering::Relaxed);
                        }
                    }
                }
                n
            })
        })
        .collect();
    let written: u64 = handles.into_iter().map(|h| h.join().expect("writer")).sum();
    let fill_secs = start.elapsed().as_secs_f64();
    engine.flush().expect("flush");
    let (apparent, allocated) = dir_size(dir.path());
    let rss_now = rss_bytes();
    let peak = peak_rss_bytes();
    let complete = written >= target;
    emit(&json!({"name": "footprint_bytes_per_tx", "value": allocated as f64 / written as f64, "unit": "bytes/tx",
                 "transactions": written, "complete": complete, "allocated_bytes": allocated,
                 "apparent_bytes": apparent, "apparent_per_tx": apparent as f64 / written as f64,
                 "fill_seconds": fill_secs, "clients": 10_000}).to_string());
    emit(&json!({"name": "footprint_peak_rss", "value": peak as f64 / (1024.0 * 1024.0), "unit": "MiB",
                 "transactions": written, "complete": complete, "rss_now_mib": rss_now as f64 / (1024.0 * 1024.0)})
        .to_string());
    drop(engine);
}
