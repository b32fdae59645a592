//! The catalogue: `lms.courses` (with the projected `lesson_count`, `student_count`, `rating` and
//! `review_count`), `lms.course_modules`, `lms.lessons`, `lms.quiz_questions` and
//! `lms.course_reviews`. Rating and review count are recomputed from the review rows of the
//! course each time, so they are exact; the student count grows by one per `enrolled` event
//! (an enrolment stream decides `enrolled` at most once).

use super::{Handler, SqlProjector};

const TABLES: &[&str] =
    &["lms.courses", "lms.course_modules", "lms.lessons", "lms.quiz_questions", "lms.course_reviews"];

const HANDLERS: &[Handler] = &[
    Handler {
        stream_prefix: "lms.",
        event_type: "course-created",
        statements: &["insert into {lms.courses} (id, title, description, instructor_id, level, duration, price, currency,
                thumbnail_url, created_at, updated_at, long_description, category, tags, visibility,
                certificate_enabled, discussion_enabled, what_you_will_learn, requirements)
            select (p->>'courseId')::uuid, p->>'title', p->>'description', (p->>'instructorId')::uuid, p->>'level',
                p->>'duration', (p->>'price')::bigint, p->>'currency', p->>'thumbnailUrl', (p->>'at')::timestamptz,
                (p->>'at')::timestamptz, p->>'longDescription', p->>'category',
                array(select jsonb_array_elements_text(p->'tags')), p->>'visibility',
                (p->>'certificateEnabled')::boolean, (p->>'discussionEnabled')::boolean,
                array(select jsonb_array_elements_text(p->'whatYouWillLearn')),
                array(select jsonb_array_elements_text(p->'requirements'))
            from (select $1::jsonb as p) s
            on conflict (id) do nothing"],
    },
    Handler {
        stream_prefix: "lms.",
        event_type: "course-details-updated",
        // `null` = unchanged; `""` clears an optional text; a list replaces the list.
        statements: &["update {lms.courses} c set
                title = coalesce(p->>'title', c.title),
                description = coalesce(p->>'description', c.description),
                long_description = case when p->>'longDescription' is null then c.long_description else nullif(p->>'longDescription', '') end,
                level = coalesce(p->>'level', c.level),
                duration = case when p->>'duration' is null then c.duration else nullif(p->>'duration', '') end,
                price = coalesce((p->>'price')::bigint, c.price),
                currency = coalesce(p->>'currency', c.currency),
                category = coalesce(p->>'category', c.category),
                tags = case when jsonb_typeof(p->'tags') = 'array' then array(select jsonb_array_elements_text(p->'tags')) else c.tags end,
                certificate_enabled = coalesce((p->>'certificateEnabled')::boolean, c.certificate_enabled),
                discussion_enabled = coalesce((p->>'discussionEnabled')::boolean, c.discussion_enabled),
                thumbnail_url = case when p->>'thumbnailUrl' is null then c.thumbnail_url else nullif(p->>'thumbnailUrl', '') end,
                what_you_will_learn = case when jsonb_typeof(p->'whatYouWillLearn') = 'array'
                    then array(select jsonb_array_elements_text(p->'whatYouWillLearn')) else c.what_you_will_learn end,
                requirements = case when jsonb_typeof(p->'requirements') = 'array'
                    then array(select jsonb_array_elements_text(p->'requirements')) else c.requirements end,
                updated_at = (p->>'at')::timestamptz
            from (select $1::jsonb as p) s where c.id = (p->>'courseId')::uuid"],
    },
    Handler {
        stream_prefix: "lms.",
        event_type: "course-visibility-changed",
        statements: &["update {lms.courses} c set visibility = p->>'visibility', updated_at = (p->>'at')::timestamptz
            from (select $1::jsonb as p) s where c.id = (p->>'courseId')::uuid"],
    },
    Handler {
        stream_prefix: "lms.",
        event_type: "course-module-added",
        statements: &["insert into {lms.course_modules} (id, course_id, title, description, \"order\", created_at, updated_at)
            select (p->>'moduleId')::uuid, (p->>'courseId')::uuid, p->>'title', p->>'description', (p->>'order')::int,
                (p->>'at')::timestamptz, (p->>'at')::timestamptz
            from (select $1::jsonb as p) s
            on conflict (id) do nothing"],
    },
    Handler {
        stream_prefix: "lms.",
        event_type: "lesson-added",
        statements: &[
            "insert into {lms.lessons} (id, module_id, course_id, title, type, content, duration, \"order\", created_at, updated_at)
            select (p->>'lessonId')::uuid, (p->>'moduleId')::uuid, (p->>'courseId')::uuid, p->>'title', p->>'lessonType',
                p->>'content', (p->>'duration')::int, (p->>'order')::int, (p->>'at')::timestamptz, (p->>'at')::timestamptz
            from (select $1::jsonb as p) s
            on conflict (id) do nothing",
            "update {lms.courses} c set lesson_count = (p->>'lessonCount')::int, updated_at = (p->>'at')::timestamptz
            from (select $1::jsonb as p) s where c.id = (p->>'courseId')::uuid",
        ],
    },
    Handler {
        stream_prefix: "lms.",
        event_type: "quiz-question-added",
        statements: &["insert into {lms.quiz_questions} (id, lesson_id, question, options, correct_option, explanation, \"order\")
            select (p->>'questionId')::uuid, (p->>'lessonId')::uuid, p->>'question',
                array(select jsonb_array_elements_text(p->'options')), (p->>'correctOption')::int, p->>'explanation',
                (p->>'order')::int
            from (select $1::jsonb as p) s
            on conflict (id) do nothing"],
    },
    Handler {
        stream_prefix: "lms.",
        event_type: "modules-reordered",
        statements: &["update {lms.course_modules} m set \"order\" = o.ord, updated_at = (p->>'at')::timestamptz
            from (select $1::jsonb as p) s, jsonb_array_elements_text(s.p->'moduleIds') with ordinality as o(id, ord)
            where m.id = o.id::uuid"],
    },
    Handler {
        stream_prefix: "lms.",
        event_type: "lessons-reordered",
        statements: &["update {lms.lessons} l set \"order\" = o.ord, updated_at = (p->>'at')::timestamptz
            from (select $1::jsonb as p) s, jsonb_array_elements_text(s.p->'lessonIds') with ordinality as o(id, ord)
            where l.id = o.id::uuid"],
    },
    Handler {
        stream_prefix: "lms.",
        event_type: "course-archived",
        statements: &["update {lms.courses} c set archived_at = (p->>'at')::timestamptz, updated_at = (p->>'at')::timestamptz
            from (select $1::jsonb as p) s where c.id = (p->>'courseId')::uuid"],
    },
    Handler {
        stream_prefix: "lms.",
        event_type: "course-deleted",
        statements: &[
            "delete from {lms.quiz_questions} q using {lms.lessons} l
            where q.lesson_id = l.id and l.course_id = ($1::jsonb->>'courseId')::uuid",
            "delete from {lms.lessons} where course_id = ($1::jsonb->>'courseId')::uuid",
            "delete from {lms.course_modules} where course_id = ($1::jsonb->>'courseId')::uuid",
            "delete from {lms.courses} where id = ($1::jsonb->>'courseId')::uuid",
        ],
    },
    Handler {
        stream_prefix: "lms.",
        event_type: "course-reviewed",
        statements: &[
            "insert into {lms.course_reviews} (id, course_id, user_id, user_name, user_image, rating, content, created_at)
            select md5((p->>'courseId') || ':' || (p->>'userId'))::uuid, (p->>'courseId')::uuid, (p->>'userId')::uuid,
                p->>'userName', p->>'userImage', (p->>'rating')::smallint, p->>'content', (p->>'at')::timestamptz
            from (select $1::jsonb as p) s
            on conflict (id) do nothing",
            "update {lms.courses} c set review_count = r.n, rating = r.average
            from (select count(*)::int as n, avg(rating)::double precision as average from {lms.course_reviews}
                  where course_id = ($1::jsonb->>'courseId')::uuid) r
            where c.id = ($1::jsonb->>'courseId')::uuid",
        ],
    },
    Handler {
        stream_prefix: "lms.",
        event_type: "enrolled",
        statements: &["update {lms.courses} set student_count = student_count + 1 where id = ($1::jsonb->>'courseId')::uuid"],
    },
];

pub fn projector() -> SqlProjector {
    SqlProjector::new("lms-catalog", TABLES, HANDLERS)
}
