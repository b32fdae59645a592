//! Who sent a command, why and when: carried into every event's metadata, which the audit log
//! projection is built from.

use crate::store::IdempotencyKey;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct CommandContext {
    pub command_name: String,
    pub command_id: Uuid,
    pub correlation_id: Uuid,
    pub causation_id: Option<Uuid>,
    pub actor_id: Option<String>,
    pub actor_role: Option<String>,
    pub client_ip: Option<String>,
    pub user_agent: Option<String>,
    pub at: DateTime<Utc>,
    #[serde(skip)]
    pub idempotency: Option<IdempotencyKey>,
    /// `If-Match`: the command applies only if its stream is at this version.
    #[serde(skip)]
    pub expected_version: Option<i64>,
}

impl CommandContext {
    /// A context for `command_name` sent by `actor` at `at`; ids are fresh.
    pub fn new(command_name: &str, at: DateTime<Utc>) -> Self {
        let id = Uuid::now_v7();
        Self {
            command_name: command_name.to_owned(),
            command_id: id,
            correlation_id: id,
            causation_id: None,
            actor_id: None,
            actor_role: None,
            client_ip: None,
            user_agent: None,
            at,
            idempotency: None,
            expected_version: None,
        }
    }

    pub fn with_actor(mut self, id: impl Into<String>, role: impl Into<String>) -> Self {
        self.actor_id = Some(id.into());
        self.actor_role = Some(role.into());
        self
    }

    /// The metadata stored with each event of this command.
    pub fn metadata(&self) -> Value {
        serde_json::to_value(self).expect("context serialises")
    }
}
