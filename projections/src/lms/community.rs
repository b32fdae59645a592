//! Community and live features: `lms.course_discussions`, `lms.wishlist`, `lms.resources` (with
//! projected download and favourite counts), `lms.favorites`, `lms.notifications`,
//! `lms.live_sessions` and `lms.session_participants`.

use super::{Handler, SqlProjector};

const TABLES: &[&str] = &[
    "lms.course_discussions",
    "lms.wishlist",
    "lms.resources",
    "lms.favorites",
    "lms.notifications",
    "lms.live_sessions",
    "lms.session_participants",
];

/// The favourite count of a resource, recounted from its favourite rows.
const RECOUNT_FAVORITES: &str = "update {lms.resources} r set favorite_count =
        (select count(*) from {lms.favorites} f where f.resource_id = r.id)
    where r.id = ($1::jsonb->>'resourceId')::uuid";

/// A live session changing status (started, completed with its recording, cancelled).
const SESSION_STATUS: &[&str] = &["update {lms.live_sessions} x set status = p->>'status',
        recording_url = coalesce(p->>'recordingUrl', x.recording_url)
    from (select $1::jsonb as p) s where x.id = (p->>'sessionId')::uuid"];

const HANDLERS: &[Handler] = &[
    Handler {
        stream_prefix: "lms.",
        event_type: "discussion-posted",
        statements: &["insert into {lms.course_discussions} (id, course_id, user_id, title, content, parent_id, created_at, updated_at)
            select (p->>'discussionId')::uuid, (p->>'courseId')::uuid, (p->>'userId')::uuid, p->>'title', p->>'content',
                (p->>'parentId')::uuid, (p->>'at')::timestamptz, (p->>'at')::timestamptz
            from (select $1::jsonb as p) s
            on conflict (id) do nothing"],
    },
    Handler {
        stream_prefix: "lms.",
        event_type: "wishlist-item-added",
        statements: &["insert into {lms.wishlist} (id, user_id, course_id, added_at)
            select md5((p->>'userId') || ':' || (p->>'courseId'))::uuid, (p->>'userId')::uuid, (p->>'courseId')::uuid,
                (p->>'at')::timestamptz
            from (select $1::jsonb as p) s
            on conflict (id) do nothing"],
    },
    Handler {
        stream_prefix: "lms.",
        event_type: "wishlist-item-removed",
        statements: &["delete from {lms.wishlist}
            where id = md5(($1::jsonb->>'userId') || ':' || ($1::jsonb->>'courseId'))::uuid"],
    },
    Handler {
        stream_prefix: "lms.",
        event_type: "resource-added",
        statements: &["insert into {lms.resources} (id, title, description, type, categories, tags, url, thumbnail_url, author,
                date_added, featured, difficulty, duration, file_size, course_id, restricted)
            select (p->>'resourceId')::uuid, p->>'title', p->>'description', p->>'resourceType',
                array(select jsonb_array_elements_text(p->'categories')), array(select jsonb_array_elements_text(p->'tags')),
                p->>'url', p->>'thumbnailUrl', p->>'author', (p->>'at')::timestamptz, (p->>'featured')::boolean,
                p->>'difficulty', p->>'duration', p->>'fileSize', (p->>'courseId')::uuid, (p->>'restricted')::boolean
            from (select $1::jsonb as p) s
            on conflict (id) do nothing"],
    },
    Handler {
        stream_prefix: "lms.",
        event_type: "resource-featured",
        statements: &["update {lms.resources} set featured = ($1::jsonb->>'featured')::boolean
            where id = ($1::jsonb->>'resourceId')::uuid"],
    },
    Handler {
        stream_prefix: "lms.",
        event_type: "resource-downloaded",
        statements: &["update {lms.resources} set download_count = ($1::jsonb->>'downloadCount')::bigint
            where id = ($1::jsonb->>'resourceId')::uuid"],
    },
    Handler {
        stream_prefix: "lms.",
        event_type: "favorite-added",
        statements: &[
            "insert into {lms.favorites} (id, user_id, resource_id, created_at)
            select md5((p->>'userId') || ':' || (p->>'resourceId'))::uuid, (p->>'userId')::uuid, (p->>'resourceId')::uuid,
                (p->>'at')::timestamptz
            from (select $1::jsonb as p) s
            on conflict (id) do nothing",
            RECOUNT_FAVORITES,
        ],
    },
    Handler {
        stream_prefix: "lms.",
        event_type: "favorite-removed",
        statements: &[
            "delete from {lms.favorites} where id = md5(($1::jsonb->>'userId') || ':' || ($1::jsonb->>'resourceId'))::uuid",
            RECOUNT_FAVORITES,
        ],
    },
    Handler {
        stream_prefix: "lms.",
        event_type: "notification-created",
        statements: &["insert into {lms.notifications} (id, user_id, title, description, type, read, created_at, link, metadata)
            select (p->>'notificationId')::uuid, (p->>'userId')::uuid, p->>'title', p->>'description',
                p->>'notificationType', false, (p->>'at')::timestamptz, p->>'link', nullif(p->'metadata', 'null'::jsonb)
            from (select $1::jsonb as p) s
            on conflict (id) do nothing"],
    },
    Handler {
        stream_prefix: "lms.",
        event_type: "notification-read",
        statements: &["update {lms.notifications} set read = true where id = ($1::jsonb->>'notificationId')::uuid"],
    },
    Handler {
        stream_prefix: "lms.",
        event_type: "live-session-scheduled",
        statements: &["insert into {lms.live_sessions} (id, title, description, instructor_id, scheduled_for, duration,
                is_recorded, max_participants, status)
            select (p->>'sessionId')::uuid, p->>'title', p->>'description', (p->>'instructorId')::uuid,
                (p->>'scheduledFor')::timestamptz, (p->>'durationMinutes')::int, (p->>'isRecorded')::boolean,
                (p->>'maxParticipants')::int, p->>'status'
            from (select $1::jsonb as p) s
            on conflict (id) do nothing"],
    },
    Handler { stream_prefix: "lms.", event_type: "live-session-started", statements: SESSION_STATUS },
    Handler { stream_prefix: "lms.", event_type: "live-session-completed", statements: SESSION_STATUS },
    Handler { stream_prefix: "lms.", event_type: "live-session-cancelled", statements: SESSION_STATUS },
    Handler {
        stream_prefix: "lms.",
        event_type: "participant-joined",
        statements: &[
            "insert into {lms.session_participants} (id, session_id, user_id, joined_at)
            select md5((p->>'sessionId') || ':' || (p->>'userId'))::uuid, (p->>'sessionId')::uuid, (p->>'userId')::uuid,
                (p->>'joinedAt')::timestamptz
            from (select $1::jsonb as p) s
            on conflict (id) do nothing",
            "update {lms.live_sessions} set participant_count = ($1::jsonb->>'participantCount')::int
            where id = ($1::jsonb->>'sessionId')::uuid",
        ],
    },
];

pub fn projector() -> SqlProjector {
    SqlProjector::new("lms-community", TABLES, HANDLERS)
}
