//! The marketplace `Chat` aggregate: one conversation and its messages (stream
//! `mkt-chat-{chatId}`, stream type `marketplace.chat`).
//!
//! A chat is a project chat (the project's client and freelancer), a support chat (a user and
//! staff) or a system chat (notices from the platform). Its messages live inside its stream, so
//! every message rule (who may write, pinning, soft deletion, read receipts) is decided against
//! one consistent state.
//!
//! # Who may do what
//!
//! * Create: anyone who is one of the participants; admins, moderators and the system for any
//!   chat. System chats only by the system or an admin. The handler has already checked project
//!   membership and put the project's members into `participants`.
//! * Archive: a participant or staff (admins, moderators) or the system.
//! * Send: the participants; staff (admins, moderators) may also write in any chat, and the
//!   system sends `system` content, which nobody else may.
//! * Pin / unpin: a participant or staff (or the system).
//! * Delete (soft): the message's sender, a moderator or an admin.
//! * Mark read: the participants only (read receipts are theirs).
//!
//! Deleting a pinned message unpins it first (a `message-unpinned` event precedes the
//! `message-deleted` one), so a projector never shows a deleted message as pinned.
//!
//! The state keeps only what decisions need about each message (no content), so snapshots of
//! long chats stay small; the read tables hold the content.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::project::ErrorKind;
use super::{Actor, Role};
use crate::kernel::{Aggregate, DomainEvent};

/// The stream type of marketplace chats.
pub const STREAM_TYPE: &str = "marketplace.chat";

/// The longest message content, in characters.
pub const MAX_MESSAGE_CHARS: usize = 10_000;

/// How many characters of a message the chat list shows.
pub const PREVIEW_CHARS: usize = 120;

/// The preview of a file message without text.
pub const FILE_PREVIEW: &str = "📎 file";

/// The stream of one chat.
pub fn stream_id(chat_id: Uuid) -> String {
    format!("mkt-chat-{chat_id}")
}

// ---------------------------------------------------------------------------------------------
// Value types
// ---------------------------------------------------------------------------------------------

/// What a chat is for.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChatType {
    Project,
    Support,
    System,
}

impl ChatType {
    pub fn as_str(&self) -> &'static str {
        match self {
            ChatType::Project => "project",
            ChatType::Support => "support",
            ChatType::System => "system",
        }
    }
}

/// Whether a chat still takes messages.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChatStatus {
    #[default]
    Active,
    Archived,
}

impl ChatStatus {
    pub fn as_str(&self) -> &'static str {
        match self {
            ChatStatus::Active => "active",
            ChatStatus::Archived => "archived",
        }
    }
}

/// What a message holds.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ContentType {
    /// Text written by a person; must not be empty.
    Text,
    /// One or more attachments, with an optional caption in `content`.
    File,
    /// A notice from the platform; only the system sends these.
    System,
}

impl ContentType {
    pub fn as_str(&self) -> &'static str {
        match self {
            ContentType::Text => "text",
            ContentType::File => "file",
            ContentType::System => "system",
        }
    }
}

/// A file attached to a message (uploaded to storage beforehand).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Attachment {
    pub file_id: String,
    pub file_name: String,
    /// Bytes; never negative.
    pub file_size: i64,
    pub mime_type: String,
    pub url: String,
}

// ---------------------------------------------------------------------------------------------
// Commands (the payloads double as HTTP bodies)
// ---------------------------------------------------------------------------------------------

/// `create-chat`.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateChat {
    pub chat_id: Uuid,
    pub chat_type: ChatType,
    pub participants: Vec<Uuid>,
    /// Required for project chats.
    #[serde(default)]
    pub project_id: Option<Uuid>,
    #[serde(default)]
    pub support_request_id: Option<String>,
    #[serde(default)]
    pub title: Option<String>,
}

/// `archive-chat`: the chat takes no more messages.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ArchiveChat {
    pub chat_id: Uuid,
}

/// `send-message`.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SendMessage {
    pub chat_id: Uuid,
    pub message_id: Uuid,
    #[serde(default)]
    pub content: String,
    pub content_type: ContentType,
    #[serde(default)]
    pub attachments: Vec<Attachment>,
}

/// `pin-message`.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PinMessage {
    pub chat_id: Uuid,
    pub message_id: Uuid,
}

/// `unpin-message`.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UnpinMessage {
    pub chat_id: Uuid,
    pub message_id: Uuid,
}

/// `delete-message` (soft delete).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DeleteMessage {
    pub chat_id: Uuid,
    pub message_id: Uuid,
}

/// `mark-messages-read`: every message up to and including `up_to_message_id`.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MarkMessagesRead {
    pub chat_id: Uuid,
    pub up_to_message_id: Uuid,
}

/// A command to a chat. `actor` comes from the session (or the scheduler); `at` is the
/// handler's clock.
#[derive(Debug, Clone, PartialEq)]
pub struct ChatCommand {
    pub actor: Actor,
    pub at: DateTime<Utc>,
    pub action: ChatAction,
}

impl ChatCommand {
    /// The stream the command goes to.
    pub fn stream_id(&self) -> String {
        stream_id(self.action.chat_id())
    }
}

/// Every action on a chat, one variant per payload.
#[derive(Debug, Clone, PartialEq)]
pub enum ChatAction {
    CreateChat(CreateChat),
    ArchiveChat(ArchiveChat),
    SendMessage(SendMessage),
    PinMessage(PinMessage),
    UnpinMessage(UnpinMessage),
    DeleteMessage(DeleteMessage),
    MarkMessagesRead(MarkMessagesRead),
}

macro_rules! chat_actions {
    ($($variant:ident => $name:literal),* $(,)?) => {
        $(
            impl From<$variant> for ChatAction {
                fn from(payload: $variant) -> Self {
                    ChatAction::$variant(payload)
                }
            }
        )*

        impl ChatAction {
            /// The chat (and so the stream) the action addresses.
            pub fn chat_id(&self) -> Uuid {
                match self {
                    $(ChatAction::$variant(p) => p.chat_id,)*
                }
            }

            /// A stable kebab-case name, for logs and metrics.
            pub fn name(&self) -> &'static str {
                match self {
                    $(ChatAction::$variant(_) => $name,)*
                }
            }
        }
    };
}

chat_actions! {
    CreateChat => "create-chat",
    ArchiveChat => "archive-chat",
    SendMessage => "send-message",
    PinMessage => "pin-message",
    UnpinMessage => "unpin-message",
    DeleteMessage => "delete-message",
    MarkMessagesRead => "mark-messages-read",
}

// ---------------------------------------------------------------------------------------------
// Events
// ---------------------------------------------------------------------------------------------

/// What happened in a chat. The tag (`chat-created`, `message-sent`, …) is the stored event type;
/// every event carries what the `chats` and `messages` read tables need.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum ChatEvent {
    #[serde(rename_all = "camelCase")]
    ChatCreated {
        chat_id: Uuid,
        chat_type: ChatType,
        /// Without duplicates, in the order given.
        participants: Vec<Uuid>,
        project_id: Option<Uuid>,
        support_request_id: Option<String>,
        title: Option<String>,
        /// Always `active`.
        status: ChatStatus,
        created_by: Uuid,
        at: DateTime<Utc>,
    },
    #[serde(rename_all = "camelCase")]
    ChatArchived {
        chat_id: Uuid,
        /// Always `archived`.
        status: ChatStatus,
        archived_by: Uuid,
        at: DateTime<Utc>,
    },
    #[serde(rename_all = "camelCase")]
    MessageSent {
        chat_id: Uuid,
        message_id: Uuid,
        sender_id: Uuid,
        sender_role: Role,
        content: String,
        content_type: ContentType,
        attachments: Vec<Attachment>,
        /// The chat list's `lastMessagePreview`: the first 120 characters of the content (its
        /// whitespace collapsed), or `📎 file` for a file message without text.
        preview: String,
        /// Also the chat's `lastMessageAt`.
        at: DateTime<Utc>,
    },
    #[serde(rename_all = "camelCase")]
    MessagePinned { chat_id: Uuid, message_id: Uuid, pinned_by: Uuid, at: DateTime<Utc> },
    #[serde(rename_all = "camelCase")]
    MessageUnpinned { chat_id: Uuid, message_id: Uuid, unpinned_by: Uuid, at: DateTime<Utc> },
    #[serde(rename_all = "camelCase")]
    MessageDeleted { chat_id: Uuid, message_id: Uuid, deleted_by: Uuid, at: DateTime<Utc> },
    #[serde(rename_all = "camelCase")]
    MessagesRead {
        chat_id: Uuid,
        reader_id: Uuid,
        /// The messages newly read, in the order they were sent.
        message_ids: Vec<Uuid>,
        at: DateTime<Utc>,
    },
}

impl DomainEvent for ChatEvent {}

impl ChatEvent {
    /// The chat the event belongs to.
    pub fn chat_id(&self) -> Uuid {
        match self {
            ChatEvent::ChatCreated { chat_id, .. }
            | ChatEvent::ChatArchived { chat_id, .. }
            | ChatEvent::MessageSent { chat_id, .. }
            | ChatEvent::MessagePinned { chat_id, .. }
            | ChatEvent::MessageUnpinned { chat_id, .. }
            | ChatEvent::MessageDeleted { chat_id, .. }
            | ChatEvent::MessagesRead { chat_id, .. } => *chat_id,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------

/// Why a chat command was refused: one variant per rule.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ChatError {
    #[error("only the chat's participants may do this")]
    NotAParticipant,
    #[error("the creator of a chat must be one of its participants")]
    CreatorNotAParticipant,
    #[error("only the system or an admin may create a system chat")]
    SystemChatRestricted,
    #[error("only the system may send system messages")]
    SystemContentRestricted,
    #[error("only the sender, a moderator or an admin may delete a message")]
    NotTheSender,
    #[error("the chat does not exist")]
    ChatNotFound,
    #[error("message {message_id} does not exist in this chat")]
    MessageNotFound { message_id: Uuid },
    #[error("the chat already exists")]
    ChatAlreadyExists,
    #[error("message {message_id} already exists")]
    MessageAlreadyExists { message_id: Uuid },
    #[error("the chat is archived")]
    ChatArchived,
    #[error("message {message_id} is deleted")]
    MessageDeleted { message_id: Uuid },
    #[error("message {message_id} is already pinned")]
    AlreadyPinned { message_id: Uuid },
    #[error("message {message_id} is not pinned")]
    NotPinned { message_id: Uuid },
    #[error("a project chat needs a project id")]
    ProjectIdRequired,
    #[error("a chat needs at least one participant")]
    NoParticipants,
    #[error("the message is empty")]
    EmptyMessage,
    #[error("the message has {length} characters, at most {max} are allowed")]
    MessageTooLong { length: usize, max: usize },
    #[error("a file message needs at least one attachment")]
    AttachmentRequired,
    #[error("invalid attachment: {reason}")]
    InvalidAttachment { reason: &'static str },
}

impl ChatError {
    /// The HTTP class of the refusal.
    pub fn kind(&self) -> ErrorKind {
        use ChatError::*;
        match self {
            NotAParticipant
            | CreatorNotAParticipant
            | SystemChatRestricted
            | SystemContentRestricted
            | NotTheSender => ErrorKind::Forbidden,
            ChatNotFound | MessageNotFound { .. } => ErrorKind::NotFound,
            ChatAlreadyExists
            | MessageAlreadyExists { .. }
            | ChatArchived
            | MessageDeleted { .. }
            | AlreadyPinned { .. }
            | NotPinned { .. } => ErrorKind::Conflict,
            ProjectIdRequired
            | NoParticipants
            | EmptyMessage
            | MessageTooLong { .. }
            | AttachmentRequired
            | InvalidAttachment { .. } => ErrorKind::Invalid,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// State
// ---------------------------------------------------------------------------------------------

/// What the chat keeps about one message: what its rules need, not its content.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MessageState {
    pub message_id: Uuid,
    pub sender_id: Uuid,
    pub sender_role: Role,
    pub content_type: ContentType,
    pub sent_at: DateTime<Utc>,
    pub pinned: bool,
    pub deleted: bool,
    pub deleted_by: Option<Uuid>,
    pub deleted_at: Option<DateTime<Utc>>,
    /// Who has read it, and when.
    pub read_by: BTreeMap<Uuid, DateTime<Utc>>,
}

impl MessageState {
    pub fn is_read_by(&self, user_id: Uuid) -> bool {
        self.read_by.contains_key(&user_id)
    }
}

/// A chat as its events left it. Fields are private: only `evolve` writes them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Chat {
    exists: bool,
    chat_id: Option<Uuid>,
    chat_type: Option<ChatType>,
    participants: Vec<Uuid>,
    project_id: Option<Uuid>,
    support_request_id: Option<String>,
    title: Option<String>,
    status: ChatStatus,
    created_by: Option<Uuid>,
    created_at: Option<DateTime<Utc>>,
    archived_at: Option<DateTime<Utc>>,
    last_message_at: Option<DateTime<Utc>>,
    last_message_preview: Option<String>,
    /// In the order sent.
    messages: Vec<MessageState>,
    /// Message id → position in `messages`.
    message_index: BTreeMap<Uuid, usize>,
}

impl Chat {
    pub fn exists(&self) -> bool {
        self.exists
    }
    pub fn chat_id(&self) -> Option<Uuid> {
        self.chat_id
    }
    pub fn chat_type(&self) -> Option<ChatType> {
        self.chat_type
    }
    pub fn participants(&self) -> &[Uuid] {
        &self.participants
    }
    pub fn project_id(&self) -> Option<Uuid> {
        self.project_id
    }
    pub fn support_request_id(&self) -> Option<&str> {
        self.support_request_id.as_deref()
    }
    pub fn title(&self) -> Option<&str> {
        self.title.as_deref()
    }
    pub fn status(&self) -> ChatStatus {
        self.status
    }
    pub fn created_by(&self) -> Option<Uuid> {
        self.created_by
    }
    pub fn created_at(&self) -> Option<DateTime<Utc>> {
        self.created_at
    }
    pub fn archived_at(&self) -> Option<DateTime<Utc>> {
        self.archived_at
    }
    pub fn last_message_at(&self) -> Option<DateTime<Utc>> {
        self.last_message_at
    }
    pub fn last_message_preview(&self) -> Option<&str> {
        self.last_message_preview.as_deref()
    }
    /// Every message, deleted ones included, in the order sent.
    pub fn messages(&self) -> &[MessageState] {
        &self.messages
    }
    pub fn message(&self, message_id: Uuid) -> Option<&MessageState> {
        self.message_index.get(&message_id).and_then(|&i| self.messages.get(i))
    }
    /// The pinned messages, in the order sent.
    pub fn pinned_messages(&self) -> Vec<Uuid> {
        self.messages.iter().filter(|m| m.pinned).map(|m| m.message_id).collect()
    }
    /// How many messages (not deleted, not their own) `user_id` has not read.
    pub fn unread_count(&self, user_id: Uuid) -> usize {
        self.messages.iter().filter(|m| !m.deleted && m.sender_id != user_id && !m.is_read_by(user_id)).count()
    }
    pub fn is_participant(&self, user_id: Uuid) -> bool {
        self.participants.contains(&user_id)
    }

    fn message_mut(&mut self, message_id: Uuid) -> Option<&mut MessageState> {
        let i = *self.message_index.get(&message_id)?;
        self.messages.get_mut(i)
    }

    /// The chat the command names, if it exists (and is this stream's).
    fn require_chat(&self, chat_id: Uuid) -> Result<(), ChatError> {
        if self.exists && self.chat_id == Some(chat_id) {
            Ok(())
        } else {
            Err(ChatError::ChatNotFound)
        }
    }

    fn find_message(&self, message_id: Uuid) -> Result<&MessageState, ChatError> {
        self.message(message_id).ok_or(ChatError::MessageNotFound { message_id })
    }

    /// A live (not deleted) message.
    fn find_live_message(&self, message_id: Uuid) -> Result<&MessageState, ChatError> {
        let message = self.find_message(message_id)?;
        if message.deleted {
            return Err(ChatError::MessageDeleted { message_id });
        }
        Ok(message)
    }

    /// Participants, staff and the system may act on the chat as a whole.
    fn require_member_or_staff(&self, actor: &Actor) -> Result<(), ChatError> {
        if self.is_participant(actor.id) || actor.is_staff() || actor.role == Role::System {
            Ok(())
        } else {
            Err(ChatError::NotAParticipant)
        }
    }

    fn decide_create(&self, actor: &Actor, p: &CreateChat, at: DateTime<Utc>) -> Result<Vec<ChatEvent>, ChatError> {
        if self.exists {
            return Err(ChatError::ChatAlreadyExists);
        }
        let privileged = actor.is_staff() || actor.role == Role::System;
        if p.chat_type == ChatType::System && !matches!(actor.role, Role::System | Role::Admin) {
            return Err(ChatError::SystemChatRestricted);
        }
        if p.chat_type == ChatType::Project && p.project_id.is_none() {
            return Err(ChatError::ProjectIdRequired);
        }
        let mut seen = BTreeSet::new();
        let participants: Vec<Uuid> = p.participants.iter().copied().filter(|id| seen.insert(*id)).collect();
        if participants.is_empty() {
            return Err(ChatError::NoParticipants);
        }
        if !privileged && !participants.contains(&actor.id) {
            return Err(ChatError::CreatorNotAParticipant);
        }
        Ok(vec![ChatEvent::ChatCreated {
            chat_id: p.chat_id,
            chat_type: p.chat_type,
            participants,
            project_id: p.project_id,
            support_request_id: non_blank(&p.support_request_id),
            title: non_blank(&p.title),
            status: ChatStatus::Active,
            created_by: actor.id,
            at,
        }])
    }

    fn decide_send(&self, actor: &Actor, p: &SendMessage, at: DateTime<Utc>) -> Result<Vec<ChatEvent>, ChatError> {
        self.require_chat(p.chat_id)?;
        self.require_member_or_staff(actor)?;
        if p.content_type == ContentType::System && actor.role != Role::System {
            return Err(ChatError::SystemContentRestricted);
        }
        if self.status == ChatStatus::Archived {
            return Err(ChatError::ChatArchived);
        }
        if self.message_index.contains_key(&p.message_id) {
            return Err(ChatError::MessageAlreadyExists { message_id: p.message_id });
        }
        let length = p.content.chars().count();
        if length > MAX_MESSAGE_CHARS {
            return Err(ChatError::MessageTooLong { length, max: MAX_MESSAGE_CHARS });
        }
        match p.content_type {
            ContentType::Text | ContentType::System if p.content.trim().is_empty() => {
                return Err(ChatError::EmptyMessage);
            }
            ContentType::File if p.attachments.is_empty() => return Err(ChatError::AttachmentRequired),
            _ => {}
        }
        for attachment in &p.attachments {
            check_attachment(attachment)?;
        }
        Ok(vec![ChatEvent::MessageSent {
            chat_id: p.chat_id,
            message_id: p.message_id,
            sender_id: actor.id,
            sender_role: actor.role,
            content: p.content.clone(),
            content_type: p.content_type,
            attachments: p.attachments.clone(),
            preview: preview(&p.content, p.content_type),
            at,
        }])
    }

    fn decide_delete(&self, actor: &Actor, p: &DeleteMessage, at: DateTime<Utc>) -> Result<Vec<ChatEvent>, ChatError> {
        self.require_chat(p.chat_id)?;
        let message = self.find_message(p.message_id)?;
        if message.sender_id != actor.id && !actor.is_staff() {
            return Err(ChatError::NotTheSender);
        }
        if message.deleted {
            return Err(ChatError::MessageDeleted { message_id: p.message_id });
        }
        let mut events = Vec::with_capacity(2);
        if message.pinned {
            events.push(ChatEvent::MessageUnpinned {
                chat_id: p.chat_id,
                message_id: p.message_id,
                unpinned_by: actor.id,
                at,
            });
        }
        events.push(ChatEvent::MessageDeleted {
            chat_id: p.chat_id,
            message_id: p.message_id,
            deleted_by: actor.id,
            at,
        });
        Ok(events)
    }

    fn decide_mark_read(
        &self,
        actor: &Actor,
        p: &MarkMessagesRead,
        at: DateTime<Utc>,
    ) -> Result<Vec<ChatEvent>, ChatError> {
        self.require_chat(p.chat_id)?;
        if !self.is_participant(actor.id) {
            return Err(ChatError::NotAParticipant);
        }
        let upto = *self
            .message_index
            .get(&p.up_to_message_id)
            .ok_or(ChatError::MessageNotFound { message_id: p.up_to_message_id })?;
        let message_ids: Vec<Uuid> = self.messages[..=upto]
            .iter()
            .filter(|m| m.sender_id != actor.id && !m.is_read_by(actor.id))
            .map(|m| m.message_id)
            .collect();
        if message_ids.is_empty() {
            return Ok(vec![]);
        }
        Ok(vec![ChatEvent::MessagesRead { chat_id: p.chat_id, reader_id: actor.id, message_ids, at }])
    }
}

/// Trimmed text, `None` when blank.
fn non_blank(text: &Option<String>) -> Option<String> {
    text.as_deref().map(str::trim).filter(|t| !t.is_empty()).map(str::to_owned)
}

fn check_attachment(attachment: &Attachment) -> Result<(), ChatError> {
    if attachment.file_id.trim().is_empty() {
        return Err(ChatError::InvalidAttachment { reason: "the file id is empty" });
    }
    if attachment.file_name.trim().is_empty() {
        return Err(ChatError::InvalidAttachment { reason: "the file name is empty" });
    }
    if attachment.file_size < 0 {
        return Err(ChatError::InvalidAttachment { reason: "the file size is negative" });
    }
    if attachment.url.trim().is_empty() {
        return Err(ChatError::InvalidAttachment { reason: "the url is empty" });
    }
    Ok(())
}

/// The chat list's preview of a message: its whitespace collapsed, cut to [`PREVIEW_CHARS`]
/// characters; [`FILE_PREVIEW`] for a file message without text.
pub fn preview(content: &str, content_type: ContentType) -> String {
    let collapsed = content.split_whitespace().collect::<Vec<_>>().join(" ");
    if collapsed.is_empty() && content_type == ContentType::File {
        return FILE_PREVIEW.to_owned();
    }
    collapsed.chars().take(PREVIEW_CHARS).collect()
}

impl Aggregate for Chat {
    const STREAM_TYPE: &'static str = STREAM_TYPE;
    type Event = ChatEvent;
    type Command = ChatCommand;
    type Error = ChatError;

    fn decide(&self, command: &ChatCommand) -> Result<Vec<ChatEvent>, ChatError> {
        let ChatCommand { actor, at, action } = command;
        let at = *at;
        match action {
            ChatAction::CreateChat(p) => self.decide_create(actor, p, at),
            ChatAction::ArchiveChat(p) => {
                self.require_chat(p.chat_id)?;
                self.require_member_or_staff(actor)?;
                if self.status == ChatStatus::Archived {
                    return Err(ChatError::ChatArchived);
                }
                Ok(vec![ChatEvent::ChatArchived {
                    chat_id: p.chat_id,
                    status: ChatStatus::Archived,
                    archived_by: actor.id,
                    at,
                }])
            }
            ChatAction::SendMessage(p) => self.decide_send(actor, p, at),
            ChatAction::PinMessage(p) => {
                self.require_chat(p.chat_id)?;
                self.require_member_or_staff(actor)?;
                let message = self.find_live_message(p.message_id)?;
                if message.pinned {
                    return Err(ChatError::AlreadyPinned { message_id: p.message_id });
                }
                Ok(vec![ChatEvent::MessagePinned {
                    chat_id: p.chat_id,
                    message_id: p.message_id,
                    pinned_by: actor.id,
                    at,
                }])
            }
            ChatAction::UnpinMessage(p) => {
                self.require_chat(p.chat_id)?;
                self.require_member_or_staff(actor)?;
                let message = self.find_live_message(p.message_id)?;
                if !message.pinned {
                    return Err(ChatError::NotPinned { message_id: p.message_id });
                }
                Ok(vec![ChatEvent::MessageUnpinned {
                    chat_id: p.chat_id,
                    message_id: p.message_id,
                    unpinned_by: actor.id,
                    at,
                }])
            }
            ChatAction::DeleteMessage(p) => self.decide_delete(actor, p, at),
            ChatAction::MarkMessagesRead(p) => self.decide_mark_read(actor, p, at),
        }
    }

    fn evolve(&mut self, event: &ChatEvent) {
        match event {
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
                self.exists = true;
                self.chat_id = Some(*chat_id);
                self.chat_type = Some(*chat_type);
                self.participants = participants.clone();
                self.project_id = *project_id;
                self.support_request_id = support_request_id.clone();
                self.title = title.clone();
                self.status = *status;
                self.created_by = Some(*created_by);
                self.created_at = Some(*at);
            }
            ChatEvent::ChatArchived { status, at, .. } => {
                self.status = *status;
                self.archived_at = Some(*at);
            }
            ChatEvent::MessageSent { message_id, sender_id, sender_role, content_type, preview, at, .. } => {
                self.message_index.insert(*message_id, self.messages.len());
                self.messages.push(MessageState {
                    message_id: *message_id,
                    sender_id: *sender_id,
                    sender_role: *sender_role,
                    content_type: *content_type,
                    sent_at: *at,
                    pinned: false,
                    deleted: false,
                    deleted_by: None,
                    deleted_at: None,
                    read_by: BTreeMap::new(),
                });
                self.last_message_at = Some(*at);
                self.last_message_preview = Some(preview.clone());
            }
            ChatEvent::MessagePinned { message_id, .. } => {
                if let Some(message) = self.message_mut(*message_id) {
                    message.pinned = true;
                }
            }
            ChatEvent::MessageUnpinned { message_id, .. } => {
                if let Some(message) = self.message_mut(*message_id) {
                    message.pinned = false;
                }
            }
            ChatEvent::MessageDeleted { message_id, deleted_by, at, .. } => {
                if let Some(message) = self.message_mut(*message_id) {
                    message.deleted = true;
                    message.deleted_by = Some(*deleted_by);
                    message.deleted_at = Some(*at);
                }
            }
            ChatEvent::MessagesRead { reader_id, message_ids, at, .. } => {
                for message_id in message_ids {
                    if let Some(message) = self.message_mut(*message_id) {
                        message.read_by.entry(*reader_id).or_insert(*at);
                    }
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------------

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernel::{decode_event, encode_event, TestHarness};

    const CHAT: Uuid = Uuid::from_u128(0xC4A7);
    const PROJECT: Uuid = Uuid::from_u128(0x1);
    const CLIENT: Uuid = Uuid::from_u128(0xC1);
    const FREELANCER: Uuid = Uuid::from_u128(0xF1);
    const STRANGER: Uuid = Uuid::from_u128(0x57);
    const ADMIN: Uuid = Uuid::from_u128(0xAD);
    const MODERATOR: Uuid = Uuid::from_u128(0x30);
    const M1: Uuid = Uuid::from_u128(0x101);
    const M2: Uuid = Uuid::from_u128(0x102);
    const M3: Uuid = Uuid::from_u128(0x103);
    const M4: Uuid = Uuid::from_u128(0x104);

    fn t(minutes: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_735_689_600 + minutes * 60, 0).expect("valid time")
    }

    fn client() -> Actor {
        Actor { id: CLIENT, role: Role::Client }
    }
    fn freelancer() -> Actor {
        Actor { id: FREELANCER, role: Role::Freelancer }
    }
    fn stranger() -> Actor {
        Actor { id: STRANGER, role: Role::Client }
    }
    fn admin() -> Actor {
        Actor { id: ADMIN, role: Role::Admin }
    }
    fn moderator() -> Actor {
        Actor { id: MODERATOR, role: Role::Moderator }
    }
    fn system() -> Actor {
        Actor::system()
    }

    fn cmd(actor: Actor, at: DateTime<Utc>, action: impl Into<ChatAction>) -> ChatCommand {
        ChatCommand { actor, at, action: action.into() }
    }

    fn create(chat_type: ChatType, participants: Vec<Uuid>) -> CreateChat {
        CreateChat {
            chat_id: CHAT,
            chat_type,
            participants,
            project_id: (chat_type == ChatType::Project).then_some(PROJECT),
            support_request_id: None,
            title: None,
        }
    }

    fn created() -> ChatEvent {
        ChatEvent::ChatCreated {
            chat_id: CHAT,
            chat_type: ChatType::Project,
            participants: vec![CLIENT, FREELANCER],
            project_id: Some(PROJECT),
            support_request_id: None,
            title: Some("Website rebuild".into()),
            status: ChatStatus::Active,
            created_by: CLIENT,
            at: t(0),
        }
    }

    fn archived() -> ChatEvent {
        ChatEvent::ChatArchived { chat_id: CHAT, status: ChatStatus::Archived, archived_by: CLIENT, at: t(50) }
    }

    fn text(message_id: Uuid, content: &str) -> SendMessage {
        SendMessage {
            chat_id: CHAT,
            message_id,
            content: content.into(),
            content_type: ContentType::Text,
            attachments: vec![],
        }
    }

    fn sent(message_id: Uuid, sender: Actor, minute: i64) -> ChatEvent {
        ChatEvent::MessageSent {
            chat_id: CHAT,
            message_id,
            sender_id: sender.id,
            sender_role: sender.role,
            content: "hello".into(),
            content_type: ContentType::Text,
            attachments: vec![],
            preview: "hello".into(),
            at: t(minute),
        }
    }

    fn attachment() -> Attachment {
        Attachment {
            file_id: "kg2abc".into(),
            file_name: "design.pdf".into(),
            file_size: 52_000,
            mime_type: "application/pdf".into(),
            url: "https://files.example.com/kg2abc".into(),
        }
    }

    fn pinned(message_id: Uuid) -> ChatEvent {
        ChatEvent::MessagePinned { chat_id: CHAT, message_id, pinned_by: CLIENT, at: t(20) }
    }

    fn deleted(message_id: Uuid) -> ChatEvent {
        ChatEvent::MessageDeleted { chat_id: CHAT, message_id, deleted_by: CLIENT, at: t(21) }
    }

    fn pin(message_id: Uuid) -> PinMessage {
        PinMessage { chat_id: CHAT, message_id }
    }
    fn unpin(message_id: Uuid) -> UnpinMessage {
        UnpinMessage { chat_id: CHAT, message_id }
    }
    fn delete(message_id: Uuid) -> DeleteMessage {
        DeleteMessage { chat_id: CHAT, message_id }
    }
    fn mark_read(up_to_message_id: Uuid) -> MarkMessagesRead {
        MarkMessagesRead { chat_id: CHAT, up_to_message_id }
    }

    // create-chat

    #[test]
    fn it_should_create_a_project_chat_for_its_participants() {
        let action = CreateChat {
            title: Some("  Website rebuild ".into()),
            ..create(ChatType::Project, vec![CLIENT, FREELANCER, CLIENT])
        };
        TestHarness::<Chat>::given([]).when(cmd(client(), t(0), action)).then([created()]);
        let chat = Chat::fold([created()].iter());
        assert!(chat.exists());
        assert_eq!(chat.participants(), &[CLIENT, FREELANCER]);
        assert_eq!(chat.status(), ChatStatus::Active);
        assert_eq!(chat.title(), Some("Website rebuild"));
    }

    #[test]
    fn it_should_not_create_a_project_chat_without_a_project_id() {
        let action = CreateChat { project_id: None, ..create(ChatType::Project, vec![CLIENT]) };
        TestHarness::<Chat>::given([]).when(cmd(client(), t(0), action)).then_error(ChatError::ProjectIdRequired);
    }

    #[test]
    fn it_should_not_create_a_chat_without_participants() {
        TestHarness::<Chat>::given([])
            .when(cmd(admin(), t(0), create(ChatType::Support, vec![])))
            .then_error(ChatError::NoParticipants);
    }

    #[test]
    fn it_should_not_let_a_user_create_a_chat_they_are_not_part_of() {
        TestHarness::<Chat>::given([])
            .when(cmd(stranger(), t(0), create(ChatType::Support, vec![CLIENT])))
            .then_error(ChatError::CreatorNotAParticipant);
    }

    #[test]
    fn it_should_let_a_moderator_open_a_support_chat_for_a_user() {
        let action = CreateChat { support_request_id: Some("SR-7".into()), ..create(ChatType::Support, vec![CLIENT]) };
        TestHarness::<Chat>::given([]).when(cmd(moderator(), t(0), action)).then([ChatEvent::ChatCreated {
            chat_id: CHAT,
            chat_type: ChatType::Support,
            participants: vec![CLIENT],
            project_id: None,
            support_request_id: Some("SR-7".into()),
            title: None,
            status: ChatStatus::Active,
            created_by: MODERATOR,
            at: t(0),
        }]);
    }

    #[test]
    fn it_should_only_let_the_system_or_an_admin_create_a_system_chat() {
        TestHarness::<Chat>::given([])
            .when(cmd(client(), t(0), create(ChatType::System, vec![CLIENT])))
            .then_error(ChatError::SystemChatRestricted);
        TestHarness::<Chat>::given([])
            .when(cmd(moderator(), t(0), create(ChatType::System, vec![CLIENT])))
            .then_error(ChatError::SystemChatRestricted);
        let events = TestHarness::<Chat>::given([])
            .when(cmd(system(), t(0), create(ChatType::System, vec![CLIENT])))
            .events()
            .expect("the system may create a system chat");
        assert_eq!(events.len(), 1);
        assert!(TestHarness::<Chat>::given([])
            .when(cmd(admin(), t(0), create(ChatType::System, vec![CLIENT])))
            .events()
            .is_ok());
    }

    #[test]
    fn it_should_not_create_a_chat_twice() {
        TestHarness::<Chat>::given([created()])
            .when(cmd(client(), t(1), create(ChatType::Project, vec![CLIENT, FREELANCER])))
            .then_error(ChatError::ChatAlreadyExists);
    }

    // archive-chat

    #[test]
    fn it_should_let_a_participant_archive_a_chat() {
        TestHarness::<Chat>::given([created()])
            .when(cmd(client(), t(50), ArchiveChat { chat_id: CHAT }))
            .then([archived()]);
        let chat = Chat::fold([created(), archived()].iter());
        assert_eq!(chat.status(), ChatStatus::Archived);
        assert_eq!(chat.archived_at(), Some(t(50)));
    }

    #[test]
    fn it_should_let_staff_archive_a_chat() {
        TestHarness::<Chat>::given([created()]).when(cmd(moderator(), t(50), ArchiveChat { chat_id: CHAT })).then([
            ChatEvent::ChatArchived { chat_id: CHAT, status: ChatStatus::Archived, archived_by: MODERATOR, at: t(50) },
        ]);
    }

    #[test]
    fn it_should_not_let_a_stranger_archive_a_chat() {
        TestHarness::<Chat>::given([created()])
            .when(cmd(stranger(), t(50), ArchiveChat { chat_id: CHAT }))
            .then_error(ChatError::NotAParticipant);
    }

    #[test]
    fn it_should_not_archive_a_chat_twice() {
        TestHarness::<Chat>::given([created(), archived()])
            .when(cmd(client(), t(51), ArchiveChat { chat_id: CHAT }))
            .then_error(ChatError::ChatArchived);
    }

    #[test]
    fn it_should_not_archive_a_chat_that_does_not_exist() {
        TestHarness::<Chat>::given([])
            .when(cmd(admin(), t(50), ArchiveChat { chat_id: CHAT }))
            .then_error(ChatError::ChatNotFound);
    }

    // send-message

    #[test]
    fn it_should_let_a_participant_send_a_text_message() {
        let sent = ChatEvent::MessageSent {
            chat_id: CHAT,
            message_id: M1,
            sender_id: FREELANCER,
            sender_role: Role::Freelancer,
            content: "Hi!\n\nFirst draft is up.".into(),
            content_type: ContentType::Text,
            attachments: vec![],
            preview: "Hi! First draft is up.".into(),
            at: t(5),
        };
        TestHarness::<Chat>::given([created()])
            .when(cmd(freelancer(), t(5), text(M1, "Hi!\n\nFirst draft is up.")))
            .then([sent.clone()]);
        let chat = Chat::fold([created(), sent].iter());
        assert_eq!(chat.last_message_at(), Some(t(5)));
        assert_eq!(chat.last_message_preview(), Some("Hi! First draft is up."));
        assert_eq!(chat.messages().len(), 1);
        assert_eq!(chat.unread_count(CLIENT), 1);
        assert_eq!(chat.unread_count(FREELANCER), 0);
    }

    #[test]
    fn it_should_not_let_a_non_participant_send_a_message() {
        TestHarness::<Chat>::given([created()])
            .when(cmd(stranger(), t(5), text(M1, "hello")))
            .then_error(ChatError::NotAParticipant);
    }

    #[test]
    fn it_should_let_staff_write_in_a_chat_they_are_not_part_of() {
        let events = TestHarness::<Chat>::given([created()])
            .when(cmd(moderator(), t(5), text(M1, "Moderator here.")))
            .events()
            .expect("staff may write");
        assert!(matches!(
            &events[..],
            [ChatEvent::MessageSent { sender_id: MODERATOR, sender_role: Role::Moderator, .. }]
        ));
    }

    #[test]
    fn it_should_only_let_the_system_send_system_messages() {
        let notice = SendMessage { content_type: ContentType::System, ..text(M1, "Milestone 1 was funded.") };
        TestHarness::<Chat>::given([created()])
            .when(cmd(admin(), t(5), notice.clone()))
            .then_error(ChatError::SystemContentRestricted);
        TestHarness::<Chat>::given([created()]).when(cmd(system(), t(5), notice)).then([ChatEvent::MessageSent {
            chat_id: CHAT,
            message_id: M1,
            sender_id: Uuid::nil(),
            sender_role: Role::System,
            content: "Milestone 1 was funded.".into(),
            content_type: ContentType::System,
            attachments: vec![],
            preview: "Milestone 1 was funded.".into(),
            at: t(5),
        }]);
    }

    #[test]
    fn it_should_not_send_a_message_in_an_archived_chat() {
        TestHarness::<Chat>::given([created(), archived()])
            .when(cmd(client(), t(60), text(M1, "hello?")))
            .then_error(ChatError::ChatArchived);
    }

    #[test]
    fn it_should_not_send_an_empty_text_message() {
        TestHarness::<Chat>::given([created()])
            .when(cmd(client(), t(5), text(M1, "  \n ")))
            .then_error(ChatError::EmptyMessage);
    }

    #[test]
    fn it_should_not_send_a_message_longer_than_10000_characters() {
        let long = "é".repeat(MAX_MESSAGE_CHARS + 1);
        TestHarness::<Chat>::given([created()])
            .when(cmd(client(), t(5), text(M1, &long)))
            .then_error(ChatError::MessageTooLong { length: 10_001, max: 10_000 });
        let limit = "é".repeat(MAX_MESSAGE_CHARS);
        let events = TestHarness::<Chat>::given([created()])
            .when(cmd(client(), t(5), text(M1, &limit)))
            .events()
            .expect("exactly 10 000 characters is allowed");
        let [ChatEvent::MessageSent { preview, .. }] = &events[..] else { panic!("one message-sent") };
        assert_eq!(preview.chars().count(), PREVIEW_CHARS);
    }

    #[test]
    fn it_should_not_send_a_file_message_without_an_attachment() {
        let file = SendMessage { content_type: ContentType::File, ..text(M1, "") };
        TestHarness::<Chat>::given([created()])
            .when(cmd(client(), t(5), file))
            .then_error(ChatError::AttachmentRequired);
    }

    #[test]
    fn it_should_preview_a_file_message_without_text_as_a_file() {
        let file = SendMessage { content_type: ContentType::File, attachments: vec![attachment()], ..text(M1, "") };
        TestHarness::<Chat>::given([created()]).when(cmd(client(), t(5), file)).then([ChatEvent::MessageSent {
            chat_id: CHAT,
            message_id: M1,
            sender_id: CLIENT,
            sender_role: Role::Client,
            content: String::new(),
            content_type: ContentType::File,
            attachments: vec![attachment()],
            preview: "📎 file".into(),
            at: t(5),
        }]);
        assert_eq!(preview("The brief", ContentType::File), "The brief");
    }

    #[test]
    fn it_should_refuse_an_attachment_with_a_negative_size() {
        let file = SendMessage {
            content_type: ContentType::File,
            attachments: vec![Attachment { file_size: -1, ..attachment() }],
            ..text(M1, "")
        };
        TestHarness::<Chat>::given([created()])
            .when(cmd(client(), t(5), file))
            .then_error(ChatError::InvalidAttachment { reason: "the file size is negative" });
    }

    #[test]
    fn it_should_not_reuse_a_message_id() {
        TestHarness::<Chat>::given([created(), sent(M1, client(), 1)])
            .when(cmd(freelancer(), t(5), text(M1, "again")))
            .then_error(ChatError::MessageAlreadyExists { message_id: M1 });
    }

    #[test]
    fn it_should_not_send_a_message_to_a_chat_that_does_not_exist() {
        TestHarness::<Chat>::given([]).when(cmd(client(), t(5), text(M1, "hi"))).then_error(ChatError::ChatNotFound);
        let other_chat = SendMessage { chat_id: Uuid::from_u128(0xBAD), ..text(M1, "hi") };
        TestHarness::<Chat>::given([created()])
            .when(cmd(client(), t(5), other_chat))
            .then_error(ChatError::ChatNotFound);
    }

    // pin-message / unpin-message

    #[test]
    fn it_should_let_a_participant_pin_a_message() {
        TestHarness::<Chat>::given([created(), sent(M1, freelancer(), 1)])
            .when(cmd(client(), t(20), pin(M1)))
            .then([pinned(M1)]);
        let chat = Chat::fold([created(), sent(M1, freelancer(), 1), pinned(M1)].iter());
        assert_eq!(chat.pinned_messages(), vec![M1]);
    }

    #[test]
    fn it_should_let_staff_pin_a_message() {
        TestHarness::<Chat>::given([created(), sent(M1, freelancer(), 1)])
            .when(cmd(admin(), t(20), pin(M1)))
            .then([ChatEvent::MessagePinned { chat_id: CHAT, message_id: M1, pinned_by: ADMIN, at: t(20) }]);
    }

    #[test]
    fn it_should_not_let_a_stranger_pin_a_message() {
        TestHarness::<Chat>::given([created(), sent(M1, freelancer(), 1)])
            .when(cmd(stranger(), t(20), pin(M1)))
            .then_error(ChatError::NotAParticipant);
    }

    #[test]
    fn it_should_not_pin_a_deleted_message() {
        TestHarness::<Chat>::given([created(), sent(M1, client(), 1), deleted(M1)])
            .when(cmd(client(), t(22), pin(M1)))
            .then_error(ChatError::MessageDeleted { message_id: M1 });
    }

    #[test]
    fn it_should_not_pin_a_message_twice() {
        TestHarness::<Chat>::given([created(), sent(M1, client(), 1), pinned(M1)])
            .when(cmd(freelancer(), t(22), pin(M1)))
            .then_error(ChatError::AlreadyPinned { message_id: M1 });
    }

    #[test]
    fn it_should_not_pin_a_message_that_does_not_exist() {
        TestHarness::<Chat>::given([created()])
            .when(cmd(client(), t(22), pin(M1)))
            .then_error(ChatError::MessageNotFound { message_id: M1 });
    }

    #[test]
    fn it_should_unpin_a_pinned_message() {
        let unpinned = ChatEvent::MessageUnpinned { chat_id: CHAT, message_id: M1, unpinned_by: FREELANCER, at: t(30) };
        TestHarness::<Chat>::given([created(), sent(M1, client(), 1), pinned(M1)])
            .when(cmd(freelancer(), t(30), unpin(M1)))
            .then([unpinned.clone()]);
        let chat = Chat::fold([created(), sent(M1, client(), 1), pinned(M1), unpinned].iter());
        assert!(chat.pinned_messages().is_empty());
    }

    #[test]
    fn it_should_not_unpin_a_message_that_is_not_pinned() {
        TestHarness::<Chat>::given([created(), sent(M1, client(), 1)])
            .when(cmd(client(), t(30), unpin(M1)))
            .then_error(ChatError::NotPinned { message_id: M1 });
    }

    #[test]
    fn it_should_not_let_a_stranger_unpin_a_message() {
        TestHarness::<Chat>::given([created(), sent(M1, client(), 1), pinned(M1)])
            .when(cmd(stranger(), t(30), unpin(M1)))
            .then_error(ChatError::NotAParticipant);
    }

    // delete-message

    #[test]
    fn it_should_let_the_sender_delete_their_message() {
        TestHarness::<Chat>::given([created(), sent(M1, client(), 1)])
            .when(cmd(client(), t(21), delete(M1)))
            .then([deleted(M1)]);
        let chat = Chat::fold([created(), sent(M1, client(), 1), deleted(M1)].iter());
        let message = chat.message(M1).expect("soft-deleted messages are kept");
        assert!(message.deleted);
        assert_eq!(message.deleted_by, Some(CLIENT));
        assert_eq!(message.deleted_at, Some(t(21)));
    }

    #[test]
    fn it_should_let_a_moderator_delete_any_message() {
        TestHarness::<Chat>::given([created(), sent(M1, client(), 1)])
            .when(cmd(moderator(), t(21), delete(M1)))
            .then([ChatEvent::MessageDeleted { chat_id: CHAT, message_id: M1, deleted_by: MODERATOR, at: t(21) }]);
    }

    #[test]
    fn it_should_not_let_another_participant_delete_a_message() {
        TestHarness::<Chat>::given([created(), sent(M1, client(), 1)])
            .when(cmd(freelancer(), t(21), delete(M1)))
            .then_error(ChatError::NotTheSender);
    }

    #[test]
    fn it_should_not_delete_a_message_twice() {
        TestHarness::<Chat>::given([created(), sent(M1, client(), 1), deleted(M1)])
            .when(cmd(client(), t(22), delete(M1)))
            .then_error(ChatError::MessageDeleted { message_id: M1 });
    }

    #[test]
    fn it_should_unpin_a_pinned_message_when_it_is_deleted() {
        TestHarness::<Chat>::given([created(), sent(M1, client(), 1), pinned(M1)])
            .when(cmd(client(), t(21), delete(M1)))
            .then([
                ChatEvent::MessageUnpinned { chat_id: CHAT, message_id: M1, unpinned_by: CLIENT, at: t(21) },
                deleted(M1),
            ]);
    }

    #[test]
    fn it_should_not_delete_a_message_that_does_not_exist() {
        TestHarness::<Chat>::given([created()])
            .when(cmd(admin(), t(21), delete(M1)))
            .then_error(ChatError::MessageNotFound { message_id: M1 });
    }

    // mark-messages-read

    fn conversation() -> Vec<ChatEvent> {
        vec![
            created(),
            sent(M1, freelancer(), 1),
            sent(M2, client(), 2),
            sent(M3, freelancer(), 3),
            sent(M4, freelancer(), 4),
        ]
    }

    #[test]
    fn it_should_mark_every_message_up_to_the_given_one_as_read_except_the_readers_own() {
        let read = ChatEvent::MessagesRead { chat_id: CHAT, reader_id: CLIENT, message_ids: vec![M1, M3], at: t(10) };
        TestHarness::<Chat>::given(conversation()).when(cmd(client(), t(10), mark_read(M3))).then([read.clone()]);
        let mut events = conversation();
        events.push(read);
        let chat = Chat::fold(events.iter());
        assert!(chat.message(M1).unwrap().is_read_by(CLIENT));
        assert!(!chat.message(M4).unwrap().is_read_by(CLIENT));
        assert_eq!(chat.unread_count(CLIENT), 1);
    }

    #[test]
    fn it_should_not_mark_a_message_read_twice() {
        let mut events = conversation();
        events.push(ChatEvent::MessagesRead { chat_id: CHAT, reader_id: CLIENT, message_ids: vec![M1], at: t(5) });
        TestHarness::<Chat>::given(events).when(cmd(client(), t(10), mark_read(M4))).then([ChatEvent::MessagesRead {
            chat_id: CHAT,
            reader_id: CLIENT,
            message_ids: vec![M3, M4],
            at: t(10),
        }]);
    }

    #[test]
    fn it_should_record_nothing_when_no_message_is_newly_read() {
        let mut events = conversation();
        events.push(ChatEvent::MessagesRead { chat_id: CHAT, reader_id: CLIENT, message_ids: vec![M1], at: t(5) });
        TestHarness::<Chat>::given(events).when(cmd(client(), t(10), mark_read(M2))).then([]);
    }

    #[test]
    fn it_should_only_let_participants_mark_messages_read() {
        TestHarness::<Chat>::given(conversation())
            .when(cmd(moderator(), t(10), mark_read(M4)))
            .then_error(ChatError::NotAParticipant);
    }

    #[test]
    fn it_should_not_mark_messages_read_up_to_an_unknown_message() {
        TestHarness::<Chat>::given(conversation())
            .when(cmd(client(), t(10), mark_read(Uuid::from_u128(0x999))))
            .then_error(ChatError::MessageNotFound { message_id: Uuid::from_u128(0x999) });
    }

    // wire formats

    #[test]
    fn it_should_read_command_bodies_in_camel_case_and_refuse_unknown_fields() {
        let body = serde_json::json!({
            "chatId": CHAT,
            "messageId": M1,
            "content": "",
            "contentType": "file",
            "attachments": [{
                "fileId": "kg2abc",
                "fileName": "design.pdf",
                "fileSize": 52000,
                "mimeType": "application/pdf",
                "url": "https://files.example.com/kg2abc"
            }]
        });
        let send: SendMessage = serde_json::from_value(body).unwrap();
        assert_eq!(send.attachments, vec![attachment()]);
        let create: CreateChat = serde_json::from_value(serde_json::json!({
            "chatId": CHAT, "chatType": "support", "participants": [CLIENT]
        }))
        .unwrap();
        assert_eq!(create.project_id, None);
        assert!(serde_json::from_value::<ArchiveChat>(serde_json::json!({ "chatId": CHAT, "x": 1 })).is_err());
    }

    #[test]
    fn it_should_store_events_under_kebab_case_types_with_camel_case_fields() {
        let (event_type, payload) = encode_event(&sent(M1, client(), 1)).unwrap();
        assert_eq!(event_type, "message-sent");
        assert_eq!(payload["senderRole"], "client");
        assert_eq!(payload["contentType"], "text");
        assert_eq!(payload["chatId"], CHAT.to_string());
        let (event_type, payload) = encode_event(&created()).unwrap();
        assert_eq!(event_type, "chat-created");
        assert_eq!(payload["chatType"], "project");
        let back: ChatEvent = decode_event(&event_type, &payload).unwrap();
        assert_eq!(back, created());
        assert_eq!(
            encode_event(&ChatEvent::MessagesRead { chat_id: CHAT, reader_id: CLIENT, message_ids: vec![], at: t(0) })
                .unwrap()
                .0,
            "messages-read"
        );
        assert_eq!(cmd(client(), t(0), ArchiveChat { chat_id: CHAT }).stream_id(), format!("mkt-chat-{CHAT}"));
    }

    #[test]
    fn it_should_classify_every_error() {
        use ChatError::*;
        for forbidden in
            [NotAParticipant, CreatorNotAParticipant, SystemChatRestricted, SystemContentRestricted, NotTheSender]
        {
            assert_eq!(forbidden.kind(), ErrorKind::Forbidden, "{forbidden:?}");
        }
        for not_found in [ChatNotFound, MessageNotFound { message_id: M1 }] {
            assert_eq!(not_found.kind(), ErrorKind::NotFound, "{not_found:?}");
        }
        for conflict in [
            ChatAlreadyExists,
            MessageAlreadyExists { message_id: M1 },
            ChatArchived,
            MessageDeleted { message_id: M1 },
            AlreadyPinned { message_id: M1 },
            NotPinned { message_id: M1 },
        ] {
            assert_eq!(conflict.kind(), ErrorKind::Conflict, "{conflict:?}");
        }
        for invalid in [
            ProjectIdRequired,
            NoParticipants,
            EmptyMessage,
            MessageTooLong { length: 1, max: 0 },
            AttachmentRequired,
            InvalidAttachment { reason: "x" },
        ] {
            assert_eq!(invalid.kind(), ErrorKind::Invalid, "{invalid:?}");
        }
    }
}
