//! criterion benchmarks of the core: `cargo bench -p fundcore-benches --bench core`.

use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use fundcore::Durability;
use fundcore_benches::{Mix, PERIODIC, clients, open, work_dir};

fn subscribe_cancel_periodic(c: &mut Criterion) {
    let dir = tempfile::Builder::new()
        .prefix("crit-periodic-")
        .tempdir_in(work_dir())
        .unwrap();
    let engine = open(dir.path(), PERIODIC);
    let mut mix = Mix::new(clients(&engine, 100, "p"));
    let mut group = c.benchmark_group("periodic");
    group.throughput(Throughput::Elements(1));
    group.bench_function("subscribe_or_cancel_1thread", |b| {
        b.iter(|| mix.step(&engine))
    });
    group.finish();
}

fn durable(c: &mut Criterion) {
    let mut group = c.benchmark_group("durable");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(3))
        .warm_up_time(Duration::from_secs(1));
    group.throughput(Throughput::Elements(1));
    for threads in [1usize, 4, 16] {
        let dir = tempfile::Builder::new()
            .prefix("crit-durable-")
            .tempdir_in(work_dir())
            .unwrap();
        let engine = open(dir.path(), Durability::EveryCommit);
        let mut mixes: Vec<Option<Mix>> = (0..threads)
            .map(|t| Some(Mix::new(clients(&engine, 4, &format!("d{t}-")))))
            .collect();
        group.bench_with_input(
            BenchmarkId::new("subscribe_or_cancel", threads),
            &threads,
            |b, &threads| {
                b.iter_custom(|iters| {
                    // each thread runs its share of `iters` operations (whole subscribe/cancel pairs)
                    let per_thread = iters.div_ceil(threads as u64).div_ceil(2) * 2;
                    let barrier = Arc::new(Barrier::new(threads + 1));
                    let handles: Vec<_> = mixes
                        .iter_mut()
                        .map(|slot| {
                            let mut mix = slot.take().unwrap();
                            let engine = engine.clone();
                            let barrier = barrier.clone();
                            std::thread::spawn(move || {
                                barrier.wait();
                                for _ in 0..per_thread {
                                    mix.step(&engine);
                                }
                                mix
                            })
                        })
                        .collect();
                    barrier.wait();
                    let start = Instant::now();
                    for (slot, h) in mixes.iter_mut().zip(handles) {
                        *slot = Some(h.join().unwrap());
                    }
                    // time per operation as if `iters` were run
                    start
                        .elapsed()
                        .mul_f64(iters as f64 / (per_thread * threads as u64) as f64)
                })
            },
        );
    }
    group.finish();
}

fn history(c: &mut Criterion) {
    let dir = tempfile::Builder::new()
        .prefix("crit-history-")
        .tempdir_in(work_dir())
        .unwrap();
    let engine = open(dir.path(), PERIODIC);
    let client = clients(&engine, 1, "h")[0];
    for i in 0..50_000usize {
        let fund = fundcore_benches::FUNDS[i % 5];
        engine.subscribe(client, fund, None, None).unwrap();
        engine.cancel(client, fund, None).unwrap();
    }
    engine.flush().unwrap();
    c.bench_function("history_newest_50_of_100000", |b| {
        b.iter(|| std::hint::black_box(engine.history(client, 50, None).unwrap()))
    });
}

fn client_read(c: &mut Criterion) {
    let dir = tempfile::Builder::new()
        .prefix("crit-client-")
        .tempdir_in(work_dir())
        .unwrap();
    let engine = open(dir.path(), PERIODIC);
    let ids = clients(&engine, 100, "c");
    let mut i = 0usize;
    c.bench_function("client_read", |b| {
        b.iter(|| {
            i += 1;
            std::hint::black_box(engine.client(ids[i % ids.len()]).unwrap())
        })
    });
}

criterion_group!(
    benches,
    subscribe_cancel_periodic,
    durable,
    history,
    client_read
);
criterion_main!(benches);
