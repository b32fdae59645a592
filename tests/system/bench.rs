//! A smoke run of every benchmark workload (tiny sizes): the benchmark code keeps compiling and
//! working. Figures are not asserted (speed belongs to `make bench`), only that each workload ran
//! and that the contention run lost and doubled nothing.

use gateway::bench::{run_suite, Sizes};
use system_tests::app::TestApp;
use system_tests::TestDb;

#[tokio::test]
async fn every_benchmark_workload_runs() {
    let db = TestDb::new().await;
    let config = TestApp::config(&db);
    let rows = run_suite(config, Sizes::smoke(), |_| {}).await.expect("the suite runs");
    for prefix in [
        "baseline",
        "A new streams, in-process, c=1",
        "A new streams, HTTP",
        "B lifecycle (5 commands), in-process",
        "B lifecycle (5 commands), HTTP",
        "C contention, plain",
        "C contention, one writer",
        "E freshness",
        "D catch-up marketplace-projects",
        "D baseline",
        "D rebuild",
    ] {
        let row = rows.iter().find(|r| r.workload.starts_with(prefix)).unwrap_or_else(|| panic!("{prefix} ran"));
        assert!(row.ops > 0, "{prefix}: {row:?}");
        assert!(!row.notes.contains("MISMATCH"), "{prefix}: {}", row.notes);
        if prefix.starts_with('A') || prefix.starts_with('B') {
            assert!(row.notes.contains("failed 0"), "{prefix}: {}", row.notes);
        }
    }
    let queued = rows.iter().find(|r| r.workload.starts_with("C contention, one writer")).unwrap();
    assert!(queued.notes.contains("failed after retries 0"), "{}", queued.notes);
    db.drop_db().await;
}
