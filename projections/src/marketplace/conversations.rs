//! `marketplace.chats` and `marketplace.messages`, from the chat streams. The chat row keeps the
//! last message's time and preview; messages keep pins, soft deletion and read receipts.

use super::decode;
use crate::{ProjectionError, Tables};
use commands::RecordedEvent;
use domain::marketplace::chat::ChatEvent;
use serde_json::json;
use sqlx::PgConnection;

pub struct ConversationsProjector;

async fn apply_one(conn: &mut PgConnection, tables: &Tables, e: &RecordedEvent) -> Result<(), ProjectionError> {
    let chats = tables.get("marketplace.chats");
    let messages = tables.get("marketplace.messages");
    match decode::<ChatEvent>(e)? {
        ChatEvent::ChatCreated {
            chat_id,
            chat_type,
            participants,
            project_id,
            support_request_id,
            title,
            status,
            created_by,
            at,
        } => {
            sqlx::query(&format!(
                "insert into {chats} (id, type, participants, project_id, support_request_id, title, status, created_by, created_at, updated_at)
                 values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9) on conflict (id) do nothing"
            ))
            .bind(chat_id)
            .bind(chat_type.as_str())
            .bind(&participants)
            .bind(project_id)
            .bind(support_request_id)
            .bind(title)
            .bind(status.as_str())
            .bind(created_by)
            .bind(at)
            .execute(&mut *conn)
            .await?;
        }
        ChatEvent::ChatArchived { chat_id, status, at, .. } => {
            super::set_status(conn, chats, chat_id, status.as_str(), at).await?;
        }
        ChatEvent::MessageSent {
            chat_id,
            message_id,
            sender_id,
            sender_role,
            content,
            content_type,
            attachments,
            preview,
            at,
        } => {
            sqlx::query(&format!(
                "insert into {messages} (id, chat_id, sender_id, sender_role, content, content_type, attachments, created_at, updated_at)
                 values ($1, $2, $3, $4, $5, $6, $7, $8, $8) on conflict (id) do nothing"
            ))
            .bind(message_id)
            .bind(chat_id)
            .bind(sender_id)
            .bind(sender_role.as_str())
            .bind(content)
            .bind(content_type.as_str())
            .bind(json!(attachments))
            .bind(at)
            .execute(&mut *conn)
            .await?;
            sqlx::query(&format!(
                "update {chats} set last_message_at = $2, last_message_preview = $3, updated_at = $2 where id = $1"
            ))
            .bind(chat_id)
            .bind(at)
            .bind(preview)
            .execute(&mut *conn)
            .await?;
        }
        ChatEvent::MessagePinned { message_id, at, .. } | ChatEvent::MessageUnpinned { message_id, at, .. } => {
            let pinned = e.event_type == "message-pinned";
            sqlx::query(&format!("update {messages} set is_pinned = $2, updated_at = $3 where id = $1"))
                .bind(message_id)
                .bind(pinned)
                .bind(at)
                .execute(&mut *conn)
                .await?;
        }
        ChatEvent::MessageDeleted { message_id, deleted_by, at, .. } => {
            sqlx::query(&format!(
                "update {messages} set is_deleted = true, is_pinned = false, deleted_at = $2, deleted_by = $3, updated_at = $2 where id = $1"
            ))
            .bind(message_id)
            .bind(at)
            .bind(deleted_by)
            .execute(&mut *conn)
            .await?;
        }
        ChatEvent::MessagesRead { reader_id, message_ids, at, .. } => {
            sqlx::query(&format!(
                "update {messages} set read_by = read_by || jsonb_build_array(jsonb_build_object('userId', $2::uuid, 'readAt', $3::timestamptz))
                 where id = any($1) and not read_by @> jsonb_build_array(jsonb_build_object('userId', $2::uuid))"
            ))
            .bind(&message_ids)
            .bind(reader_id)
            .bind(at)
            .execute(&mut *conn)
            .await?;
        }
    }
    Ok(())
}

super::per_event_projector!(
    ConversationsProjector,
    "marketplace-conversations",
    &[
        "chat-created",
        "chat-archived",
        "message-sent",
        "message-pinned",
        "message-unpinned",
        "message-deleted",
        "messages-read"
    ],
    &["marketplace.chats", "marketplace.messages"],
    apply_one
);
