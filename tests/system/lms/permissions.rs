//! The permission matrix: every command tried by each role (anonymous, a student enrolled in the
//! course, the course's instructor, another instructor, an admin). Each is allowed, or refused
//! with 401/403 and nothing written by that caller.

use super::*;

struct Fixture {
    course: Uuid,
    module: Uuid,
    lesson: Uuid,
    resource: Uuid,
    session: Uuid,
    /// Sessions cancelled by the owner, and by the admin (the others try this one).
    cancel: [Uuid; 2],
    /// Courses archived by the owner, and by the admin (the others try this one).
    archive: [Uuid; 2],
    notification: Uuid,
    student: Uuid,
    bystander: Uuid,
    /// Pending applications: one to approve, one to reject.
    applications: [Uuid; 2],
}

const STUDENT: usize = 0;
const OWNER: usize = 1;
const ROLES: [&str; 4] = ["student", "owner", "other instructor", "admin"];

type Body = fn(&Fixture, usize, chrono::DateTime<chrono::Utc>) -> Value;

/// (command, allowed for [student, owner, other instructor, admin], body).
fn cases() -> Vec<(&'static str, [bool; 4], Body)> {
    vec![
        (
            "create-course",
            [false, true, true, false],
            |_, _, _| json!({ "courseId": Uuid::now_v7(), "title": "Another course" }),
        ),
        (
            "update-course-details",
            [false, true, false, true],
            |f, _, _| json!({ "courseId": f.course, "title": "Renamed" }),
        ),
        (
            "add-course-module",
            [false, true, false, true],
            |f, _, _| json!({ "courseId": f.course, "moduleId": Uuid::now_v7(), "title": "More" }),
        ),
        (
            "add-lesson",
            [false, true, false, true],
            |f, _, _| json!({ "courseId": f.course, "moduleId": f.module, "lessonId": Uuid::now_v7(), "title": "Notes", "lessonType": "document", "content": "Read me" }),
        ),
        (
            "archive-course",
            [false, true, false, true],
            |f, r, _| json!({ "courseId": f.archive[usize::from(r != OWNER)] }),
        ),
        ("grant-admin", [false, false, false, true], |f, _, _| json!({ "userId": f.bystander })),
        (
            "grant-instructor",
            [false, false, false, true],
            |f, _, _| json!({ "userId": f.bystander, "applicationId": Uuid::now_v7() }),
        ),
        (
            "notify-user",
            [false, false, false, true],
            |f, _, _| json!({ "notificationId": Uuid::now_v7(), "userId": f.student, "title": "Hello", "notificationType": "message" }),
        ),
        ("mark-notification-read", [true, false, false, false], |f, _, _| json!({ "notificationId": f.notification })),
        (
            "feature-resource",
            [false, false, false, true],
            |f, _, _| json!({ "resourceId": f.resource, "featured": true }),
        ),
        (
            "add-resource",
            [false, true, true, true],
            |_, _, _| json!({ "resourceId": Uuid::now_v7(), "title": "Chart", "description": "Dosage chart", "resourceType": "pdf", "url": "https://files.example/chart.pdf", "author": "Iris", "difficulty": "beginner" }),
        ),
        ("record-resource-download", [true, true, false, true], |f, _, _| json!({ "resourceId": f.resource })),
        (
            "schedule-live-session",
            [false, true, true, false],
            |_, _, now| json!({ "sessionId": Uuid::now_v7(), "title": "Office hours", "scheduledFor": now + chrono::Duration::days(2), "durationMinutes": 30, "maxParticipants": 5 }),
        ),
        ("start-live-session", [false, true, false, false], |f, _, _| json!({ "sessionId": f.session })),
        (
            "cancel-live-session",
            [false, true, false, true],
            |f, r, _| json!({ "sessionId": f.cancel[usize::from(r != OWNER)], "reason": "Sick" }),
        ),
        ("join-live-session", [true, true, true, true], |f, _, _| json!({ "sessionId": f.session })),
        (
            "record-checkout-webhook",
            [false, false, false, false],
            |f, _, _| json!({ "courseId": f.course, "userId": f.student, "purchaseId": Uuid::now_v7(), "checkoutSessionId": "cs_forged", "status": "complete" }),
        ),
        (
            "expire-checkout",
            [false, false, false, false],
            |f, _, _| json!({ "courseId": f.course, "userId": f.student, "purchaseId": Uuid::now_v7() }),
        ),
        (
            "complete-lesson",
            [true, false, false, false],
            |f, _, _| json!({ "courseId": f.course, "lessonId": f.lesson, "timeSpentSeconds": 60 }),
        ),
        (
            "submit-course-review",
            [true, false, false, false],
            |f, _, _| json!({ "courseId": f.course, "rating": 4, "content": "Useful" }),
        ),
        (
            "post-discussion",
            [true, true, false, true],
            |f, _, _| json!({ "courseId": f.course, "discussionId": Uuid::now_v7(), "title": "Question", "content": "How deep?" }),
        ),
        ("toggle-favorite", [true, true, true, true], |f, _, _| json!({ "resourceId": f.resource })),
        ("add-to-wishlist", [true, true, true, true], |f, _, _| json!({ "courseId": f.course })),
        ("remove-from-wishlist", [true, true, true, true], |f, _, _| json!({ "courseId": f.course })),
        (
            "approve-instructor-application",
            [false, false, false, true],
            |f, _, _| json!({ "applicationId": f.applications[0] }),
        ),
        (
            "reject-instructor-application",
            [false, false, false, true],
            |f, _, _| json!({ "applicationId": f.applications[1], "reason": "Licence unreadable" }),
        ),
    ]
}

/// Events written by `actor` with commands of this name.
async fn written_by(app: &TestApp, name: &str, actor: Uuid) -> i64 {
    sqlx::query_scalar(
        "select count(*) from events where metadata->>'command_name' = $1 and metadata->>'actor_id' = $2",
    )
    .bind(name)
    .bind(actor.to_string())
    .fetch_one(&app.db.pool)
    .await
    .unwrap()
}

#[tokio::test]
async fn every_command_is_allowed_or_refused_per_role_with_nothing_written() {
    let (app, _payments) = spawn().await;
    let (admin_id, admin) = admin(&app, "ada@doctrina.test").await;
    let (owner_id, owner) = instructor(&app, &admin, "iris@doctrina.test", "Iris", "Injector").await;
    let (other_id, other) = instructor(&app, &admin, "otto@doctrina.test", "Otto", "Other").await;
    let (student_id, student) = user(&app, "sam@doctrina.test", "Sam", "Student").await;
    let (bystander, _) = user(&app, "bea@doctrina.test", "Bea", "Bystander").await;
    let mut applications = [Uuid::nil(); 2];
    for (i, application_id) in applications.iter_mut().enumerate() {
        let (_, token) = user(&app, &format!("applicant{i}@doctrina.test"), "App", "Licant").await;
        *application_id = Uuid::now_v7();
        ok(&app, "submit-instructor-application", &token, application(*application_id)).await;
    }

    let ids = published_course(&app, &owner, 0).await;
    let enrolled = ok(&app, "enroll-course", &student, json!({ "courseId": ids.course })).await;
    assert_eq!(enrolled["result"]["enrolled"], true, "a free course enrols at once");
    let mut archive = [Uuid::nil(); 2];
    for course in archive.iter_mut() {
        *course = Uuid::now_v7();
        ok(&app, "create-course", &owner, json!({ "courseId": *course, "title": "Old course" })).await;
    }
    let resource = Uuid::now_v7();
    ok(&app, "add-resource", &owner, json!({ "resourceId": resource, "title": "Protocol", "description": "Restricted protocol", "resourceType": "pdf", "url": "https://files.example/protocol.pdf", "author": "Iris", "difficulty": "advanced", "courseId": ids.course, "restricted": true })).await;
    let now = app.clock.now();
    let mut sessions = [Uuid::nil(); 3];
    for session in sessions.iter_mut() {
        *session = Uuid::now_v7();
        ok(&app, "schedule-live-session", &owner, json!({ "sessionId": *session, "title": "Live demo", "scheduledFor": now + chrono::Duration::days(1), "durationMinutes": 60, "maxParticipants": 20 })).await;
    }
    let notification = Uuid::now_v7();
    ok(&app, "notify-user", &admin, json!({ "notificationId": notification, "userId": student_id, "title": "Welcome", "notificationType": "announcement" })).await;
    let fixture = Fixture {
        course: ids.course,
        module: ids.module,
        lesson: ids.lessons[0],
        resource,
        session: sessions[0],
        cancel: [sessions[1], sessions[2]],
        archive,
        notification,
        student: student_id,
        bystander,
        applications,
    };

    let callers = [
        (student_id, student.as_str()),
        (owner_id, owner.as_str()),
        (other_id, other.as_str()),
        (admin_id, admin.as_str()),
    ];
    let mut tried = 0;
    for (name, allowed, body) in cases() {
        let anonymous = send(&app, name, None, body(&fixture, STUDENT, now)).await;
        assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED, "{name} by anonymous: {:?}", anonymous.body);
        for (role, (id, token)) in callers.iter().enumerate() {
            let before = written_by(&app, name, *id).await;
            let r = send(&app, name, Some(token), body(&fixture, role, now)).await;
            if allowed[role] {
                assert!(r.status.is_success(), "{name} by {}: {} {:?}", ROLES[role], r.status, r.body);
            } else {
                assert_eq!(r.status, StatusCode::FORBIDDEN, "{name} by {}: {:?}", ROLES[role], r.body);
                assert_eq!(written_by(&app, name, *id).await, before, "{name} by {} wrote events", ROLES[role]);
            }
            tried += 1;
        }
    }
    assert_eq!(tried, cases().len() * 4);
    // The admin's grants took effect (and only theirs).
    let (u, _) =
        app.state.bus.load::<domain::lms::user::LmsUser>(&domain::lms::user::stream_id(bystander)).await.unwrap();
    assert!(u.is_admin() && u.is_instructor());
    app.cleanup().await;
}
