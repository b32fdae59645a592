//! Access and progress: `lms.purchases`, `lms.course_enrollments`, `lms.lesson_progress` and
//! `lms.certificates`, all from the enrolment streams (one per student and course).

use super::{Handler, SqlProjector};

const TABLES: &[&str] = &["lms.purchases", "lms.course_enrollments", "lms.lesson_progress", "lms.certificates"];

/// A purchase leaving `open` (completed by a webhook, expired, failed).
const CLOSE_PURCHASE: &[&str] = &["update {lms.purchases} x set status = p->>'status',
        checkout_session_id = coalesce(p->>'checkoutSessionId', x.checkout_session_id), closed_at = (p->>'at')::timestamptz
    from (select $1::jsonb as p) s where x.id = (p->>'purchaseId')::uuid"];

const HANDLERS: &[Handler] = &[
    Handler {
        stream_prefix: "lms.",
        event_type: "purchase-opened",
        statements: &["insert into {lms.purchases} (id, user_id, course_id, amount, currency, status, created_at, expires_at)
            select (p->>'purchaseId')::uuid, (p->>'userId')::uuid, (p->>'courseId')::uuid, (p->>'amount')::bigint,
                p->>'currency', p->>'status', (p->>'at')::timestamptz, (p->>'expiresAt')::timestamptz
            from (select $1::jsonb as p) s
            on conflict (id) do nothing"],
    },
    Handler { stream_prefix: "lms.", event_type: "purchase-completed", statements: CLOSE_PURCHASE },
    Handler { stream_prefix: "lms.", event_type: "purchase-expired", statements: CLOSE_PURCHASE },
    Handler { stream_prefix: "lms.", event_type: "purchase-failed", statements: CLOSE_PURCHASE },
    Handler {
        stream_prefix: "lms.",
        event_type: "enrolled",
        statements: &["insert into {lms.course_enrollments} (id, user_id, course_id, status, enrolled_at, purchase_id)
            select md5((p->>'courseId') || ':' || (p->>'userId'))::uuid, (p->>'userId')::uuid, (p->>'courseId')::uuid,
                'enrolled', (p->>'at')::timestamptz, (p->>'purchaseId')::uuid
            from (select $1::jsonb as p) s
            on conflict (id) do nothing"],
    },
    Handler {
        stream_prefix: "lms.",
        event_type: "lesson-completed",
        statements: &["insert into {lms.lesson_progress} (id, user_id, course_id, lesson_id, completed, completed_at, time_spent)
            select md5((p->>'userId') || ':' || (p->>'lessonId'))::uuid, (p->>'userId')::uuid, (p->>'courseId')::uuid,
                (p->>'lessonId')::uuid, true, (p->>'completedAt')::timestamptz, (p->>'timeSpent')::int
            from (select $1::jsonb as p) s
            on conflict (id) do update set completed = true, completed_at = excluded.completed_at, time_spent = excluded.time_spent"],
    },
    Handler {
        stream_prefix: "lms.",
        event_type: "lesson-progressed",
        statements: &["update {lms.lesson_progress} x set time_spent = (p->>'timeSpent')::int
            from (select $1::jsonb as p) s where x.id = md5((p->>'userId') || ':' || (p->>'lessonId'))::uuid"],
    },
    Handler {
        stream_prefix: "lms.",
        event_type: "certificate-issued",
        statements: &["insert into {lms.certificates} (id, user_id, user_name, course_id, course_name, instructor_id,
                instructor_name, issue_date, expiry_date, verification_code, template_id)
            select (p->>'certificateId')::uuid, (p->>'userId')::uuid, p->>'userName', (p->>'courseId')::uuid,
                p->>'courseName', (p->>'instructorId')::uuid, p->>'instructorName', (p->>'issueDate')::timestamptz,
                (p->>'expiryDate')::timestamptz, p->>'verificationCode', p->>'templateId'
            from (select $1::jsonb as p) s
            on conflict (id) do nothing"],
    },
];

pub fn projector() -> SqlProjector {
    SqlProjector::new("lms-learning", TABLES, HANDLERS)
}
