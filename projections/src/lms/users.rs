//! `lms.users` (profiles and flags; `last_login` from the identity context's log-ins) and
//! `lms.instructor_applications`. Stored `user-ensured` v1 events (the old `role` enum) are
//! upcast before they are applied, so both shapes yield `is_instructor` / `is_admin`.

use super::{Handler, SqlProjector};

const TABLES: &[&str] = &["lms.users", "lms.instructor_applications"];

const HANDLERS: &[Handler] = &[
    Handler {
        stream_prefix: "lms.",
        event_type: "user-ensured",
        statements: &["insert into {lms.users} (id, first_name, last_name, email, image, is_instructor, is_admin, phone,
                external_id, created_at, updated_at)
            select (p->>'userId')::uuid, p->>'firstName', p->>'lastName', p->>'email', p->>'image',
                coalesce((p->>'isInstructor')::boolean, false), coalesce((p->>'isAdmin')::boolean, false),
                p->>'phone', p->>'externalId', (p->>'at')::timestamptz, (p->>'at')::timestamptz
            from (select $1::jsonb as p) s
            on conflict (id) do nothing"],
    },
    Handler {
        stream_prefix: "lms.",
        event_type: "user-profile-updated",
        // `null` leaves a field as it is; `""` clears an optional one.
        statements: &["update {lms.users} u set
                first_name = coalesce(p->>'firstName', u.first_name),
                last_name = coalesce(p->>'lastName', u.last_name),
                email = coalesce(p->>'email', u.email),
                image = case when p->>'image' is null then u.image else nullif(p->>'image', '') end,
                phone = case when p->>'phone' is null then u.phone else nullif(p->>'phone', '') end,
                external_id = case when p->>'externalId' is null then u.external_id else nullif(p->>'externalId', '') end,
                updated_at = (p->>'at')::timestamptz
            from (select $1::jsonb as p) s where u.id = (p->>'userId')::uuid"],
    },
    Handler {
        stream_prefix: "lms.",
        event_type: "admin-granted",
        statements: &["update {lms.users} u set is_admin = true, updated_at = (p->>'at')::timestamptz
            from (select $1::jsonb as p) s where u.id = (p->>'userId')::uuid"],
    },
    Handler {
        stream_prefix: "lms.",
        event_type: "instructor-granted",
        statements: &["update {lms.users} u set is_instructor = true, updated_at = (p->>'at')::timestamptz
            from (select $1::jsonb as p) s where u.id = (p->>'userId')::uuid"],
    },
    Handler {
        stream_prefix: "identity.",
        event_type: "logged-in",
        statements: &["update {lms.users} u set last_login = (p->>'at')::timestamptz
            from (select $1::jsonb as p) s where u.id = (p->>'account_id')::uuid"],
    },
    Handler {
        stream_prefix: "lms.",
        event_type: "application-submitted",
        statements: &["insert into {lms.instructor_applications} (id, user_id, status, license_number, license_state,
                license_expiry, insurance_provider, documents, submitted_at)
            select (p->>'applicationId')::uuid, (p->>'userId')::uuid, p->>'status', p->>'licenseNumber',
                p->>'licenseState', (p->>'licenseExpiry')::date, p->>'insuranceProvider',
                coalesce(p->'documents', '[]'::jsonb), (p->>'submittedAt')::timestamptz
            from (select $1::jsonb as p) s
            on conflict (id) do nothing"],
    },
    Handler {
        stream_prefix: "lms.",
        event_type: "application-approved",
        statements: &["update {lms.instructor_applications} a set status = 'approved',
                reviewed_at = (p->>'at')::timestamptz, reviewed_by = (p->>'reviewedBy')::uuid
            from (select $1::jsonb as p) s where a.id = (p->>'applicationId')::uuid"],
    },
    Handler {
        stream_prefix: "lms.",
        event_type: "application-rejected",
        statements: &["update {lms.instructor_applications} a set status = 'rejected',
                reviewed_at = (p->>'at')::timestamptz, reviewed_by = (p->>'reviewedBy')::uuid,
                rejection_reason = p->>'reason'
            from (select $1::jsonb as p) s where a.id = (p->>'applicationId')::uuid"],
    },
];

pub fn projector() -> SqlProjector {
    SqlProjector::new("lms-users", TABLES, HANDLERS)
}
