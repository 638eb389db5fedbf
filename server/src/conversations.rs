//! Conversations kept on the server. Messages form a tree: regenerating an
//! answer or editing a question adds a sibling, and nothing is overwritten.
//! An answer is a generation whose text reaches the store while it streams
//! ([`replies`]), so nothing a model wrote is lost to a stop, a failure, a
//! closed tab or a crash.
//!
//! [`ConversationStore`] is the interface; [`sqlite::SqliteStore`] keeps
//! them in SQLite. A store for several instances implements the same trait
//! with the same migrations.

pub mod replies;
pub mod sqlite;

use app::api::{
    Conversation, ConversationList, ConversationMessage, MessageStats, MessageStatus, ModelOptions,
    Role, UpdateConversationRequest,
};

use crate::backend::BoxFuture;

/// Where conversations live.
pub trait ConversationStore: Send + Sync + 'static {
    fn create(&self, new: NewConversation) -> BoxFuture<'_, Result<Conversation, StoreError>>;

    /// A page of conversations, newest first.
    fn list(&self, query: ListQuery) -> BoxFuture<'_, Result<ConversationList, StoreError>>;

    /// The conversation with its whole message tree.
    fn get(&self, id: &str) -> BoxFuture<'_, Result<Conversation, StoreError>>;

    /// Applies the fields given; `current_id` must be one of its messages.
    fn update(
        &self,
        id: &str,
        changes: UpdateConversationRequest,
    ) -> BoxFuture<'_, Result<Conversation, StoreError>>;

    /// Deletes it with its messages; answers the generations that were
    /// still writing into it, for the caller to cancel.
    fn delete(&self, id: &str) -> BoxFuture<'_, Result<Vec<String>, StoreError>>;

    /// Adds a message and shows it (`current_id`); the first question
    /// names a conversation the user has not named.
    fn add_message(
        &self,
        conversation_id: &str,
        message: NewMessage,
    ) -> BoxFuture<'_, Result<ConversationMessage, StoreError>>;

    /// Saves an answer's text so far, and how it ended once it has.
    fn save_reply(
        &self,
        message_id: &str,
        reply: SavedReply,
    ) -> BoxFuture<'_, Result<(), StoreError>>;

    /// Marks the answers a stopped server left `streaming` as interrupted,
    /// keeping their text; answers how many there were.
    fn interrupt_unfinished(&self) -> BoxFuture<'_, Result<u64, StoreError>>;

    /// Database writes (transactions or statements that change something)
    /// made since start, for `/metrics`: an answer must cost a bounded
    /// number, never one per token.
    fn writes(&self) -> u64;
}

/// A conversation to create.
#[derive(Debug, Clone, Default)]
pub struct NewConversation {
    pub title: Option<String>,
    pub model: Option<String>,
    pub system: Option<String>,
    pub options: ModelOptions,
}

/// Which page of the list.
#[derive(Debug, Clone, Default)]
pub struct ListQuery {
    /// Matches titles and message text, case-insensitively.
    pub search: Option<String>,
    pub limit: usize,
    /// The `next` of the previous page.
    pub before: Option<String>,
}

/// A message to add.
#[derive(Debug, Clone)]
pub struct NewMessage {
    pub parent_id: Option<String>,
    pub role: Role,
    pub content: String,
    pub model: Option<String>,
    pub status: MessageStatus,
    pub error: Option<String>,
    pub generation_id: Option<String>,
}

/// An answer's state to save.
#[derive(Debug, Clone, PartialEq)]
pub struct SavedReply {
    pub content: String,
    /// The reasoning before it, when the model gave any.
    pub thinking: Option<String>,
    pub status: MessageStatus,
    pub error: Option<String>,
    pub stats: Option<MessageStats>,
}

/// Why a store could not do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("no conversation with id {0:?}")]
    NoConversation(String),
    #[error("no message with id {0:?} in this conversation")]
    NoMessage(String),
    #[error("`before` is not a cursor this server gave out")]
    BadCursor,
    /// The database failed; the detail is logged, never sent.
    #[error("the conversation store failed")]
    Database(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl StoreError {
    pub fn database(error: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self::Database(Box::new(error))
    }
}

/// The title a conversation gets from its first question: its first line,
/// at most `MAX_TITLE` characters.
pub fn title_from(question: &str) -> String {
    const MAX_TITLE: usize = 60;
    let line = question
        .lines()
        .map(str::trim)
        .find(|line| !line.is_empty())
        .unwrap_or_default();
    let mut title: String = line.chars().take(MAX_TITLE).collect();
    if line.chars().count() > MAX_TITLE {
        title = format!("{}…", title.trim_end());
    }
    title
}

/// The title of a conversation nobody has named yet.
pub const UNTITLED: &str = "New chat";

/// The messages from the first one down to `last`, in order: the branch a
/// model answers, nothing from other branches.
pub fn branch<'a>(messages: &'a [ConversationMessage], last: &str) -> Vec<&'a ConversationMessage> {
    let mut path = Vec::new();
    let mut next = Some(last);
    while let Some(id) = next {
        let Some(message) = messages.iter().find(|message| message.id == id) else {
            break;
        };
        path.push(message);
        next = message.parent_id.as_deref();
        // A corrupt tree (a cycle) must not hang the server.
        if path.len() > messages.len() {
            break;
        }
    }
    path.reverse();
    path
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(id: &str, parent: Option<&str>) -> ConversationMessage {
        ConversationMessage {
            id: id.into(),
            parent_id: parent.map(Into::into),
            role: Role::User,
            content: id.into(),
            thinking: None,
            model: None,
            status: MessageStatus::Complete,
            error: None,
            stats: None,
            generation_id: None,
            created_at: String::new(),
        }
    }

    #[test]
    fn a_branch_runs_from_the_root_to_its_end_and_skips_siblings() {
        let messages = [
            message("q1", None),
            message("a1", Some("q1")),
            message("a1b", Some("q1")),
            message("q2", Some("a1b")),
            message("q1b", None),
        ];
        let ids: Vec<&str> = branch(&messages, "q2")
            .iter()
            .map(|m| m.id.as_str())
            .collect();
        assert_eq!(ids, ["q1", "a1b", "q2"]);
        assert_eq!(branch(&messages, "q1b").len(), 1);
    }

    #[test]
    fn a_title_is_the_first_line_cut_at_a_character() {
        assert_eq!(
            title_from("\n  Why is the sky blue?\nMore"),
            "Why is the sky blue?"
        );
        let long = "é".repeat(80);
        let title = title_from(&long);
        assert_eq!(title.chars().count(), 61);
        assert!(title.ends_with('…'));
    }
}
