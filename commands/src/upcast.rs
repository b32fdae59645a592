//! Upcasters: old stored event shapes become current ones on read. Stored events are never
//! rewritten; a registry keyed by (event type, schema version) lifts a payload one version at a
//! time until it reaches the current one.

use crate::store::RecordedEvent;
use serde_json::Value;
use std::collections::HashMap;

type Upcaster = Box<dyn Fn(Value) -> Value + Send + Sync>;

#[derive(Default)]
pub struct Upcasters {
    map: HashMap<(String, i32), Upcaster>,
}

impl Upcasters {
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers the step that turns `event_type` at `from_version` into `from_version + 1`.
    pub fn register(
        &mut self,
        event_type: &str,
        from_version: i32,
        step: impl Fn(Value) -> Value + Send + Sync + 'static,
    ) -> &mut Self {
        self.map.insert((event_type.to_owned(), from_version), Box::new(step));
        self
    }

    /// Lifts `event` to the newest shape the registry knows.
    pub fn upcast(&self, event: &mut RecordedEvent) {
        if self.map.is_empty() {
            return;
        }
        while let Some(step) = self.map.get(&(event.event_type.clone(), event.schema_version)) {
            let payload = std::mem::take(&mut event.payload);
            event.payload = step(payload);
            event.schema_version += 1;
        }
    }
}
