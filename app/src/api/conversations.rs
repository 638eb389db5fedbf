//! Conversations kept on the server: a tree of messages (regenerating an
//! answer or editing a question adds a sibling, nothing is overwritten),
//! and the message shown now.

use serde::{Deserialize, Deserializer, Serialize};

use super::{Counters, GenerationCreated, ModelOptions, Role};

/// A conversation with its whole message tree.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct Conversation {
    pub id: String,
    pub title: String,
    /// The model its answers come from (`null`: the page picks one).
    pub model: Option<String>,
    /// The system prompt every answer in it gets.
    pub system: Option<String>,
    /// Sampling options every answer in it gets (a message's own override them).
    pub options: ModelOptions,
    /// RFC 3339 times.
    pub created_at: String,
    pub updated_at: String,
    /// The message shown now: the end of the branch the page displays.
    pub current_id: Option<String>,
    /// Every message of every branch, oldest first.
    pub messages: Vec<ConversationMessage>,
}

/// One message of a conversation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct ConversationMessage {
    pub id: String,
    /// The message it answers or follows; `null` for a first message.
    pub parent_id: Option<String>,
    pub role: Role,
    /// The text; for an answer that did not complete, what it said before it
    /// stopped.
    pub content: String,
    /// A reasoning model's thoughts before the answer, when it had any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thinking: Option<String>,
    /// The model that wrote it (answers).
    pub model: Option<String>,
    pub status: MessageStatus,
    /// Why it failed or was interrupted.
    pub error: Option<String>,
    /// How the answer went, once it ended.
    pub stats: Option<MessageStats>,
    /// The generation streaming it while `status` is `streaming`: read it at
    /// `/api/v1/generations/{id}/events`, stop it with `DELETE`.
    pub generation_id: Option<String>,
    pub created_at: String,
}

/// Where a message stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum MessageStatus {
    /// An answer being written.
    Streaming,
    Complete,
    /// Stopped by the user; the text so far is kept.
    Stopped,
    /// The backend failed; the text so far is kept, `error` says why.
    Failed,
    /// The server stopped while it was being written; what was saved is kept.
    Interrupted,
}

/// How an answer went.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct MessageStats {
    /// Tokens of the answer.
    pub tokens: u64,
    /// From the start of the answer to its first token, in nanoseconds.
    pub time_to_first_token: Option<u64>,
    /// Tokens per second while decoding.
    pub tokens_per_second: Option<f64>,
    #[serde(flatten)]
    pub counters: Counters,
}

/// A conversation in the list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct ConversationSummary {
    pub id: String,
    pub title: String,
    pub model: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

/// Answer of `GET /api/v1/conversations`: newest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct ConversationList {
    pub conversations: Vec<ConversationSummary>,
    /// Pass as `before` for the next page; `null` on the last one.
    pub next: Option<String>,
}

/// Body of `POST /api/v1/conversations`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct CreateConversationRequest {
    /// Made from the first question unless given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub options: Option<ModelOptions>,
}

/// Body of `PATCH /api/v1/conversations/{id}`: only the fields given change;
/// `null` clears `model` or `system`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct UpdateConversationRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    #[cfg_attr(feature = "ssr", schema(value_type = Option<String>))]
    pub model: Option<Option<String>>,
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    #[cfg_attr(feature = "ssr", schema(value_type = Option<String>))]
    pub system: Option<Option<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub options: Option<ModelOptions>,
    /// Shows another branch: a message of this conversation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_id: Option<String>,
}

/// Body of `POST /api/v1/conversations/{id}/messages`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct PostMessageRequest {
    #[serde(default)]
    pub content: String,
    /// Absent: the message continues the one shown now (`current_id`);
    /// `null`: a new first message (an edit of the first question); an id:
    /// the message it follows (an edit is a new message under the edited
    /// one's parent).
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    #[cfg_attr(feature = "ssr", schema(value_type = Option<String>))]
    pub parent_id: Option<Option<String>>,
    /// Overrides the conversation's model for this answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// Override the conversation's options for this answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub options: Option<ModelOptions>,
}

/// Body of `POST /api/v1/conversations/{id}/messages/{mid}/regenerate`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct RegenerateRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub options: Option<ModelOptions>,
}

/// An answer being written: its message, and the generation streaming it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct Reply {
    /// The answer's message id.
    pub id: String,
    pub generation: GenerationCreated,
}

/// Answer of `POST …/messages` (status 201).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct MessagePosted {
    /// The question as saved.
    pub message: ConversationMessage,
    pub reply: Reply,
}

/// Answer of `POST …/regenerate` (status 201).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct Regenerated {
    pub reply: Reply,
}

/// Reads a field that is present, even as `null` (`Some(None)`), apart from
/// one that is absent (`None`, by `#[serde(default)]`).
fn present<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_absent_parent_a_null_one_and_an_id_are_three_things() {
        let parse = |json: &str| -> PostMessageRequest { serde_json::from_str(json).unwrap() };
        assert_eq!(parse(r#"{"content":"Hi"}"#).parent_id, None);
        assert_eq!(
            parse(r#"{"content":"Hi","parent_id":null}"#).parent_id,
            Some(None)
        );
        assert_eq!(
            parse(r#"{"content":"Hi","parent_id":"m1"}"#).parent_id,
            Some(Some("m1".to_string()))
        );
    }

    #[test]
    fn a_patch_can_clear_the_model() {
        let patch: UpdateConversationRequest = serde_json::from_str(r#"{"model":null}"#).unwrap();
        assert_eq!(patch.model, Some(None));
        assert_eq!(patch.system, None);
    }
}
