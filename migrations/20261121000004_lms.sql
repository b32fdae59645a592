-- Read tables of the learning platform (seed 004, Doctrina LMS). Projections only: every row is
-- derived from the event log and can be rebuilt. Field names are the seed's in snake_case; times
-- are timestamptz (the seed mixes epoch milliseconds and ISO strings); money is bigint minor
-- units; string arrays are text[] (GIN-indexed where the seed searches them); free-form objects
-- are jsonb. Rows without a natural id (join rows, progress) get a uuid derived from their key.
create schema if not exists lms;

create table lms.users (
    id            uuid primary key,
    first_name    text        not null,
    last_name     text        not null,
    email         text        not null,
    image         text,
    is_instructor boolean     not null default false,
    is_admin      boolean     not null default false,
    phone         text,
    external_id   text,
    last_login    timestamptz,
    created_at    timestamptz not null,
    updated_at    timestamptz not null
);
create index users_by_email on lms.users (email);
create index users_by_external_id on lms.users (external_id);
create index users_by_is_instructor on lms.users (is_instructor);
create index users_by_is_admin on lms.users (is_admin);

create table lms.courses (
    id                  uuid primary key,
    title               text        not null,
    description         text        not null,
    instructor_id       uuid        not null,
    level               text,
    duration            text,
    -- Cents; null or 0 is a free course.
    price               bigint,
    currency            text        not null,
    thumbnail_url       text,
    -- Kept by the projection from course_reviews (never by commands).
    rating              double precision,
    review_count        integer     not null default 0,
    created_at          timestamptz not null,
    updated_at          timestamptz not null,
    long_description    text,
    category            text        not null,
    tags                text[]      not null default '{}',
    visibility          text        not null,
    certificate_enabled boolean     not null,
    discussion_enabled  boolean     not null,
    lesson_count        integer     not null default 0,
    student_count       integer     not null default 0,
    what_you_will_learn text[]      not null default '{}',
    requirements        text[]      not null default '{}',
    -- Archived (soft-deleted) courses stay for their students.
    archived_at         timestamptz
);
create index courses_by_instructor on lms.courses (instructor_id);
create index courses_by_category on lms.courses (category);
create index courses_by_visibility on lms.courses (visibility);
create index courses_by_tags on lms.courses using gin (tags);

create table lms.course_modules (
    id          uuid primary key,
    course_id   uuid        not null,
    title       text        not null,
    description text,
    "order"     integer     not null,
    created_at  timestamptz not null,
    updated_at  timestamptz not null
);
create index course_modules_by_course on lms.course_modules (course_id);
create index course_modules_by_order on lms.course_modules (course_id, "order");

create table lms.lessons (
    id         uuid primary key,
    module_id  uuid        not null,
    course_id  uuid        not null,
    title      text        not null,
    type       text        not null,
    content    text        not null,
    -- Minutes.
    duration   integer,
    "order"    integer     not null,
    created_at timestamptz not null,
    updated_at timestamptz not null
);
create index lessons_by_module on lms.lessons (module_id, "order");
create index lessons_by_course on lms.lessons (course_id);
create index lessons_by_type on lms.lessons (type);

create table lms.quiz_questions (
    id             uuid primary key,
    lesson_id      uuid    not null,
    question       text    not null,
    options        text[]  not null,
    correct_option integer not null,
    explanation    text,
    "order"        integer not null
);
create index quiz_questions_by_lesson on lms.quiz_questions (lesson_id, "order");

create table lms.course_reviews (
    id         uuid primary key,
    course_id  uuid        not null,
    user_id    uuid        not null,
    user_name  text        not null,
    user_image text,
    rating     smallint    not null check (rating between 1 and 5),
    content    text        not null,
    created_at timestamptz not null
);
create index course_reviews_by_course on lms.course_reviews (course_id);
create index course_reviews_by_user on lms.course_reviews (user_id);
create index course_reviews_by_rating on lms.course_reviews (rating);

create table lms.resources (
    id             uuid primary key,
    title          text        not null,
    description    text        not null,
    type           text        not null,
    categories     text[]      not null default '{}',
    tags           text[]      not null default '{}',
    url            text        not null,
    thumbnail_url  text,
    author         text        not null,
    date_added     timestamptz not null,
    featured       boolean     not null default false,
    download_count bigint      not null default 0,
    favorite_count bigint      not null default 0,
    rating         double precision not null default 0,
    review_count   integer     not null default 0,
    difficulty     text        not null,
    duration       text,
    file_size      text,
    course_id      uuid,
    restricted     boolean     not null
);
create index resources_by_course on lms.resources (course_id);
create index resources_by_tags on lms.resources using gin (tags);

create table lms.favorites (
    id          uuid primary key,
    user_id     uuid        not null,
    resource_id uuid        not null,
    created_at  timestamptz not null
);
create unique index favorites_by_user_resource on lms.favorites (user_id, resource_id);

create table lms.notifications (
    id          uuid primary key,
    user_id     uuid        not null,
    title       text        not null,
    description text        not null,
    type        text        not null,
    read        boolean     not null default false,
    created_at  timestamptz not null,
    link        text,
    metadata    jsonb
);
create index notifications_by_user_created on lms.notifications (user_id, created_at);

create table lms.live_sessions (
    id               uuid primary key,
    title            text        not null,
    description      text        not null,
    instructor_id    uuid        not null,
    scheduled_for    timestamptz not null,
    -- Minutes.
    duration         integer     not null,
    is_recorded      boolean     not null,
    max_participants integer     not null,
    status           text        not null,
    recording_url    text,
    participant_count integer    not null default 0
);
create index live_sessions_by_status on lms.live_sessions (status);
create index live_sessions_by_instructor on lms.live_sessions (instructor_id);

create table lms.session_participants (
    id         uuid primary key,
    session_id uuid        not null,
    user_id    uuid        not null,
    joined_at  timestamptz not null
);
create unique index session_participants_by_session on lms.session_participants (session_id, user_id);
create index session_participants_by_user on lms.session_participants (user_id);

create table lms.certificates (
    id                uuid primary key,
    user_id           uuid        not null,
    user_name         text        not null,
    course_id         uuid        not null,
    course_name       text        not null,
    instructor_id     uuid        not null,
    instructor_name   text        not null,
    issue_date        timestamptz not null,
    expiry_date       timestamptz,
    verification_code text        not null,
    template_id       text        not null
);
create index certificates_by_user on lms.certificates (user_id);
create unique index certificates_by_verification on lms.certificates (verification_code);

create table lms.purchases (
    id         uuid primary key,
    user_id    uuid        not null,
    course_id  uuid        not null,
    amount     bigint      not null,
    currency   text        not null,
    status     text        not null,
    created_at timestamptz not null,
    expires_at timestamptz,
    checkout_session_id text,
    closed_at  timestamptz
);
create index purchases_by_user on lms.purchases (user_id);
create index purchases_by_course on lms.purchases (course_id);

create table lms.lesson_progress (
    id           uuid primary key,
    user_id      uuid        not null,
    course_id    uuid        not null,
    lesson_id    uuid        not null,
    completed    boolean     not null,
    completed_at timestamptz,
    -- Seconds.
    time_spent   integer     not null default 0
);
create index lesson_progress_by_user_course on lms.lesson_progress (user_id, course_id);
create index lesson_progress_by_lesson on lms.lesson_progress (lesson_id);

create table lms.instructor_applications (
    id                 uuid primary key,
    user_id            uuid        not null,
    status             text        not null,
    license_number     text        not null,
    license_state      text        not null,
    license_expiry     date        not null,
    insurance_provider text        not null,
    documents          jsonb       not null default '[]',
    submitted_at       timestamptz not null,
    reviewed_at        timestamptz,
    reviewed_by        uuid,
    rejection_reason   text
);
create index instructor_applications_by_user on lms.instructor_applications (user_id);
create index instructor_applications_by_status on lms.instructor_applications (status);

create table lms.course_discussions (
    id         uuid primary key,
    course_id  uuid        not null,
    user_id    uuid        not null,
    title      text,
    content    text        not null,
    parent_id  uuid,
    created_at timestamptz not null,
    updated_at timestamptz not null
);
create index course_discussions_by_course on lms.course_discussions (course_id);
create index course_discussions_by_user on lms.course_discussions (user_id);
create index course_discussions_by_parent on lms.course_discussions (parent_id);

create table lms.wishlist (
    id        uuid primary key,
    user_id   uuid        not null,
    course_id uuid        not null,
    added_at  timestamptz not null
);
create index wishlist_by_user on lms.wishlist (user_id);
create index wishlist_by_course on lms.wishlist (course_id);

create table lms.course_enrollments (
    id          uuid primary key,
    user_id     uuid        not null,
    course_id   uuid        not null,
    status      text        not null,
    enrolled_at timestamptz not null,
    purchase_id uuid
);
create index course_enrollments_by_user on lms.course_enrollments (user_id);
create index course_enrollments_by_course on lms.course_enrollments (course_id);
