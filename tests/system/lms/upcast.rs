//! Users stored in the seed's earlier shape (`user-ensured` v1 with `role`) read as flags: on
//! load (the actor of a command), in the audit replay and in the read table. The stored events
//! are never rewritten.

use super::*;
use commands::store::{AppendRequest, EventStore, ExpectedVersion, NewEvent, StreamWrite};
use domain::lms::user::{self, LmsUser};

/// Appends a `user-ensured` event of schema version 1, exactly as the old code wrote it.
async fn old_user(app: &TestApp, id: Uuid, email: &str, role: &str) {
    let payload = json!({
        "userId": id, "firstName": "Old", "lastName": role, "email": email, "image": null,
        "phone": "+1 555 0100", "externalId": "user_legacy", "role": role, "at": "2024-11-02T10:00:00Z"
    });
    app.state
        .store
        .append(AppendRequest {
            writes: vec![StreamWrite {
                stream_id: user::stream_id(id),
                stream_type: user::STREAM_TYPE.into(),
                expected: ExpectedVersion::NoStream,
                events: vec![NewEvent {
                    event_id: Uuid::now_v7(),
                    event_type: user::USER_ENSURED.into(),
                    schema_version: 1,
                    payload,
                    metadata: json!({ "fixture": "v1" }),
                }],
            }],
            idempotency: None,
        })
        .await
        .unwrap();
}

#[tokio::test]
async fn old_role_events_are_read_as_instructor_and_admin_flags() {
    let (app, _payments) = spawn().await;
    let (teacher, teacher_token) = app.sign_up("legacy-teacher@doctrina.test").await;
    let (boss, boss_token) = app.sign_up("legacy-admin@doctrina.test").await;
    let (pupil, _) = app.sign_up("legacy-student@doctrina.test").await;
    let (teacher, boss, pupil) =
        (Uuid::parse_str(&teacher).unwrap(), Uuid::parse_str(&boss).unwrap(), Uuid::parse_str(&pupil).unwrap());
    old_user(&app, teacher, "legacy-teacher@doctrina.test", "instructor").await;
    old_user(&app, boss, "legacy-admin@doctrina.test", "admin").await;
    old_user(&app, pupil, "legacy-student@doctrina.test", "student").await;

    // Stored as written: version 1 with the role.
    let (version, role): (i32, Option<String>) =
        sqlx::query_as("select schema_version, payload->>'role' from events where stream_id = $1")
            .bind(user::stream_id(teacher))
            .fetch_one(&app.db.pool)
            .await
            .unwrap();
    assert_eq!((version, role.as_deref()), (1, Some("instructor")));

    // Loaded through the upcaster.
    for (id, is_instructor, is_admin) in [(teacher, true, false), (boss, false, true), (pupil, false, false)] {
        let (u, _) = app.state.bus.load::<LmsUser>(&user::stream_id(id)).await.unwrap();
        assert_eq!(
            (u.is_instructor(), u.is_admin(), u.phone()),
            (is_instructor, is_admin, Some("+1 555 0100")),
            "{id}"
        );
    }

    // The flags act: the old instructor creates a course, the old admin grants admin.
    let r = send(
        &app,
        "create-course",
        Some(&teacher_token),
        json!({ "courseId": Uuid::now_v7(), "title": "Legacy course" }),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    ok(&app, "grant-admin", &boss_token, json!({ "userId": pupil })).await;

    // The read table, from the same stored events.
    let flags = eventually("the users read table", || async {
        let rows: Vec<(Uuid, bool, bool)> =
            sqlx::query_as("select id, is_instructor, is_admin from lms.users where id = any($1) order by email")
                .bind(vec![teacher, boss, pupil])
                .fetch_all(&app.db.pool)
                .await
                .unwrap();
        (rows.len() == 3 && rows.iter().any(|r| r.0 == pupil && r.2)).then_some(rows)
    })
    .await;
    assert_eq!(flags, vec![(boss, false, true), (pupil, false, true), (teacher, true, false)]);

    // The audit replay folds the same shape.
    let (_, auditor) = app.admin("auditor@doctrina.test").await;
    let state =
        app.get(&format!("/v1/audit/streams/{}/state?version=1", user::stream_id(teacher)), Some(&auditor)).await;
    assert_eq!(state.status, StatusCode::OK, "{:?}", state.body);
    assert_eq!(state.body["state"]["is_instructor"], true);
    assert_eq!(state.body["state"]["is_admin"], false);
    app.cleanup().await;
}
