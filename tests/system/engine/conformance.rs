use system_tests::TestDb;

/// The PostgreSQL backend passes the `EventStore` conformance suite.
#[tokio::test]
async fn postgres_backend_passes_the_conformance_suite() {
    let db = TestDb::new().await;
    let store = db.store().await;
    commands::conformance::run_all(&store).await;
    db.drop_db().await;
}
