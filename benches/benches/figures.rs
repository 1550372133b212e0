//! The core's figures for benches/results.json, measured with plain loops so that each one is
//! exactly what its target names (ops/s over a fixed time, p50 of single calls).
//!
//! `FUNDCORE_BENCH_OUT=file cargo bench -p fundcore-benches --bench figures` appends one JSON
//! object per figure to `file`. `FIGURES_SECONDS` sets the length of each throughput run (3 s).

use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::sync::{Arc, Barrier};
use std::time::Instant;

use fundcore::{Decimal, Durability, Engine};
use fundcore_benches::{Mix, PERIODIC, clients, emit, open, percentile_us, work_dir};
use serde_json::json;

fn seconds() -> f64 {
    std::env::var("FIGURES_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3.0)
}

fn fresh_dir(tag: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(&format!("rust-{tag}-"))
        .tempdir_in(work_dir())
        .expect("temp dir")
}

/// subscribe or cancel, one thread, periodic durability.
fn periodic_one_thread() {
    let dir = fresh_dir("periodic");
    let engine = open(dir.path(), PERIODIC);
    let mut mix = Mix::new(clients(&engine, 100, "p"));
    mix.run_for(&engine, 0.5); // warm-up
    let (ops, secs) = mix.run_for(&engine, seconds());
    emit(
        &json!({"name": "core_periodic_1thread_ops", "value": ops as f64 / secs, "unit": "ops/s",
                 "ops": ops, "seconds": secs})
        .to_string(),
    );
}

/// The cost of observability: the periodic one-thread mix with a metrics recorder and a tracing
/// subscriber (at INFO, as in production) installed, against the same engine with neither, in
/// alternating windows (off, on, on, off, …) so drift affects both alike.
fn observability_overhead() {
    let dir = fresh_dir("observe");
    let engine = open(dir.path(), PERIODIC);
    let mut mix = Mix::new(clients(&engine, 100, "o"));
    mix.run_for(&engine, 0.5); // warm-up
    let window = (seconds() / 4.0).max(0.25);
    let recorder = metrics_util::debugging::DebuggingRecorder::new();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::INFO)
        .with_writer(std::io::sink)
        .finish();
    let dispatch = tracing::Dispatch::new(subscriber);
    let (mut off, mut on) = ((0u64, 0f64), (0u64, 0f64));
    for round in 0..8 {
        let observed = matches!(round % 4, 1 | 2);
        let (ops, secs) = if observed {
            tracing::dispatcher::with_default(&dispatch, || {
                metrics::with_local_recorder(&recorder, || mix.run_for(&engine, window))
            })
        } else {
            mix.run_for(&engine, window)
        };
        let total = if observed { &mut on } else { &mut off };
        total.0 += ops;
        total.1 += secs;
    }
    let (off_rate, on_rate) = (off.0 as f64 / off.1, on.0 as f64 / on.1);
    emit(
        &json!({"name": "core_periodic_1thread_observed_ops", "value": on_rate, "unit": "ops/s",
                 "unobserved_ops_per_s": off_rate})
        .to_string(),
    );
    emit(
        &json!({"name": "core_observed_over_unobserved", "value": on_rate / off_rate, "unit": "x"})
            .to_string(),
    );
}

/// 4 KiB write + fsync in a loop on the bench disk, right before the durable runs.
fn fsync_probe(secs: f64) -> f64 {
    // write back what others left dirty, so the probe measures this disk, not a backlog
    let _ = std::process::Command::new("sync").status();
    let dir = fresh_dir("fsync");
    let mut file = OpenOptions::new()
        .create(true)
        .truncate(true)
        .read(true)
        .write(true)
        .open(dir.path().join("probe"))
        .unwrap();
    file.write_all(&vec![0u8; 4096 * 256]).unwrap();
    file.sync_all().unwrap();
    let block = vec![0x5au8; 4096];
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed().as_secs_f64() < secs {
        file.write_all_at(&block, (n % 256) * 4096).unwrap();
        file.sync_all().unwrap();
        n += 1;
    }
    n as f64 / start.elapsed().as_secs_f64()
}

/// Durable (flushed before return) subscribe/cancel with `threads` concurrent callers.
fn durable(threads: usize) -> f64 {
    let dir = fresh_dir("durable");
    let engine = open(dir.path(), Durability::EveryCommit);
    callers(&engine, threads)
}

/// ops/s of `threads` callers running the subscribe/cancel mix, each on its own clients.
fn callers(engine: &Engine, threads: usize) -> f64 {
    let pools: Vec<_> = (0..threads)
        .map(|t| clients(engine, 4, &format!("d{t}-")))
        .collect();
    let secs = seconds();
    let barrier = Arc::new(Barrier::new(threads + 1));
    let handles: Vec<_> = pools
        .into_iter()
        .map(|pool| {
            let engine = engine.clone();
            let barrier = barrier.clone();
            std::thread::spawn(move || {
                let mut mix = Mix::new(pool);
                mix.run_for(&engine, 0.3); // warm-up
                barrier.wait();
                mix.run_for(&engine, secs)
            })
        })
        .collect();
    barrier.wait();
    let start = Instant::now();
    let ops: u64 = handles
        .into_iter()
        .map(|h| h.join().expect("bench thread").0)
        .sum();
    ops as f64 / start.elapsed().as_secs_f64()
}

/// newest 50 transactions of a client that has 100,000.
fn history_newest_50() {
    let dir = fresh_dir("history");
    let engine = open(dir.path(), PERIODIC);
    let client = clients(&engine, 1, "h")[0];
    let fill = Instant::now();
    for i in 0..50_000usize {
        let fund = fundcore_benches::FUNDS[i % 5];
        engine
            .subscribe(client, fund, None, None)
            .expect("subscribe");
        engine.cancel(client, fund, None).expect("cancel");
    }
    let fill_secs = fill.elapsed().as_secs_f64();
    engine.flush().expect("flush");
    for _ in 0..200 {
        std::hint::black_box(engine.history(client, 50, None).expect("history"));
    }
    let mut samples = Vec::with_capacity(5000);
    let deadline = Instant::now();
    for _ in 0..5000 {
        let t = Instant::now();
        let page = engine.history(client, 50, None).expect("history");
        samples.push(t.elapsed().as_nanos() as u64);
        assert_eq!(page.len(), 50);
        if deadline.elapsed().as_secs_f64() > 10.0 {
            break;
        }
    }
    let p90 = percentile_us(&mut samples, 0.9);
    let p50 = percentile_us(&mut samples, 0.5);
    emit(
        &json!({"name": "core_history_newest50_p50", "value": p50, "unit": "µs", "p90_us": p90,
                 "transactions": 100_000, "fill_seconds": fill_secs, "n": samples.len()})
        .to_string(),
    );
}

/// Per-call time of client() and subscribe() in Rust, measured like the Python driver does
/// (periodic durability, 100 clients, each timed subscribe followed by an untimed cancel).
fn per_call() {
    let dir = fresh_dir("calls");
    let engine = open(dir.path(), PERIODIC);
    let ids = clients(&engine, 100, "c");
    let n = 20_000;
    let mut samples = Vec::with_capacity(n);
    for id in &ids {
        std::hint::black_box(engine.client(*id).unwrap());
    }
    for i in 0..n {
        let t = Instant::now();
        std::hint::black_box(engine.client(ids[i % ids.len()]).expect("client"));
        samples.push(t.elapsed().as_nanos() as u64);
    }
    let p50 = percentile_us(&mut samples, 0.5);
    emit(&json!({"name": "rust_client_call_p50", "value": p50, "unit": "µs", "n": n}).to_string());
    let amount = Decimal::new(8_000_000, 2);
    samples.clear();
    let start = Instant::now();
    for i in 0..n {
        let id = ids[i % ids.len()];
        let t = Instant::now();
        std::hint::black_box(
            engine
                .subscribe(id, 1, Some(amount), None)
                .expect("subscribe"),
        );
        samples.push(t.elapsed().as_nanos() as u64);
        engine.cancel(id, 1, None).expect("cancel");
        if start.elapsed().as_secs_f64() > 10.0 {
            break;
        }
    }
    let count = samples.len();
    let p50 = percentile_us(&mut samples, 0.5);
    emit(
        &json!({"name": "rust_subscribe_call_p50", "value": p50, "unit": "µs", "n": count})
            .to_string(),
    );
}

/// What one sled write costs on this machine: a new key in a growing tree (B-tree splits) against
/// an overwrite of an existing key. A subscribe or cancel adds three new keys (transaction,
/// owner index, due-queue entry), so this bounds the core's periodic rate.
fn sled_write_costs() {
    let dir = fresh_dir("sled");
    let db = sled::Config::new()
        .path(dir.path())
        .flush_every_ms(Some(500))
        .cache_capacity(64 << 20)
        .open()
        .expect("open sled");
    let value = [7u8; 200];
    let n = 100_000u64;
    let mut key = [0u8; 32];
    let start = Instant::now();
    for i in 0..n {
        // 100 interleaved prefixes, like per-client keys
        key[..8].copy_from_slice(&(i % 100).to_be_bytes());
        key[16..24].copy_from_slice(&i.to_be_bytes());
        db.insert(key, &value[..]).expect("insert");
    }
    let new_key_us = start.elapsed().as_secs_f64() * 1e6 / n as f64;
    let start = Instant::now();
    for i in 0..n {
        db.insert((i % 100).to_be_bytes(), &value[..])
            .expect("insert");
    }
    let overwrite_us = start.elapsed().as_secs_f64() * 1e6 / n as f64;
    emit(
        &json!({"name": "sled_new_key_insert_us", "value": new_key_us, "unit": "µs", "n": n,
                 "value_bytes": value.len()})
        .to_string(),
    );
    emit(
        &json!({"name": "sled_overwrite_us", "value": overwrite_us, "unit": "µs", "n": n,
                 "value_bytes": value.len()})
        .to_string(),
    );
}

fn main() {
    // `cargo bench` passes `--bench`; a filter argument picks figures by substring.
    let filter: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let want = |name: &str| filter.is_empty() || filter.iter().any(|f| name.contains(f.as_str()));
    if want("periodic") {
        periodic_one_thread();
    }
    if want("observe") {
        observability_overhead();
    }
    if want("durable") {
        let probe = fsync_probe(2.0);
        emit(
            &json!({"name": "fsync_probe_adjacent", "value": probe, "unit": "fsyncs/s"})
                .to_string(),
        );
        let mut by_threads = Vec::new();
        for threads in [1usize, 4, 16] {
            let ops = durable(threads);
            emit(&json!({"name": format!("core_durable_{threads}threads_ops"), "value": ops, "unit": "ops/s",
                         "threads": threads}).to_string());
            by_threads.push(ops);
        }
        emit(&json!({"name": "core_durable_16_over_1", "value": by_threads[2] / by_threads[0], "unit": "x"}).to_string());
        emit(&json!({"name": "core_durable_1_over_fsync_probe", "value": by_threads[0] / probe, "unit": "x",
                     "probe": probe}).to_string());
    }
    if want("history") {
        history_newest_50();
    }
    if want("calls") {
        per_call();
    }
    if want("sled") {
        sled_write_costs();
    }
    if want("postgres") {
        deadline_costs();
        postgres_callers();
    }
}

/// What the PostgreSQL store's deadlines add to each call, measured by themselves on the kind
/// of runtime every connection has (current-thread, I/O and time drivers): a statement's wait
/// bounded by `timeout_at` against the same wait unbounded (a future that is pending once, as a
/// statement waiting for its answer is), and the catch-up of a pooled connection before it is
/// used (two yields that let the runtime read what reached the socket). Both variants of each
/// run in alternating rounds of one loop, so they share the machine's state.
fn deadline_costs() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .build()
        .expect("runtime");
    let rounds = 20;
    let per_round = 20_000u32;
    let (mut plain, mut bounded, mut catch_up) = (0.0, 0.0, 0.0);
    for _ in 0..rounds {
        let start = Instant::now();
        for _ in 0..per_round {
            runtime.block_on(tokio::task::yield_now());
        }
        plain += start.elapsed().as_secs_f64();
        let start = Instant::now();
        for _ in 0..per_round {
            let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
            let _ = runtime.block_on(async {
                tokio::time::timeout_at(deadline, tokio::task::yield_now()).await
            });
        }
        bounded += start.elapsed().as_secs_f64();
        let start = Instant::now();
        for _ in 0..per_round {
            runtime.block_on(async {
                tokio::task::yield_now().await;
                tokio::task::yield_now().await;
            });
        }
        catch_up += start.elapsed().as_secs_f64();
    }
    let n = f64::from(rounds * per_round);
    let (plain_us, bounded_us, catch_up_us) =
        (plain * 1e6 / n, bounded * 1e6 / n, catch_up * 1e6 / n);
    emit(
        &json!({"name": "postgres_deadline_cost_per_statement_us", "value": bounded_us - plain_us,
                 "unit": "µs", "bounded_us": bounded_us, "unbounded_us": plain_us,
                 "n": n})
        .to_string(),
    );
    emit(
        &json!({"name": "postgres_catch_up_cost_per_call_us", "value": catch_up_us, "unit": "µs",
                 "n": n})
        .to_string(),
    );
}

/// The PostgreSQL store (when `FUNDCORE_BENCH_DATABASE_URL` names an empty database): ops/s
/// with 1, 4 and 16 callers, and round trips per operation.
fn postgres_callers() {
    let Ok(url) = std::env::var("FUNDCORE_BENCH_DATABASE_URL") else {
        eprintln!("figures: FUNDCORE_BENCH_DATABASE_URL not set, PostgreSQL figures left out");
        return;
    };
    let config = fundcore::Config::builder()
        .pool_size(16)
        .build()
        .expect("valid settings");
    let engine = Engine::connect(&url, config).expect("connect to the bench database");
    for threads in [1usize, 4, 16] {
        let ops = callers(&engine, threads);
        emit(&json!({"name": format!("postgres_{threads}callers_ops"), "value": ops, "unit": "ops/s",
                     "threads": threads}).to_string());
    }
    let pool = clients(&engine, 1, "rt");
    let mut mix = Mix::new(pool);
    let before = engine.store_stats().round_trips;
    for _ in 0..1000 {
        mix.step(&engine);
    }
    let per_op = (engine.store_stats().round_trips - before) as f64 / 1000.0;
    emit(
        &json!({"name": "postgres_round_trips_per_op", "value": per_op, "unit": "round trips"})
            .to_string(),
    );
}
