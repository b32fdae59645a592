//! The course community: reviews (`Review`, stream `lms-review-{courseId}-{userId}`), discussion
//! forums (`Discussion`, stream `lms-discussion-{courseId}`) and wishlists (`Wishlist`, stream
//! `lms-wishlist-{userId}`).
//!
//! * A review's stream is named by the course and the reviewer, so "one review per user per
//!   course" holds by construction. Only enrolled users review; the handler looks the enrolment
//!   up and puts the fact (and the reviewer's denormalised name and image) in the command.
//! * A course's discussion is one stream: posts and threaded replies, each reply's parent a post
//!   or reply of the same course. The handler passes whether the course has its discussion
//!   enabled and whether the actor is enrolled in it or teaches it.
//! * A wishlist is the actor's own: adding a course twice or removing one that is not there
//!   changes nothing (no events).
//!
//! Facts the handler looks up are never read from the HTTP body (`skip_deserializing`: a body
//! that names them is refused as having unknown fields).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{Actor, ErrorKind};
use crate::kernel::{Aggregate, DomainEvent};

/// The stream type of course reviews.
pub const REVIEW_STREAM_TYPE: &str = "lms.review";
/// The stream type of course discussions.
pub const DISCUSSION_STREAM_TYPE: &str = "lms.discussion";
/// The stream type of wishlists.
pub const WISHLIST_STREAM_TYPE: &str = "lms.wishlist";

/// The stream of `user_id`'s review of `course_id`.
pub fn review_stream_id(course_id: Uuid, user_id: Uuid) -> String {
    format!("lms-review-{course_id}-{user_id}")
}

/// The stream of a course's discussion.
pub fn discussion_stream_id(course_id: Uuid) -> String {
    format!("lms-discussion-{course_id}")
}

/// The stream of `user_id`'s wishlist.
pub fn wishlist_stream_id(user_id: Uuid) -> String {
    format!("lms-wishlist-{user_id}")
}

/// Whether the actor is a signed-in user (not the scheduler, not a webhook).
fn is_user(actor: &Actor) -> bool {
    !actor.system && !actor.id.is_nil()
}

// =============================================================================================
// Reviews
// =============================================================================================

/// A command to a review. `actor` comes from the session, `at` is the handler's clock.
#[derive(Debug, Clone, PartialEq)]
pub struct ReviewCommand {
    pub actor: Actor,
    pub at: DateTime<Utc>,
    pub action: ReviewAction,
}

impl ReviewCommand {
    /// The stream the command goes to: the actor's review of the course.
    pub fn stream_id(&self) -> String {
        match &self.action {
            ReviewAction::SubmitCourseReview(p) => review_stream_id(p.course_id, self.actor.id),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum ReviewAction {
    SubmitCourseReview(SubmitCourseReview),
}

impl ReviewAction {
    /// A stable kebab-case name, for logs and metrics.
    pub fn name(&self) -> &'static str {
        match self {
            ReviewAction::SubmitCourseReview(_) => "submit-course-review",
        }
    }
}

/// `submit-course-review`: the actor rates a course they are enrolled in.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SubmitCourseReview {
    pub course_id: Uuid,
    /// 1 to 5 stars.
    pub rating: u8,
    pub content: String,
    /// Set by the handler from the reviewer's profile (denormalised onto the review).
    #[serde(skip_deserializing)]
    pub user_name: String,
    /// Set by the handler from the reviewer's profile.
    #[serde(skip_deserializing)]
    pub user_image: Option<String>,
    /// Set by the handler: whether the reviewer has access to the course.
    #[serde(skip_deserializing)]
    pub enrolled: bool,
}

/// What happened to a review.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum ReviewEvent {
    #[serde(rename_all = "camelCase")]
    CourseReviewed {
        course_id: Uuid,
        user_id: Uuid,
        user_name: String,
        user_image: Option<String>,
        rating: u8,
        content: String,
        at: DateTime<Utc>,
    },
}

impl DomainEvent for ReviewEvent {}

/// Why a review was refused: one variant per rule.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ReviewError {
    #[error("only a signed-in user can review a course")]
    NotAUser,
    #[error("only enrolled students may review a course")]
    NotEnrolled,
    #[error("the user has already reviewed this course")]
    AlreadyReviewed,
    #[error("a rating is 1 to 5 stars, not {rating}")]
    RatingOutOfRange { rating: u8 },
    #[error("the review needs some text")]
    ContentRequired,
}

impl ReviewError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            ReviewError::NotAUser | ReviewError::NotEnrolled => ErrorKind::Forbidden,
            ReviewError::AlreadyReviewed => ErrorKind::Conflict,
            ReviewError::RatingOutOfRange { .. } | ReviewError::ContentRequired => ErrorKind::Invalid,
        }
    }
}

/// One user's review of one course, as its events left it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Review {
    exists: bool,
    course_id: Option<Uuid>,
    user_id: Option<Uuid>,
    rating: u8,
    content: String,
    reviewed_at: Option<DateTime<Utc>>,
}

impl Review {
    /// The stream of `user_id`'s review of `course_id`.
    pub fn stream_id(course_id: Uuid, user_id: Uuid) -> String {
        review_stream_id(course_id, user_id)
    }
    pub fn exists(&self) -> bool {
        self.exists
    }
    pub fn course_id(&self) -> Option<Uuid> {
        self.course_id
    }
    pub fn user_id(&self) -> Option<Uuid> {
        self.user_id
    }
    /// The stars, once reviewed.
    pub fn rating(&self) -> Option<u8> {
        self.exists.then_some(self.rating)
    }
    pub fn content(&self) -> &str {
        &self.content
    }
    pub fn reviewed_at(&self) -> Option<DateTime<Utc>> {
        self.reviewed_at
    }
}

impl Aggregate for Review {
    const STREAM_TYPE: &'static str = REVIEW_STREAM_TYPE;
    type Event = ReviewEvent;
    type Command = ReviewCommand;
    type Error = ReviewError;

    fn decide(&self, command: &ReviewCommand) -> Result<Vec<ReviewEvent>, ReviewError> {
        let ReviewCommand { actor, at, action } = command;
        match action {
            ReviewAction::SubmitCourseReview(p) => {
                if !is_user(actor) {
                    return Err(ReviewError::NotAUser);
                }
                if !p.enrolled {
                    return Err(ReviewError::NotEnrolled);
                }
                if self.exists {
                    return Err(ReviewError::AlreadyReviewed);
                }
                if !(1..=5).contains(&p.rating) {
                    return Err(ReviewError::RatingOutOfRange { rating: p.rating });
                }
                let content = p.content.trim();
                if content.is_empty() {
                    return Err(ReviewError::ContentRequired);
                }
                Ok(vec![ReviewEvent::CourseReviewed {
                    course_id: p.course_id,
                    user_id: actor.id,
                    user_name: p.user_name.trim().to_owned(),
                    user_image: p.user_image.as_deref().map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned),
                    rating: p.rating,
                    content: content.to_owned(),
                    at: *at,
                }])
            }
        }
    }

    fn evolve(&mut self, event: &ReviewEvent) {
        match event {
            ReviewEvent::CourseReviewed { course_id, user_id, rating, content, at, .. } => {
                self.exists = true;
                self.course_id = Some(*course_id);
                self.user_id = Some(*user_id);
                self.rating = *rating;
                self.content = content.clone();
                self.reviewed_at = Some(*at);
            }
        }
    }
}

// =============================================================================================
// Discussions
// =============================================================================================

/// A command to a course's discussion. `actor` comes from the session, `at` is the handler's
/// clock.
#[derive(Debug, Clone, PartialEq)]
pub struct DiscussionCommand {
    pub actor: Actor,
    pub at: DateTime<Utc>,
    pub action: DiscussionAction,
}

impl DiscussionCommand {
    /// The stream the command goes to.
    pub fn stream_id(&self) -> String {
        discussion_stream_id(self.action.course_id())
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum DiscussionAction {
    PostDiscussion(PostDiscussion),
    ReplyToDiscussion(ReplyToDiscussion),
}

impl DiscussionAction {
    /// The course (and so the stream) the action addresses.
    pub fn course_id(&self) -> Uuid {
        match self {
            DiscussionAction::PostDiscussion(p) => p.course_id,
            DiscussionAction::ReplyToDiscussion(p) => p.course_id,
        }
    }

    /// A stable kebab-case name, for logs and metrics.
    pub fn name(&self) -> &'static str {
        match self {
            DiscussionAction::PostDiscussion(_) => "post-discussion",
            DiscussionAction::ReplyToDiscussion(_) => "reply-to-discussion",
        }
    }
}

/// `post-discussion`: a new topic in a course's forum.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PostDiscussion {
    pub course_id: Uuid,
    pub discussion_id: Uuid,
    pub title: String,
    pub content: String,
    /// Set by the handler: whether the course has its discussion enabled.
    #[serde(skip_deserializing)]
    pub discussion_enabled: bool,
    /// Set by the handler: whether the actor is enrolled in the course or teaches it.
    #[serde(skip_deserializing)]
    pub enrolled_or_instructor: bool,
}

/// `reply-to-discussion`: a reply (with its own new id) to a topic or to another reply.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ReplyToDiscussion {
    pub course_id: Uuid,
    /// The reply's own id.
    pub discussion_id: Uuid,
    /// The topic or reply answered, in the same course.
    pub parent_id: Uuid,
    pub content: String,
    /// Set by the handler: whether the course has its discussion enabled.
    #[serde(skip_deserializing)]
    pub discussion_enabled: bool,
    /// Set by the handler: whether the actor is enrolled in the course or teaches it.
    #[serde(skip_deserializing)]
    pub enrolled_or_instructor: bool,
}

/// What happened in a course's discussion.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum DiscussionEvent {
    /// A topic (`parentId` null, with a title) or a reply (`parentId` set, no title).
    #[serde(rename_all = "camelCase")]
    DiscussionPosted {
        course_id: Uuid,
        discussion_id: Uuid,
        parent_id: Option<Uuid>,
        user_id: Uuid,
        title: Option<String>,
        content: String,
        at: DateTime<Utc>,
    },
}

impl DomainEvent for DiscussionEvent {}

/// Why a discussion post was refused: one variant per rule.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DiscussionError {
    #[error("only a signed-in user can take part in a discussion")]
    NotAUser,
    #[error("only the course's students and instructor may take part in its discussion")]
    NotAParticipant,
    #[error("the course has its discussion disabled")]
    DiscussionDisabled,
    #[error("discussion {discussion_id} already exists")]
    DiscussionAlreadyExists { discussion_id: Uuid },
    #[error("discussion {parent_id} does not exist in this course")]
    ParentNotFound { parent_id: Uuid },
    #[error("{field} is required")]
    FieldRequired { field: &'static str },
}

impl DiscussionError {
    pub fn kind(&self) -> ErrorKind {
        use DiscussionError::*;
        match self {
            NotAUser | NotAParticipant => ErrorKind::Forbidden,
            ParentNotFound { .. } => ErrorKind::NotFound,
            DiscussionDisabled | DiscussionAlreadyExists { .. } => ErrorKind::Conflict,
            FieldRequired { .. } => ErrorKind::Invalid,
        }
    }
}

/// A post as the discussion holds it (its text lives in the read table).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DiscussionEntry {
    pub discussion_id: Uuid,
    pub parent_id: Option<Uuid>,
    pub user_id: Uuid,
    pub at: DateTime<Utc>,
}

/// A course's discussion as its events left it: every topic and reply, in posting order.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Discussion {
    course_id: Option<Uuid>,
    entries: Vec<DiscussionEntry>,
}

impl Discussion {
    /// The stream of a course's discussion.
    pub fn stream_id(course_id: Uuid) -> String {
        discussion_stream_id(course_id)
    }
    pub fn course_id(&self) -> Option<Uuid> {
        self.course_id
    }
    /// Topics and replies in posting order.
    pub fn entries(&self) -> &[DiscussionEntry] {
        &self.entries
    }
    pub fn entry(&self, discussion_id: Uuid) -> Option<&DiscussionEntry> {
        self.entries.iter().find(|e| e.discussion_id == discussion_id)
    }
    /// The direct replies to `discussion_id`, in posting order.
    pub fn replies(&self, discussion_id: Uuid) -> Vec<&DiscussionEntry> {
        self.entries.iter().filter(|e| e.parent_id == Some(discussion_id)).collect()
    }

    /// The checks every post and reply share: who, whether the forum is open, a fresh id and
    /// some text. Admins may always take part (moderation).
    fn check_post(
        &self,
        actor: &Actor,
        discussion_id: Uuid,
        content: &str,
        discussion_enabled: bool,
        enrolled_or_instructor: bool,
    ) -> Result<String, DiscussionError> {
        if !is_user(actor) {
            return Err(DiscussionError::NotAUser);
        }
        if !(enrolled_or_instructor || actor.is_admin) {
            return Err(DiscussionError::NotAParticipant);
        }
        if !discussion_enabled {
            return Err(DiscussionError::DiscussionDisabled);
        }
        if self.entry(discussion_id).is_some() {
            return Err(DiscussionError::DiscussionAlreadyExists { discussion_id });
        }
        let content = content.trim();
        if content.is_empty() {
            return Err(DiscussionError::FieldRequired { field: "content" });
        }
        Ok(content.to_owned())
    }
}

impl Aggregate for Discussion {
    const STREAM_TYPE: &'static str = DISCUSSION_STREAM_TYPE;
    type Event = DiscussionEvent;
    type Command = DiscussionCommand;
    type Error = DiscussionError;

    fn decide(&self, command: &DiscussionCommand) -> Result<Vec<DiscussionEvent>, DiscussionError> {
        let DiscussionCommand { actor, at, action } = command;
        match action {
            DiscussionAction::PostDiscussion(p) => {
                let content = self.check_post(
                    actor,
                    p.discussion_id,
                    &p.content,
                    p.discussion_enabled,
                    p.enrolled_or_instructor,
                )?;
                let title = p.title.trim();
                if title.is_empty() {
                    return Err(DiscussionError::FieldRequired { field: "title" });
                }
                Ok(vec![DiscussionEvent::DiscussionPosted {
                    course_id: p.course_id,
                    discussion_id: p.discussion_id,
                    parent_id: None,
                    user_id: actor.id,
                    title: Some(title.to_owned()),
                    content,
                    at: *at,
                }])
            }
            DiscussionAction::ReplyToDiscussion(p) => {
                let content = self.check_post(
                    actor,
                    p.discussion_id,
                    &p.content,
                    p.discussion_enabled,
                    p.enrolled_or_instructor,
                )?;
                let in_course = self.course_id.is_none_or(|course_id| course_id == p.course_id);
                if !in_course || self.entry(p.parent_id).is_none() {
                    return Err(DiscussionError::ParentNotFound { parent_id: p.parent_id });
                }
                Ok(vec![DiscussionEvent::DiscussionPosted {
                    course_id: p.course_id,
                    discussion_id: p.discussion_id,
                    parent_id: Some(p.parent_id),
                    user_id: actor.id,
                    title: None,
                    content,
                    at: *at,
                }])
            }
        }
    }

    fn evolve(&mut self, event: &DiscussionEvent) {
        match event {
            DiscussionEvent::DiscussionPosted { course_id, discussion_id, parent_id, user_id, at, .. } => {
                self.course_id = Some(*course_id);
                self.entries.push(DiscussionEntry {
                    discussion_id: *discussion_id,
                    parent_id: *parent_id,
                    user_id: *user_id,
                    at: *at,
                });
            }
        }
    }
}

// =============================================================================================
// Wishlists
// =============================================================================================

/// A command to the actor's wishlist. `actor` comes from the session, `at` is the handler's
/// clock.
#[derive(Debug, Clone, PartialEq)]
pub struct WishlistCommand {
    pub actor: Actor,
    pub at: DateTime<Utc>,
    pub action: WishlistAction,
}

impl WishlistCommand {
    /// The stream the command goes to: the actor's wishlist.
    pub fn stream_id(&self) -> String {
        wishlist_stream_id(self.actor.id)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum WishlistAction {
    AddToWishlist(AddToWishlist),
    RemoveFromWishlist(RemoveFromWishlist),
}

impl WishlistAction {
    /// A stable kebab-case name, for logs and metrics.
    pub fn name(&self) -> &'static str {
        match self {
            WishlistAction::AddToWishlist(_) => "add-to-wishlist",
            WishlistAction::RemoveFromWishlist(_) => "remove-from-wishlist",
        }
    }
}

/// `add-to-wishlist`: save a course for later (a second add changes nothing).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AddToWishlist {
    pub course_id: Uuid,
}

/// `remove-from-wishlist` (removing a course that is not there changes nothing).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RemoveFromWishlist {
    pub course_id: Uuid,
}

/// What happened to a wishlist.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum WishlistEvent {
    #[serde(rename_all = "camelCase")]
    WishlistItemAdded { user_id: Uuid, course_id: Uuid, at: DateTime<Utc> },
    #[serde(rename_all = "camelCase")]
    WishlistItemRemoved { user_id: Uuid, course_id: Uuid, at: DateTime<Utc> },
}

impl DomainEvent for WishlistEvent {}

/// Why a wishlist command was refused: one variant per rule.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum WishlistError {
    #[error("only a signed-in user has a wishlist")]
    NotAUser,
    #[error("a wishlist is only its owner's to change")]
    NotYourWishlist,
}

impl WishlistError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            WishlistError::NotAUser | WishlistError::NotYourWishlist => ErrorKind::Forbidden,
        }
    }
}

/// One user's wishlist as its events left it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Wishlist {
    user_id: Option<Uuid>,
    /// In the order they were added.
    course_ids: Vec<Uuid>,
}

impl Wishlist {
    /// The stream of `user_id`'s wishlist.
    pub fn stream_id(user_id: Uuid) -> String {
        wishlist_stream_id(user_id)
    }
    pub fn user_id(&self) -> Option<Uuid> {
        self.user_id
    }
    /// The saved courses, in the order they were added.
    pub fn course_ids(&self) -> &[Uuid] {
        &self.course_ids
    }
    pub fn contains(&self, course_id: Uuid) -> bool {
        self.course_ids.contains(&course_id)
    }
}

impl Aggregate for Wishlist {
    const STREAM_TYPE: &'static str = WISHLIST_STREAM_TYPE;
    type Event = WishlistEvent;
    type Command = WishlistCommand;
    type Error = WishlistError;

    fn decide(&self, command: &WishlistCommand) -> Result<Vec<WishlistEvent>, WishlistError> {
        let WishlistCommand { actor, at, action } = command;
        if !is_user(actor) {
            return Err(WishlistError::NotAUser);
        }
        if self.user_id.is_some_and(|owner| owner != actor.id) {
            return Err(WishlistError::NotYourWishlist);
        }
        let (user_id, at) = (actor.id, *at);
        Ok(match action {
            WishlistAction::AddToWishlist(p) if !self.contains(p.course_id) => {
                vec![WishlistEvent::WishlistItemAdded { user_id, course_id: p.course_id, at }]
            }
            WishlistAction::RemoveFromWishlist(p) if self.contains(p.course_id) => {
                vec![WishlistEvent::WishlistItemRemoved { user_id, course_id: p.course_id, at }]
            }
            WishlistAction::AddToWishlist(_) | WishlistAction::RemoveFromWishlist(_) => vec![],
        })
    }

    fn evolve(&mut self, event: &WishlistEvent) {
        match event {
            WishlistEvent::WishlistItemAdded { user_id, course_id, .. } => {
                self.user_id = Some(*user_id);
                if !self.course_ids.contains(course_id) {
                    self.course_ids.push(*course_id);
                }
            }
            WishlistEvent::WishlistItemRemoved { user_id, course_id, .. } => {
                self.user_id = Some(*user_id);
                self.course_ids.retain(|id| id != course_id);
            }
        }
    }
}

// =============================================================================================
// Tests
// =============================================================================================

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernel::{encode_event, TestHarness};
    use chrono::TimeZone;
    use serde_json::json;

    fn t(minute: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2025, 3, 1, 9, minute, 0).unwrap()
    }
    fn course_id() -> Uuid {
        Uuid::from_u128(0xC0)
    }
    fn ann_id() -> Uuid {
        Uuid::from_u128(0xA11)
    }
    fn bo_id() -> Uuid {
        Uuid::from_u128(0xB0)
    }
    fn ann() -> Actor {
        Actor { id: ann_id(), is_instructor: false, is_admin: false, system: false }
    }
    fn bo() -> Actor {
        Actor { id: bo_id(), is_instructor: false, is_admin: false, system: false }
    }
    fn admin() -> Actor {
        Actor { id: Uuid::from_u128(0xAD), is_instructor: false, is_admin: true, system: false }
    }

    // ------------------------------------------------------------------ reviews

    fn review_cmd(actor: Actor, p: SubmitCourseReview) -> ReviewCommand {
        ReviewCommand { actor, at: t(30), action: ReviewAction::SubmitCourseReview(p) }
    }
    fn review() -> SubmitCourseReview {
        SubmitCourseReview {
            course_id: course_id(),
            rating: 5,
            content: " Clear and practical. ".into(),
            user_name: "Ann Lee".into(),
            user_image: Some("".into()),
            enrolled: true,
        }
    }
    fn reviewed(at: DateTime<Utc>) -> ReviewEvent {
        ReviewEvent::CourseReviewed {
            course_id: course_id(),
            user_id: ann_id(),
            user_name: "Ann Lee".into(),
            user_image: None,
            rating: 5,
            content: "Clear and practical.".into(),
            at,
        }
    }

    #[test]
    fn it_should_let_an_enrolled_student_review_a_course() {
        TestHarness::<Review>::given([]).when(review_cmd(ann(), review())).then([reviewed(t(30))]);
        let state = Review::fold([reviewed(t(30))].iter());
        assert_eq!(state.rating(), Some(5));
        assert_eq!(state.user_id(), Some(ann_id()));
    }

    #[test]
    fn it_should_let_only_enrolled_students_review_a_course() {
        TestHarness::<Review>::given([])
            .when(review_cmd(ann(), SubmitCourseReview { enrolled: false, ..review() }))
            .then_error(ReviewError::NotEnrolled);
    }

    #[test]
    fn it_should_allow_one_review_per_user_per_course() {
        TestHarness::<Review>::given([reviewed(t(1))])
            .when(review_cmd(ann(), SubmitCourseReview { rating: 1, ..review() }))
            .then_error(ReviewError::AlreadyReviewed);
        let first = ReviewCommand { actor: ann(), at: t(1), action: ReviewAction::SubmitCourseReview(review()) };
        let other = ReviewCommand { actor: bo(), ..first.clone() };
        assert_ne!(first.stream_id(), other.stream_id(), "each reviewer has their own stream");
        assert_eq!(first.stream_id(), format!("lms-review-{}-{}", course_id(), ann_id()));
    }

    #[test]
    fn it_should_accept_only_ratings_from_one_to_five() {
        for rating in [0, 6, 255] {
            TestHarness::<Review>::given([])
                .when(review_cmd(ann(), SubmitCourseReview { rating, ..review() }))
                .then_error(ReviewError::RatingOutOfRange { rating });
        }
        assert!(TestHarness::<Review>::given([])
            .when(review_cmd(ann(), SubmitCourseReview { rating: 1, ..review() }))
            .events()
            .is_ok());
    }

    #[test]
    fn it_should_require_the_review_text() {
        TestHarness::<Review>::given([])
            .when(review_cmd(ann(), SubmitCourseReview { content: "  ".into(), ..review() }))
            .then_error(ReviewError::ContentRequired);
    }

    #[test]
    fn it_should_not_let_the_system_review_a_course() {
        TestHarness::<Review>::given([]).when(review_cmd(Actor::system(), review())).then_error(ReviewError::NotAUser);
    }

    // ------------------------------------------------------------------ discussions

    fn topic_id() -> Uuid {
        Uuid::from_u128(0xD1)
    }
    fn reply_id() -> Uuid {
        Uuid::from_u128(0xD2)
    }
    fn discussion_cmd(actor: Actor, action: DiscussionAction) -> DiscussionCommand {
        DiscussionCommand { actor, at: t(30), action }
    }
    fn post() -> PostDiscussion {
        PostDiscussion {
            course_id: course_id(),
            discussion_id: topic_id(),
            title: " Dosage question ".into(),
            content: "How many units for the glabella?".into(),
            discussion_enabled: true,
            enrolled_or_instructor: true,
        }
    }
    fn reply(parent_id: Uuid) -> ReplyToDiscussion {
        ReplyToDiscussion {
            course_id: course_id(),
            discussion_id: reply_id(),
            parent_id,
            content: "About 20.".into(),
            discussion_enabled: true,
            enrolled_or_instructor: true,
        }
    }
    fn posted() -> DiscussionEvent {
        DiscussionEvent::DiscussionPosted {
            course_id: course_id(),
            discussion_id: topic_id(),
            parent_id: None,
            user_id: ann_id(),
            title: Some("Dosage question".into()),
            content: "How many units for the glabella?".into(),
            at: t(1),
        }
    }
    fn replied() -> DiscussionEvent {
        DiscussionEvent::DiscussionPosted {
            course_id: course_id(),
            discussion_id: reply_id(),
            parent_id: Some(topic_id()),
            user_id: bo_id(),
            title: None,
            content: "About 20.".into(),
            at: t(2),
        }
    }

    #[test]
    fn it_should_post_a_topic_in_a_course_discussion() {
        TestHarness::<Discussion>::given([])
            .when(discussion_cmd(ann(), DiscussionAction::PostDiscussion(post())))
            .then([DiscussionEvent::DiscussionPosted {
                course_id: course_id(),
                discussion_id: topic_id(),
                parent_id: None,
                user_id: ann_id(),
                title: Some("Dosage question".into()),
                content: "How many units for the glabella?".into(),
                at: t(30),
            }]);
    }

    #[test]
    fn it_should_thread_a_reply_under_its_parent() {
        TestHarness::<Discussion>::given([posted()])
            .when(discussion_cmd(bo(), DiscussionAction::ReplyToDiscussion(reply(topic_id()))))
            .then([replied_at(t(30))]);
        let nested = ReplyToDiscussion { discussion_id: Uuid::from_u128(0xD3), ..reply(reply_id()) };
        let events = TestHarness::<Discussion>::given([posted(), replied()])
            .when(discussion_cmd(ann(), DiscussionAction::ReplyToDiscussion(nested)))
            .events()
            .unwrap();
        assert!(
            matches!(&events[..], [DiscussionEvent::DiscussionPosted { parent_id: Some(p), .. }] if *p == reply_id())
        );
        let state = Discussion::fold([posted(), replied()].iter());
        assert_eq!(state.replies(topic_id()).len(), 1);
    }

    fn replied_at(at: DateTime<Utc>) -> DiscussionEvent {
        match replied() {
            DiscussionEvent::DiscussionPosted {
                course_id, discussion_id, parent_id, user_id, title, content, ..
            } => DiscussionEvent::DiscussionPosted { course_id, discussion_id, parent_id, user_id, title, content, at },
        }
    }

    #[test]
    fn it_should_not_reply_to_a_discussion_that_is_not_in_the_course() {
        TestHarness::<Discussion>::given([posted()])
            .when(discussion_cmd(bo(), DiscussionAction::ReplyToDiscussion(reply(Uuid::from_u128(0xDEAD)))))
            .then_error(DiscussionError::ParentNotFound { parent_id: Uuid::from_u128(0xDEAD) });
    }

    #[test]
    fn it_should_let_only_students_and_the_instructor_take_part() {
        TestHarness::<Discussion>::given([])
            .when(discussion_cmd(
                ann(),
                DiscussionAction::PostDiscussion(PostDiscussion { enrolled_or_instructor: false, ..post() }),
            ))
            .then_error(DiscussionError::NotAParticipant);
        TestHarness::<Discussion>::given([posted()])
            .when(discussion_cmd(
                bo(),
                DiscussionAction::ReplyToDiscussion(ReplyToDiscussion {
                    enrolled_or_instructor: false,
                    ..reply(topic_id())
                }),
            ))
            .then_error(DiscussionError::NotAParticipant);
    }

    #[test]
    fn it_should_let_an_admin_moderate_any_discussion() {
        let events = TestHarness::<Discussion>::given([posted()])
            .when(discussion_cmd(
                admin(),
                DiscussionAction::ReplyToDiscussion(ReplyToDiscussion {
                    enrolled_or_instructor: false,
                    ..reply(topic_id())
                }),
            ))
            .events()
            .unwrap();
        assert_eq!(events.len(), 1);
    }

    #[test]
    fn it_should_not_post_when_the_course_has_its_discussion_disabled() {
        TestHarness::<Discussion>::given([])
            .when(discussion_cmd(
                ann(),
                DiscussionAction::PostDiscussion(PostDiscussion { discussion_enabled: false, ..post() }),
            ))
            .then_error(DiscussionError::DiscussionDisabled);
        TestHarness::<Discussion>::given([posted()])
            .when(discussion_cmd(
                bo(),
                DiscussionAction::ReplyToDiscussion(ReplyToDiscussion {
                    discussion_enabled: false,
                    ..reply(topic_id())
                }),
            ))
            .then_error(DiscussionError::DiscussionDisabled);
    }

    #[test]
    fn it_should_not_reuse_a_discussion_id() {
        TestHarness::<Discussion>::given([posted()])
            .when(discussion_cmd(ann(), DiscussionAction::PostDiscussion(post())))
            .then_error(DiscussionError::DiscussionAlreadyExists { discussion_id: topic_id() });
        let same = ReplyToDiscussion { discussion_id: topic_id(), ..reply(topic_id()) };
        TestHarness::<Discussion>::given([posted()])
            .when(discussion_cmd(bo(), DiscussionAction::ReplyToDiscussion(same)))
            .then_error(DiscussionError::DiscussionAlreadyExists { discussion_id: topic_id() });
    }

    #[test]
    fn it_should_require_a_title_and_content() {
        TestHarness::<Discussion>::given([])
            .when(discussion_cmd(
                ann(),
                DiscussionAction::PostDiscussion(PostDiscussion { title: " ".into(), ..post() }),
            ))
            .then_error(DiscussionError::FieldRequired { field: "title" });
        TestHarness::<Discussion>::given([posted()])
            .when(discussion_cmd(
                bo(),
                DiscussionAction::ReplyToDiscussion(ReplyToDiscussion { content: String::new(), ..reply(topic_id()) }),
            ))
            .then_error(DiscussionError::FieldRequired { field: "content" });
    }

    #[test]
    fn it_should_not_let_the_system_post() {
        TestHarness::<Discussion>::given([])
            .when(discussion_cmd(Actor::system(), DiscussionAction::PostDiscussion(post())))
            .then_error(DiscussionError::NotAUser);
    }

    // ------------------------------------------------------------------ wishlists

    fn wish_cmd(actor: Actor, action: WishlistAction) -> WishlistCommand {
        WishlistCommand { actor, at: t(30), action }
    }
    fn add(course_id: Uuid) -> WishlistAction {
        WishlistAction::AddToWishlist(AddToWishlist { course_id })
    }
    fn remove(course_id: Uuid) -> WishlistAction {
        WishlistAction::RemoveFromWishlist(RemoveFromWishlist { course_id })
    }
    fn added(course_id: Uuid) -> WishlistEvent {
        WishlistEvent::WishlistItemAdded { user_id: ann_id(), course_id, at: t(1) }
    }

    #[test]
    fn it_should_add_a_course_to_the_wishlist() {
        TestHarness::<Wishlist>::given([])
            .when(wish_cmd(ann(), add(course_id())))
            .then([WishlistEvent::WishlistItemAdded { user_id: ann_id(), course_id: course_id(), at: t(30) }]);
        assert!(Wishlist::fold([added(course_id())].iter()).contains(course_id()));
    }

    #[test]
    fn it_should_ignore_a_second_add_of_the_same_course() {
        TestHarness::<Wishlist>::given([added(course_id())]).when(wish_cmd(ann(), add(course_id()))).then([]);
    }

    #[test]
    fn it_should_remove_a_course_from_the_wishlist() {
        let removed = WishlistEvent::WishlistItemRemoved { user_id: ann_id(), course_id: course_id(), at: t(30) };
        let other = Uuid::from_u128(0xC1);
        TestHarness::<Wishlist>::given([added(course_id()), added(other)])
            .when(wish_cmd(ann(), remove(course_id())))
            .then([removed.clone()]);
        let state = Wishlist::fold([added(course_id()), added(other), removed].iter());
        assert_eq!(state.course_ids(), &[other]);
    }

    #[test]
    fn it_should_ignore_removing_a_course_that_is_not_in_the_wishlist() {
        TestHarness::<Wishlist>::given([added(course_id())])
            .when(wish_cmd(ann(), remove(Uuid::from_u128(0xC1))))
            .then([]);
        TestHarness::<Wishlist>::given([]).when(wish_cmd(ann(), remove(course_id()))).then([]);
    }

    #[test]
    fn it_should_keep_a_wishlist_its_owners() {
        TestHarness::<Wishlist>::given([added(course_id())])
            .when(wish_cmd(bo(), add(Uuid::from_u128(0xC1))))
            .then_error(WishlistError::NotYourWishlist);
        TestHarness::<Wishlist>::given([])
            .when(wish_cmd(Actor::system(), add(course_id())))
            .then_error(WishlistError::NotAUser);
        assert_eq!(wish_cmd(ann(), add(course_id())).stream_id(), format!("lms-wishlist-{}", ann_id()));
    }

    // ------------------------------------------------------------------ wire formats

    #[test]
    fn it_should_never_read_handler_facts_from_the_body() {
        let body = json!({ "courseId": course_id(), "rating": 4, "content": "Good" });
        let p: SubmitCourseReview = serde_json::from_value(body).unwrap();
        assert!(!p.enrolled);
        assert_eq!(p.user_name, "");
        for forged in [
            json!({ "courseId": course_id(), "rating": 4, "content": "Good", "enrolled": true }),
            json!({ "courseId": course_id(), "rating": 4, "content": "Good", "userName": "Admin" }),
        ] {
            assert!(serde_json::from_value::<SubmitCourseReview>(forged).is_err());
        }
        let p: ReplyToDiscussion = serde_json::from_value(
            json!({ "courseId": course_id(), "discussionId": reply_id(), "parentId": topic_id(), "content": "x" }),
        )
        .unwrap();
        assert!(!p.discussion_enabled && !p.enrolled_or_instructor);
        assert!(serde_json::from_value::<PostDiscussion>(json!({
            "courseId": course_id(), "discussionId": topic_id(), "title": "t", "content": "c",
            "enrolledOrInstructor": true
        }))
        .is_err());
        assert!(
            serde_json::from_value::<AddToWishlist>(json!({ "courseId": course_id(), "userId": ann_id() })).is_err()
        );
    }

    #[test]
    fn it_should_store_events_under_kebab_case_types_with_camel_case_fields() {
        let (event_type, payload) = encode_event(&reviewed(t(1))).unwrap();
        assert_eq!(event_type, "course-reviewed");
        assert_eq!(payload["userName"], "Ann Lee");
        assert_eq!(payload["courseId"], json!(course_id()));
        let (event_type, payload) = encode_event(&replied()).unwrap();
        assert_eq!(event_type, "discussion-posted");
        assert_eq!(payload["parentId"], json!(topic_id()));
        assert_eq!(encode_event(&posted()).unwrap().1["parentId"], json!(null));
        assert_eq!(encode_event(&added(course_id())).unwrap().0, "wishlist-item-added");
        assert_eq!(Review::STREAM_TYPE, "lms.review");
        assert_eq!(Discussion::stream_id(course_id()), format!("lms-discussion-{}", course_id()));
    }

    #[test]
    fn it_should_classify_every_error() {
        for e in [ReviewError::NotAUser, ReviewError::NotEnrolled] {
            assert_eq!(e.kind(), ErrorKind::Forbidden, "{e:?}");
        }
        assert_eq!(ReviewError::AlreadyReviewed.kind(), ErrorKind::Conflict);
        for e in [ReviewError::RatingOutOfRange { rating: 0 }, ReviewError::ContentRequired] {
            assert_eq!(e.kind(), ErrorKind::Invalid, "{e:?}");
        }
        use DiscussionError as D;
        for e in [D::NotAUser, D::NotAParticipant] {
            assert_eq!(e.kind(), ErrorKind::Forbidden, "{e:?}");
        }
        assert_eq!(D::ParentNotFound { parent_id: Uuid::nil() }.kind(), ErrorKind::NotFound);
        for e in [D::DiscussionDisabled, D::DiscussionAlreadyExists { discussion_id: Uuid::nil() }] {
            assert_eq!(e.kind(), ErrorKind::Conflict, "{e:?}");
        }
        assert_eq!(D::FieldRequired { field: "title" }.kind(), ErrorKind::Invalid);
        for e in [WishlistError::NotAUser, WishlistError::NotYourWishlist] {
            assert_eq!(e.kind(), ErrorKind::Forbidden, "{e:?}");
        }
    }
}
