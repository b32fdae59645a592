//! An instructor's path (apply → approved → build a course → publish) and a student's (enrol →
//! pay through the provider and its signed webhook → learn → certificate → public verification →
//! review), with webhook replay, forgery, an unknown purchase, and checkout expiry.

use super::*;
use domain::lms::enrollment;

#[tokio::test]
async fn an_instructor_publishes_and_a_student_pays_learns_and_is_certified() {
    let (app, payments) = spawn().await;
    // The platform's first admin, made by the operator CLI (`escrowd create-admin`): it must be
    // able to approve instructors on a fresh platform.
    let (_, admin) = app.admin("ada@doctrina.test").await;

    // Instructor: a student cannot create a course until an approved application.
    let (teacher_id, teacher) = user(&app, "iris@doctrina.test", "Iris", "Injector").await;
    let early =
        send(&app, "create-course", Some(&teacher), json!({ "courseId": Uuid::now_v7(), "title": "Too soon" })).await;
    assert_eq!(early.status, StatusCode::FORBIDDEN, "{:?}", early.body);
    let application_id = Uuid::now_v7();
    ok(&app, "submit-instructor-application", &teacher, application(application_id)).await;
    let twice = send(&app, "submit-instructor-application", Some(&teacher), application(Uuid::now_v7())).await;
    assert_eq!(twice.status, StatusCode::CONFLICT, "one pending application per user: {:?}", twice.body);
    ok(&app, "approve-instructor-application", &admin, json!({ "applicationId": application_id })).await;
    let ids = published_course(&app, &teacher, 4900).await;

    // Student: enrolling in the paid course opens a purchase at the price of that moment.
    let (student_id, student) = user(&app, "sam@doctrina.test", "Sam", "Student").await;
    let r = send(&app, "enroll-course", Some(&student), json!({ "courseId": ids.course })).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let checkout = &r.body["result"];
    assert_eq!(checkout["enrolled"], false);
    assert_eq!(checkout["amount"], 4900);
    assert!(
        checkout["checkoutUrl"].as_str().unwrap().starts_with("https://checkout.example/pay/cs_test_"),
        "{checkout:?}"
    );
    let purchase_id = checkout["purchaseId"].as_str().unwrap().to_owned();
    let calls = payments.calls();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].form["line_items[0][price_data][unit_amount]"], "4900");
    let reference = calls[0].form["client_reference_id"].clone();
    let session_id = calls[0].session_id.clone();
    // A later price change does not touch the open purchase.
    ok(&app, "update-course-details", &teacher, json!({ "courseId": ids.course, "price": 9900 })).await;
    let again = send(&app, "enroll-course", Some(&student), json!({ "courseId": ids.course })).await;
    assert_eq!(again.body["result"]["purchaseId"], purchase_id.as_str(), "the open checkout is re-used");
    assert_eq!(again.body["result"]["checkoutSessionId"], session_id.as_str());
    assert_eq!(again.body["result"]["amount"], 4900);
    let locked =
        send(&app, "complete-lesson", Some(&student), json!({ "courseId": ids.course, "lessonId": ids.lessons[0] }))
            .await;
    assert_eq!(locked.status, StatusCode::FORBIDDEN, "an open purchase grants no access: {:?}", locked.body);

    let stream = enrollment::stream_id(ids.course, student_id);
    let before = stream_events(&app, &stream).await;

    // A forged signature and an unknown purchase are refused and write nothing.
    let paid = checkout_event("evt_paid_1", "checkout.session.completed", &session_id, &reference);
    let forged = post_webhook(&app, &paid, "whsec_forged").await;
    assert_eq!(forged.status, StatusCode::BAD_REQUEST, "{:?}", forged.body);
    let unknown_ref = format!("lms:{}:{}:{}", ids.course, student_id, Uuid::now_v7());
    let unknown = post_webhook(
        &app,
        &checkout_event("evt_unknown", "checkout.session.completed", "cs_other", &unknown_ref),
        "whsec_test",
    )
    .await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND, "{:?}", unknown.body);
    assert_eq!(stream_events(&app, &stream).await, before);
    assert_eq!(events_of_command(&app, "record-checkout-webhook").await, 0);

    // The real webhook completes the purchase and enrols; its replay changes nothing.
    let first = post_webhook(&app, &paid, "whsec_test").await;
    assert_eq!(first.status, StatusCode::OK, "{:?}", first.body);
    let replay = post_webhook(&app, &paid, "whsec_test").await;
    assert_eq!(replay.status, StatusCode::OK, "{:?}", replay.body);
    assert_eq!(replay.body["replayed"], true);
    let after = stream_events(&app, &stream).await;
    assert_eq!(after.iter().filter(|t| *t == "enrolled").count(), 1, "{after:?}");
    assert_eq!(after.iter().filter(|t| *t == "purchase-completed").count(), 1, "{after:?}");
    let dup = send(&app, "enroll-course", Some(&student), json!({ "courseId": ids.course })).await;
    assert_eq!(dup.status, StatusCode::CONFLICT, "{:?}", dup.body);

    // Learning: the last lesson issues exactly one certificate.
    let r = ok(
        &app,
        "complete-lesson",
        &student,
        json!({ "courseId": ids.course, "lessonId": ids.lessons[0], "timeSpentSeconds": 600 }),
    )
    .await;
    assert!(r["events"].as_array().unwrap().iter().all(|e| e["type"] != "certificate-issued"));
    let r = ok(
        &app,
        "complete-lesson",
        &student,
        json!({ "courseId": ids.course, "lessonId": ids.lessons[1], "timeSpentSeconds": 120 }),
    )
    .await;
    let issued = r["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["type"] == "certificate-issued")
        .cloned()
        .expect("certificate issued");
    let code = issued["payload"]["verificationCode"].as_str().unwrap().to_owned();
    assert_eq!(issued["payload"]["userName"], "Sam Student");
    assert_eq!(issued["payload"]["instructorName"], "Iris Injector");
    let r = ok(
        &app,
        "complete-lesson",
        &student,
        json!({ "courseId": ids.course, "lessonId": ids.lessons[1], "timeSpentSeconds": 30 }),
    )
    .await;
    assert!(r["events"].as_array().unwrap().iter().all(|e| e["type"] != "certificate-issued"));
    assert_eq!(stream_events(&app, &stream).await.iter().filter(|t| *t == "certificate-issued").count(), 1);

    // Anyone can verify the code, without signing in; the name is as at issue time.
    ok(
        &app,
        "ensure-current-user",
        &student,
        json!({ "firstName": "Samantha", "lastName": "Student", "email": "sam@doctrina.test" }),
    )
    .await;
    let verified = app.get(&format!("/v1/lms/certificates/verify/{code}"), None).await;
    assert_eq!(verified.status, StatusCode::OK, "{:?}", verified.body);
    assert_eq!(verified.body["valid"], true);
    assert_eq!(verified.body["userName"], "Sam Student");
    assert_eq!(verified.body["courseName"], "Botox Foundations");
    assert_eq!(app.get("/v1/lms/certificates/verify/DOC-NOSUCHCODE0000", None).await.status, StatusCode::NOT_FOUND);

    // One review per enrolled student.
    let (_, stranger) = user(&app, "tom@doctrina.test", "Tom", "Stranger").await;
    let r = send(
        &app,
        "submit-course-review",
        Some(&stranger),
        json!({ "courseId": ids.course, "rating": 4, "content": "Looks good" }),
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{:?}", r.body);
    let r = send(
        &app,
        "submit-course-review",
        Some(&student),
        json!({ "courseId": ids.course, "rating": 6, "content": "Too good" }),
    )
    .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{:?}", r.body);
    let review = ok(
        &app,
        "submit-course-review",
        &student,
        json!({ "courseId": ids.course, "rating": 5, "content": "Clear and practical" }),
    )
    .await;
    let r = send(
        &app,
        "submit-course-review",
        Some(&student),
        json!({ "courseId": ids.course, "rating": 1, "content": "Changed my mind" }),
    )
    .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{:?}", r.body);

    // The read side: counters kept by projections, the public catalogue, own rows.
    let position = review["position"].as_i64().unwrap();
    let course = app.get(&format!("/v1/lms/courses/{}?after={position}", ids.course), None).await;
    assert_eq!(course.status, StatusCode::OK, "{:?}", course.body);
    assert_eq!(course.body["lessonCount"], 2);
    assert_eq!(course.body["studentCount"], 1);
    assert_eq!(course.body["reviewCount"], 1);
    assert_eq!(course.body["rating"].as_f64(), Some(5.0));
    assert_eq!(course.body["price"], 9900);
    assert_eq!(course.body["instructorId"], teacher_id.to_string());
    let tagged = app.get("/v1/lms/courses?tags=safety", None).await;
    assert_eq!(tagged.body["items"].as_array().unwrap().len(), 1, "{:?}", tagged.body);
    let purchases = app.get(&format!("/v1/lms/purchases?userId={student_id}&after={position}"), Some(&student)).await;
    let items = purchases.body["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{:?}", purchases.body);
    assert_eq!((items[0]["amount"].as_i64(), items[0]["status"].as_str()), (Some(4900), Some("complete")));
    let theirs = app.get(&format!("/v1/lms/purchases?userId={student_id}"), Some(&stranger)).await;
    assert_eq!(theirs.body["items"].as_array().unwrap().len(), 0, "another user's purchases are not visible");
    let certificates = app.get(&format!("/v1/lms/certificates?userId={student_id}"), Some(&student)).await;
    assert_eq!(certificates.body["items"][0]["verificationCode"], code.as_str());
    let progress =
        app.get(&format!("/v1/lms/lesson_progress?userId={student_id}&courseId={}", ids.course), Some(&student)).await;
    assert_eq!(progress.body["items"].as_array().unwrap().len(), 2, "{:?}", progress.body);

    // Notifications are created by the process manager as events of their own streams.
    let notified = eventually("the certificate notification", || async {
        let r = app.get(&format!("/v1/lms/notifications?userId={student_id}"), Some(&student)).await;
        r.body["items"].as_array().and_then(|items| items.iter().find(|n| n["type"] == "certificate").cloned())
    })
    .await;
    assert_eq!(notified["read"], false);
    let id = notified["id"].as_str().unwrap();
    let r = send(&app, "mark-notification-read", Some(&stranger), json!({ "notificationId": id })).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{:?}", r.body);
    ok(&app, "mark-notification-read", &student, json!({ "notificationId": id })).await;
    app.cleanup().await;
}

#[tokio::test]
async fn an_unpaid_checkout_expires_by_the_scheduler_and_a_late_payment_grants_nothing() {
    let (app, payments) = spawn().await;
    let (_, admin) = admin(&app, "ada@doctrina.test").await;
    let (_, teacher) = instructor(&app, &admin, "iris@doctrina.test", "Iris", "Injector").await;
    let ids = published_course(&app, &teacher, 2500).await;
    let (student_id, student) = user(&app, "sam@doctrina.test", "Sam", "Student").await;
    let r = send(&app, "enroll-course", Some(&student), json!({ "courseId": ids.course })).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let purchase_id = Uuid::parse_str(r.body["result"]["purchaseId"].as_str().unwrap()).unwrap();
    let call = payments.calls().pop().unwrap();

    // Not yet due: still open after the scheduler has had its chances.
    let stream = enrollment::stream_id(ids.course, student_id);
    app.clock.advance(chrono::Duration::minutes(29));
    app.state.scheduler().run_due().await.unwrap();
    assert!(!stream_events(&app, &stream).await.contains(&"purchase-expired".to_owned()));

    app.clock.advance(chrono::Duration::minutes(2));
    let status = eventually("the purchase to expire", || async {
        let status: Option<String> = sqlx::query_scalar("select status from lms.purchases where id = $1")
            .bind(purchase_id)
            .fetch_optional(&app.db.pool)
            .await
            .unwrap();
        status.filter(|s| s == "expired")
    })
    .await;
    assert_eq!(status, "expired");

    let late =
        checkout_event("evt_late", "checkout.session.completed", &call.session_id, &call.form["client_reference_id"]);
    let r = post_webhook(&app, &late, "whsec_test").await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{:?}", r.body);
    let events = stream_events(&app, &stream).await;
    assert!(!events.contains(&"enrolled".to_owned()), "{events:?}");
    let r =
        send(&app, "complete-lesson", Some(&student), json!({ "courseId": ids.course, "lessonId": ids.lessons[0] }))
            .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{:?}", r.body);

    // Enrolling again opens a new purchase at the current price.
    let r = send(&app, "enroll-course", Some(&student), json!({ "courseId": ids.course })).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    assert_ne!(r.body["result"]["purchaseId"], purchase_id.to_string());
    app.cleanup().await;
}
