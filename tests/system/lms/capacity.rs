//! The live-session capacity race: many students join a small session at once.

use super::*;
use futures::future::join_all;

#[tokio::test]
async fn thirty_students_rushing_a_session_of_ten_seat_exactly_ten_once_each() {
    let (app, _payments) = spawn().await;
    let (_, admin) = admin(&app, "ada@doctrina.test").await;
    let (_, teacher) = instructor(&app, &admin, "iris@doctrina.test", "Iris", "Injector").await;
    let session = Uuid::now_v7();
    let at = app.clock.now();
    let past = send(&app, "schedule-live-session", Some(&teacher), json!({ "sessionId": session, "title": "Live Q&A", "scheduledFor": at - chrono::Duration::hours(1), "durationMinutes": 45, "maxParticipants": 10 })).await;
    assert_eq!(past.status, StatusCode::UNPROCESSABLE_ENTITY, "a session is scheduled in the future: {:?}", past.body);
    ok(&app, "schedule-live-session", &teacher, json!({ "sessionId": session, "title": "Live Q&A", "scheduledFor": at + chrono::Duration::days(1), "durationMinutes": 45, "maxParticipants": 10 })).await;

    let students = join_all((0..30).map(|i| {
        let app = &app;
        async move { user(app, &format!("s{i}@doctrina.test"), "Stu", &format!("Dent{i}")).await }
    }))
    .await;
    let replies = join_all(
        students.iter().map(|(_, token)| send(&app, "join-live-session", Some(token), json!({ "sessionId": session }))),
    )
    .await;
    let joined: Vec<usize> = (0..replies.len()).filter(|i| replies[*i].status == StatusCode::OK).collect();
    let full = replies.iter().filter(|r| r.status == StatusCode::CONFLICT).count();
    assert_eq!(joined.len(), 10, "{:?}", replies.iter().map(|r| r.status).collect::<Vec<_>>());
    assert_eq!(full, 20);
    assert!(replies
        .iter()
        .filter(|r| r.status == StatusCode::CONFLICT)
        .all(|r| r.body["type"] == "/problems/conflict"));

    // Joining again changes nothing; a full session refuses the others still.
    let (_, first) = &students[joined[0]];
    let again = ok(&app, "join-live-session", first, json!({ "sessionId": session })).await;
    assert_eq!(again["events"].as_array().unwrap().len(), 0);
    let stream = domain::lms::live::live_session_stream_id(session);
    assert_eq!(stream_events(&app, &stream).await.iter().filter(|t| *t == "participant-joined").count(), 10);

    let rows = eventually("ten participant rows", || async {
        let n: i64 = sqlx::query_scalar("select count(*) from lms.session_participants where session_id = $1")
            .bind(session)
            .fetch_one(&app.db.pool)
            .await
            .unwrap();
        let count: Option<i32> = sqlx::query_scalar("select participant_count from lms.live_sessions where id = $1")
            .bind(session)
            .fetch_optional(&app.db.pool)
            .await
            .unwrap();
        (n == 10 && count == Some(10)).then_some(n)
    })
    .await;
    assert_eq!(rows, 10);
    let distinct: i64 =
        sqlx::query_scalar("select count(distinct user_id) from lms.session_participants where session_id = $1")
            .bind(session)
            .fetch_one(&app.db.pool)
            .await
            .unwrap();
    assert_eq!(distinct, 10);
    app.cleanup().await;
}
