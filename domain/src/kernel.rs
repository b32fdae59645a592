//! The contract between the pure domain and the engine.
//!
//! An aggregate is a state folded from its own stream's events (`evolve`) and a pure decision
//! function (`decide`) that turns a command into new events or refuses it with a typed rule error.
//! The engine (`commands/`) loads, folds, decides and appends; this module knows nothing about it.

use serde::{de::DeserializeOwned, Serialize};
use serde_json::Value;

/// An event enum of one aggregate. Events are serde enums tagged by `type`
/// (`#[serde(tag = "type", rename_all = "kebab-case")]`): the tag is the stored event type and the
/// rest of the object is the stored payload.
pub trait DomainEvent: Serialize + DeserializeOwned + Clone + Send + Sync + 'static {
    /// The current schema version of an event type. Stored events of an older version are turned
    /// into the current shape by the upcasters registered in the engine before they reach `evolve`.
    fn schema_version(_event_type: &str) -> i32 {
        1
    }
}

/// Errors turning events to and from their stored form.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum EventCodecError {
    /// The event did not serialise to a JSON object with a string `type` tag.
    #[error("event is not a JSON object tagged with a string `type`")]
    NotTagged,
    /// The stored payload does not fit the current event shape.
    #[error("event {event_type} does not decode: {message}")]
    Decode { event_type: String, message: String },
}

/// Splits an event into its stored type and payload.
pub fn encode_event<E: DomainEvent>(event: &E) -> Result<(String, Value), EventCodecError> {
    let value = serde_json::to_value(event).map_err(|_| EventCodecError::NotTagged)?;
    let Value::Object(mut map) = value else { return Err(EventCodecError::NotTagged) };
    let Some(Value::String(event_type)) = map.remove("type") else { return Err(EventCodecError::NotTagged) };
    Ok((event_type, Value::Object(map)))
}

/// Rebuilds an event from its stored type and (already upcast) payload. The payload is read in
/// place, the tag presented in front of its fields: no copy of the payload is made (every load of
/// an aggregate and every projector passes each event through here).
pub fn decode_event<E: DomainEvent>(event_type: &str, payload: &Value) -> Result<E, EventCodecError> {
    let fail = |message: String| EventCodecError::Decode { event_type: event_type.to_owned(), message };
    let empty = serde_json::Map::new();
    let fields = match payload {
        Value::Object(map) => map,
        Value::Null => &empty,
        _ => return Err(fail("payload is not an object".into())),
    };
    let tag = Value::String(event_type.to_owned());
    let entries = std::iter::once(("type", &tag))
        .chain(fields.iter().filter(|(k, _)| k.as_str() != "type").map(|(k, v)| (k.as_str(), v)));
    E::deserialize(serde::de::value::MapDeserializer::<_, serde_json::Error>::new(entries))
        .map_err(|e| fail(e.to_string()))
}

/// One consistency boundary: a stream of events and the rules that guard it.
pub trait Aggregate: Clone + Default + Serialize + DeserializeOwned + Send + Sync + 'static {
    /// `{context}.{type}`, e.g. `marketplace.milestone`. Also the NATS subject prefix.
    const STREAM_TYPE: &'static str;
    /// Bump when the state's serialised shape changes: stored snapshots of another version are
    /// ignored and rebuilt from the events.
    const STATE_VERSION: i32 = 1;
    /// A snapshot is written each time the stream crosses a multiple of this many events.
    const SNAPSHOT_EVERY: i64 = 100;

    type Event: DomainEvent;
    type Command: Send + Sync + 'static;
    type Error: std::error::Error + Send + Sync + 'static;

    /// Pure: the events that accepting `command` produces, or the rule it breaks.
    fn decide(&self, command: &Self::Command) -> Result<Vec<Self::Event>, Self::Error>;

    /// Pure fold: applies one event. Holds no rules; an event that happened is applied.
    fn evolve(&mut self, event: &Self::Event);

    /// The state after `events`, from the default state.
    fn fold<'a>(events: impl IntoIterator<Item = &'a Self::Event>) -> Self {
        let mut state = Self::default();
        for event in events {
            state.evolve(event);
        }
        state
    }
}

/// Given/when/then harness for aggregate rule tests:
/// `TestHarness::<Milestone>::given([..]).when(cmd).then([..])`.
pub struct TestHarness<A: Aggregate> {
    state: A,
}

impl<A: Aggregate> TestHarness<A> {
    pub fn given(events: impl IntoIterator<Item = A::Event>) -> Self {
        let events: Vec<A::Event> = events.into_iter().collect();
        // Every event used in a test must survive its stored form, as it will in the log.
        for event in &events {
            let (event_type, payload) = encode_event(event).expect("event encodes");
            let _: A::Event = decode_event(&event_type, &payload).expect("event round-trips");
        }
        Self { state: A::fold(events.iter()) }
    }

    pub fn when(self, command: A::Command) -> WhenResult<A> {
        WhenResult { result: self.state.decide(&command) }
    }
}

pub struct WhenResult<A: Aggregate> {
    result: Result<Vec<A::Event>, A::Error>,
}

impl<A: Aggregate> WhenResult<A>
where
    A::Event: PartialEq + std::fmt::Debug,
    A::Error: PartialEq,
{
    #[track_caller]
    pub fn then(self, expected: impl IntoIterator<Item = A::Event>) {
        let expected: Vec<A::Event> = expected.into_iter().collect();
        match self.result {
            Ok(events) => assert_eq!(events, expected),
            Err(error) => panic!("expected events {expected:?}, the command was refused: {error}"),
        }
    }

    #[track_caller]
    pub fn then_error(self, expected: A::Error) {
        match self.result {
            Ok(events) => panic!("expected the error `{expected}`, got events {events:?}"),
            Err(error) => assert!(error == expected, "expected the error `{expected}`, got `{error}`"),
        }
    }

    /// For rules whose events carry generated values: inspect the events directly.
    pub fn events(self) -> Result<Vec<A::Event>, A::Error> {
        self.result
    }
}
