//! Metrics: what an application's recorder receives moves by exactly the operations made. The
//! recorder is installed for the calling thread only; the library installs none.

mod common;

use common::stores::TestStore;
use fundcore::{Actor, Channel, Config, RecordingNotifier};
use metrics_util::debugging::{DebugValue, DebuggingRecorder};
use metrics_util::{CompositeKey, MetricKind};

/// The counter `name` with exactly `labels`, 0 when it was never incremented.
fn counter(snapshot: &[(CompositeKey, DebugValue)], name: &str, labels: &[(&str, &str)]) -> u64 {
    snapshot
        .iter()
        .filter(|(key, _)| key.kind() == MetricKind::Counter && key.key().name() == name)
        .filter(|(key, _)| {
            let mut got: Vec<(&str, &str)> =
                key.key().labels().map(|l| (l.key(), l.value())).collect();
            got.sort();
            let mut want = labels.to_vec();
            want.sort();
            got == want
        })
        .map(|(_, value)| match value {
            DebugValue::Counter(n) => *n,
            _ => 0,
        })
        .sum()
}

#[test]
fn counters_move_by_exactly_the_operations_made() {
    for store in TestStore::each() {
        let recorder = DebuggingRecorder::new();
        let snapshotter = recorder.snapshotter();
        metrics::with_local_recorder(&recorder, || {
            let engine = store.open(Config::default()).unwrap();
            let ana = engine
                .register_client("Ana", "ana@example.com", "+573001234567", Channel::Email)
                .unwrap();
            engine.subscribe(ana.id, 1, None, None).unwrap();
            engine
                .subscribe(ana.id, 3, Some("10".parse().unwrap()), None)
                .unwrap_err();
            engine.cancel(ana.id, 1, None).unwrap();
            engine.cancel(ana.id, 1, None).unwrap_err();
            let report = engine
                .dispatch_notifications(&RecordingNotifier::new(), 100)
                .unwrap();
            assert_eq!(report.delivered, 2);
            engine
                .update_fund(
                    2,
                    &fundcore::FundChanges {
                        active: Some(false),
                        ..Default::default()
                    },
                    &Actor::new("ops"),
                )
                .unwrap();
        });
        let snapshot: Vec<_> = snapshotter
            .snapshot()
            .into_vec()
            .into_iter()
            .map(|(key, _, _, value)| (key, value))
            .collect();
        let calls = |operation, result| {
            counter(
                &snapshot,
                "fundcore_operations_total",
                &[("operation", operation), ("result", result)],
            )
        };
        assert_eq!(calls("register_client", "ok"), 1, "{store}");
        assert_eq!(calls("subscribe", "ok"), 1, "{store}");
        assert_eq!(calls("subscribe", "BELOW_MINIMUM"), 1, "{store}");
        assert_eq!(calls("cancel", "ok"), 1, "{store}");
        assert_eq!(calls("cancel", "NOT_SUBSCRIBED"), 1, "{store}");
        assert_eq!(calls("update_fund", "ok"), 1, "{store}");
        assert_eq!(
            counter(
                &snapshot,
                "fundcore_deliveries_total",
                &[("outcome", "delivered")]
            ),
            2,
            "{store}"
        );
        let timed = snapshot
            .iter()
            .filter(|(key, _)| key.key().name() == "fundcore_operation_duration_seconds")
            .map(|(_, value)| match value {
                DebugValue::Histogram(samples) => samples.len(),
                _ => 0,
            })
            .sum::<usize>();
        assert_eq!(timed, 7, "{store}: one duration per call");
    }
}
