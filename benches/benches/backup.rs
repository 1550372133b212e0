//! The cost of an online backup (`Engine::backup`) of a store of 1,000,000 transactions: how
//! long the backup takes, and how long calls wait while it runs.
//!
//! The store is built once (10,000 clients, subscribe/cancel from two threads, periodic
//! durability, as the footprint bench builds its own). Then two threads run the
//! subscribe/cancel mix on 1,000 clients of their own at a steady rate (`BACKUP_LOAD_OPS`
//! calls per second in all, default 2,000: a service's traffic, not a saturating loop, so the
//! figures say how long calls wait rather than how the two cores are shared), every call
//! timed: first for a window as long as the backup takes on the idle store, without a backup,
//! then while a backup runs. The figures: the backup's seconds on the idle store and under the
//! load, and the load's p99 and longest call and its ops/s, without and during the backup.
//! `BACKUP_TRANSACTIONS` (default 1,000,000) and `BACKUP_MAX_SECONDS` (default 120, for
//! building the store) bound the run; the figures say how many transactions the store held.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use fundcore::Engine;
use fundcore_benches::{Mix, PERIODIC, clients, dir_size, emit, open, percentile_us, work_dir};
use serde_json::json;

fn env_u64(key: &str, default: u64) -> u64 {
    std::env::var(key)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

/// Fills the store with about `target` transactions; returns how many were written.
fn fill(engine: &Engine, target: u64, max_secs: f64) -> u64 {
    let start = Instant::now();
    let threads = 2u64;
    let stop = Arc::new(AtomicBool::new(false));
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let pool = clients(engine, 5_000, &format!("b{t}-"));
            let engine = engine.clone();
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut mix = Mix::new(pool);
                let quota = target / threads;
                let mut n = 0;
                while n < quota && !stop.load(Ordering::Relaxed) {
                    mix.step(&engine);
                    mix.step(&engine);
                    n += 2;
                    if n.is_multiple_of(1000) && start.elapsed().as_secs_f64() > max_secs {
                        stop.store(true, Ordering::Relaxed);
                    }
                }
                n
            })
        })
        .collect();
    handles.into_iter().map(|h| h.join().expect("writer")).sum()
}

/// What a timed load saw: each call's latency (ns) and how many calls per second.
struct Load {
    latencies: Vec<u64>,
    ops_per_s: f64,
}

/// Runs the subscribe/cancel mix from two threads on pools of their own while `during` runs on
/// this thread; every call that started while `during` ran is counted.
fn load_while<T>(
    engine: &Engine,
    pools: &[Vec<fundcore::ClientId>],
    ops_per_s: f64,
    during: impl FnOnce() -> T,
) -> (Load, T) {
    // Each thread's calls are due at a steady interval; a late call is not made up for later.
    let interval = Duration::from_secs_f64(pools.len() as f64 / ops_per_s);
    let stop = Arc::new(AtomicBool::new(false));
    let measuring = Arc::new(AtomicBool::new(false));
    let started_calls = Arc::new(AtomicU64::new(0));
    let handles: Vec<_> = pools
        .iter()
        .map(|pool| {
            let (engine, stop, measuring, started_calls) = (
                engine.clone(),
                stop.clone(),
                measuring.clone(),
                started_calls.clone(),
            );
            let pool = pool.clone();
            std::thread::spawn(move || {
                let mut mix = Mix::new(pool);
                let mut latencies = Vec::with_capacity(1 << 20);
                let mut due = Instant::now();
                // Whole subscribe/cancel pairs, so the pool ends as it began.
                while !stop.load(Ordering::Relaxed) {
                    for _ in 0..2 {
                        let now = Instant::now();
                        if due > now {
                            std::thread::sleep(due - now);
                        }
                        due = Instant::now().max(due) + interval;
                        let counted = measuring.load(Ordering::Relaxed);
                        let t = Instant::now();
                        mix.step(&engine);
                        if counted {
                            latencies.push(t.elapsed().as_nanos() as u64);
                            started_calls.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
                latencies
            })
        })
        .collect();
    // A warm-up before the window.
    std::thread::sleep(Duration::from_millis(300));
    measuring.store(true, Ordering::Relaxed);
    let start = Instant::now();
    let out = during();
    measuring.store(false, Ordering::Relaxed);
    let seconds = start.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    let mut latencies = Vec::new();
    for h in handles {
        latencies.extend(h.join().expect("load thread"));
    }
    let ops_per_s = started_calls.load(Ordering::Relaxed) as f64 / seconds;
    (
        Load {
            latencies,
            ops_per_s,
        },
        out,
    )
}

fn main() {
    let target = env_u64("BACKUP_TRANSACTIONS", 1_000_000);
    let max_secs = env_u64("BACKUP_MAX_SECONDS", 120) as f64;
    let load_ops = env_u64("BACKUP_LOAD_OPS", 2_000) as f64;
    let dir = tempfile::Builder::new()
        .prefix("rust-backup-")
        .tempdir_in(work_dir())
        .expect("temp dir");
    let engine = open(&dir.path().join("store"), PERIODIC);
    let started = Instant::now();
    let written = fill(&engine, target, max_secs);
    let build_seconds = started.elapsed().as_secs_f64();
    engine.flush().expect("flush");
    let pools: Vec<_> = (0..2)
        .map(|t| clients(&engine, 500, &format!("load{t}-")))
        .collect();
    let (store_bytes, _) = dir_size(&dir.path().join("store"));

    // The backup alone, on the idle store.
    let idle_dest = dir.path().join("backup-idle");
    let t = Instant::now();
    engine.backup(&idle_dest).expect("backup of the idle store");
    let idle_seconds = t.elapsed().as_secs_f64();
    let (backup_bytes, _) = dir_size(&idle_dest);
    std::fs::remove_dir_all(&idle_dest).expect("remove the idle backup");

    // The load alone, for as long as a backup takes, then the load during a backup.
    let (alone, ()) = load_while(&engine, &pools, load_ops, || {
        std::thread::sleep(Duration::from_secs_f64(idle_seconds.max(2.0)))
    });
    let loaded_dest = dir.path().join("backup-loaded");
    let (during, loaded_seconds) = load_while(&engine, &pools, load_ops, || {
        let t = Instant::now();
        engine.backup(&loaded_dest).expect("backup under load");
        t.elapsed().as_secs_f64()
    });
    let report = fundcore::verify_store(&fundcore::StoreLocation::Embedded(loaded_dest.clone()))
        .expect("verify the backup");
    assert!(report.is_clean(), "{report}");

    let complete = written >= target;
    let summary = |mut load: Load| {
        let n = load.latencies.len();
        let p99 = percentile_us(&mut load.latencies, 0.99) / 1000.0;
        let max = load.latencies.last().copied().unwrap_or(0) as f64 / 1e6;
        (p99, max, load.ops_per_s, n)
    };
    let (alone_p99, alone_max, alone_ops, alone_n) = summary(alone);
    let (during_p99, during_max, during_ops, during_n) = summary(during);
    let common = json!({"transactions": written, "complete": complete, "clients": 11_000,
                        "build_seconds": build_seconds, "store_bytes": store_bytes,
                        "backup_bytes": backup_bytes, "load_ops_per_s_asked": load_ops,
                        "under_load_copied_transactions": report.transactions});
    let figure = |name: &str, value: f64, unit: &str, extra: serde_json::Value| {
        let mut fig = json!({"name": name, "value": value, "unit": unit});
        for (k, v) in common
            .as_object()
            .into_iter()
            .flatten()
            .chain(extra.as_object().into_iter().flatten())
        {
            fig[k] = v.clone();
        }
        emit(&fig.to_string());
    };
    figure("backup_idle_seconds", idle_seconds, "s", json!({}));
    figure("backup_under_load_seconds", loaded_seconds, "s", json!({}));
    figure(
        "backup_load_p99_alone_ms",
        alone_p99,
        "ms",
        json!({"calls": alone_n}),
    );
    figure(
        "backup_load_p99_during_ms",
        during_p99,
        "ms",
        json!({"calls": during_n}),
    );
    figure(
        "backup_load_max_alone_ms",
        alone_max,
        "ms",
        json!({"calls": alone_n}),
    );
    figure(
        "backup_load_max_during_ms",
        during_max,
        "ms",
        json!({"calls": during_n}),
    );
    figure("backup_load_ops_alone", alone_ops, "ops/s", json!({}));
    figure("backup_load_ops_during", during_ops, "ops/s", json!({}));
    drop(engine);
}
