//! Answers in a conversation. Posting a question (or regenerating an
//! answer) sends the model the system prompt and the branch from the first
//! message down to the question, nothing from other branches, and starts a
//! generation for the answer. A keeper reads that generation as its own
//! subscriber, so the answer runs to its end whoever else reads it (the
//! grace period is for bare generations), and writes its text to the store
//! at least once a second and at the end: a stopped, failed or interrupted
//! answer keeps what it said.

use std::sync::Arc;
use std::time::Duration;

use app::api::{
    Conversation, ConversationMessage, GenerationCreated, MessagePosted, MessageStats,
    MessageStatus, ModelOptions, PostMessageRequest, RegenerateRequest, Regenerated, Reply, Role,
};
use futures_util::StreamExt;

use super::{ConversationStore, NewMessage, SavedReply, StoreError, branch};
use crate::backend::BackendError;
use crate::dialect::native;
use crate::generations::{self, End, EventStream, GenerationEvent, GenerationStore};
use crate::inference::{self, InferenceRequest, Input};
use crate::registry::Registry;
use crate::shutdown::SHUTTING_DOWN;

/// How often an answer's text reaches the store while it streams.
pub const FLUSH_EVERY: Duration = Duration::from_secs(1);

/// What a stopped server leaves on an answer it was writing.
pub const INTERRUPTED: &str = "the server stopped while this answer was being written";

/// Why a question or a regeneration was refused.
#[derive(Debug, thiserror::Error)]
pub enum ReplyError {
    #[error("{0}")]
    BadRequest(String),
    #[error("no message with id {0:?} in this conversation")]
    NoSuchMessage(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Backend(#[from] BackendError),
    #[error(transparent)]
    Generations(#[from] generations::StoreError),
}

/// Starts answers in conversations.
#[derive(Clone)]
pub struct Replies {
    pub store: Arc<dyn ConversationStore>,
    pub registry: Arc<Registry>,
    pub generations: Arc<dyn GenerationStore>,
}

impl Replies {
    /// Saves a question and starts its answer.
    pub async fn post(
        &self,
        conversation_id: &str,
        request: PostMessageRequest,
    ) -> Result<MessagePosted, ReplyError> {
        if request.content.trim().is_empty() {
            return Err(ReplyError::BadRequest(
                "field `content` is required and must not be empty".into(),
            ));
        }
        let conversation = self.store.get(conversation_id).await?;
        let model = model_of(&conversation, request.model)?;
        // No answer could be kept: refuse before saving anything.
        self.generations.check_room().await?;
        let parent_id = match request.parent_id {
            None => conversation.current_id.clone(),
            Some(parent) => parent,
        };
        let question = self
            .store
            .add_message(
                conversation_id,
                NewMessage {
                    parent_id,
                    role: Role::User,
                    content: request.content,
                    model: None,
                    status: MessageStatus::Complete,
                    error: None,
                    generation_id: None,
                },
            )
            .await
            .map_err(|error| match error {
                StoreError::NoMessage(id) => ReplyError::BadRequest(format!(
                    "`parent_id` {id:?} is not a message of this conversation"
                )),
                other => ReplyError::Store(other),
            })?;
        let mut messages = conversation.messages.clone();
        messages.push(question.clone());
        let reply = self
            .answer(
                &conversation,
                &messages,
                &question.id,
                model,
                request.options,
            )
            .await?;
        Ok(MessagePosted {
            message: question,
            reply,
        })
    }

    /// A new answer beside `message_id` (an answer), to the same question.
    pub async fn regenerate(
        &self,
        conversation_id: &str,
        message_id: &str,
        request: RegenerateRequest,
    ) -> Result<Regenerated, ReplyError> {
        let conversation = self.store.get(conversation_id).await?;
        let answer = conversation
            .messages
            .iter()
            .find(|message| message.id == message_id)
            .ok_or_else(|| ReplyError::NoSuchMessage(message_id.to_string()))?;
        if answer.role != Role::Assistant {
            return Err(ReplyError::BadRequest(
                "only an answer can be regenerated; to ask again, post the question anew".into(),
            ));
        }
        let question = answer
            .parent_id
            .clone()
            .ok_or_else(|| ReplyError::BadRequest("this answer answers no question".into()))?;
        let model = model_of(&conversation, request.model)?;
        self.generations.check_room().await?;
        let reply = self
            .answer(
                &conversation,
                &conversation.messages,
                &question,
                model,
                request.options,
            )
            .await?;
        Ok(Regenerated { reply })
    }

    /// Starts the answer to `question`, saved as its child.
    async fn answer(
        &self,
        conversation: &Conversation,
        messages: &[ConversationMessage],
        question: &str,
        model: String,
        options: Option<ModelOptions>,
    ) -> Result<Reply, ReplyError> {
        let request = InferenceRequest {
            model: model.clone(),
            input: Input::Chat(prompt(conversation, messages, question)),
            options: native::options_of(merged(conversation.options.clone(), options)),
            keep_alive: None,
            think: None,
            format: None,
        };
        let tokens = match self.registry.infer(request).await {
            Ok(tokens) => tokens,
            Err(error) => {
                // The answer that never started is kept, saying why, so it
                // can be regenerated.
                self.store
                    .add_message(
                        &conversation.id,
                        answer_message(question, &model, MessageStatus::Failed, None)
                            .with_error(error.to_string()),
                    )
                    .await?;
                return Err(error.into());
            }
        };
        let generation = self.generations.start(model.clone(), tokens, None).await?;
        // Subscribed before anything else can fail, so the answer is never
        // without a reader.
        let events = self.generations.subscribe(&generation, 0).await?;
        let saved = self
            .store
            .add_message(
                &conversation.id,
                answer_message(
                    question,
                    &model,
                    MessageStatus::Streaming,
                    Some(generation.clone()),
                ),
            )
            .await;
        let message = match saved {
            Ok(message) => message,
            Err(error) => {
                let _ = self.generations.cancel(&generation).await;
                return Err(error.into());
            }
        };
        tokio::spawn(keep(self.store.clone(), message.id.clone(), events));
        let location = format!("/api/v1/generations/{generation}");
        Ok(Reply {
            id: message.id,
            generation: GenerationCreated {
                events_url: format!("{location}/events"),
                id: generation,
            },
        })
    }
}

/// The model an answer comes from: the request's, else the conversation's.
fn model_of(conversation: &Conversation, asked: Option<String>) -> Result<String, ReplyError> {
    asked
        .or_else(|| conversation.model.clone())
        .filter(|model| !model.trim().is_empty())
        .ok_or_else(|| {
            ReplyError::BadRequest("no model: send `model`, or set the conversation's model".into())
        })
}

/// What the model reads: the system prompt, then the branch down to
/// `question`. An answer that ended before saying anything is left out.
fn prompt(
    conversation: &Conversation,
    messages: &[ConversationMessage],
    question: &str,
) -> Vec<inference::Message> {
    let system = conversation
        .system
        .iter()
        .filter(|system| !system.trim().is_empty())
        .map(|system| inference::Message::new(inference::Role::System, system.clone()));
    let turns = branch(messages, question)
        .into_iter()
        .filter(|message| !message.content.is_empty())
        .map(|message| native::message_of(message.role, message.content.clone()));
    system.chain(turns).collect()
}

/// The conversation's options, with the request's on top.
fn merged(base: ModelOptions, over: Option<ModelOptions>) -> ModelOptions {
    let Some(over) = over else {
        return base;
    };
    let mut other = base.other;
    other.extend(over.other);
    ModelOptions {
        temperature: over.temperature.or(base.temperature),
        top_p: over.top_p.or(base.top_p),
        top_k: over.top_k.or(base.top_k),
        seed: over.seed.or(base.seed),
        num_predict: over.num_predict.or(base.num_predict),
        stop: over.stop.or(base.stop),
        repeat_penalty: over.repeat_penalty.or(base.repeat_penalty),
        num_ctx: over.num_ctx.or(base.num_ctx),
        other,
    }
}

fn answer_message(
    question: &str,
    model: &str,
    status: MessageStatus,
    generation_id: Option<String>,
) -> NewMessage {
    NewMessage {
        parent_id: Some(question.to_string()),
        role: Role::Assistant,
        content: String::new(),
        model: Some(model.to_string()),
        status,
        error: None,
        generation_id,
    }
}

impl NewMessage {
    fn with_error(mut self, error: String) -> Self {
        self.error = Some(error);
        self
    }
}

/// Writes an answer into the store as its generation produces it: at most
/// once per [`FLUSH_EVERY`] while it streams (so writes per answer stay
/// bounded, whatever its length), and once at the end.
async fn keep(store: Arc<dyn ConversationStore>, message_id: String, mut events: EventStream) {
    let mut text = String::new();
    let mut reasoning = String::new();
    let mut saved = 0;
    let mut flush = tokio::time::interval(FLUSH_EVERY);
    flush.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // The first tick is immediate: nothing to save yet.
    flush.tick().await;
    let ending = loop {
        tokio::select! {
            event = events.next() => match event {
                Some(GenerationEvent::Tokens(run)) => {
                    reasoning.push_str(run.reasoning_text());
                    text.push_str(run.answer_text());
                }
                Some(GenerationEvent::End(end)) => break Some(end),
                None => break None,
            },
            _ = flush.tick() => {
                if text.len() + reasoning.len() != saved {
                    let reply = SavedReply {
                        content: text.clone(),
                        thinking: native::non_empty(reasoning.clone()),
                        status: MessageStatus::Streaming,
                        error: None,
                        stats: None,
                    };
                    if let Err(error) = store.save_reply(&message_id, reply).await {
                        tracing::warn!(%error, "cannot save an answer's progress");
                    }
                    saved = text.len() + reasoning.len();
                }
            }
        }
    };
    let (status, error, stats) = match ending {
        Some(End::Done {
            completion,
            time_to_first_token,
        }) => (
            MessageStatus::Complete,
            None,
            Some(stats(&completion.counters, time_to_first_token)),
        ),
        Some(End::Cancelled(_)) => (MessageStatus::Stopped, None, None),
        Some(End::Failed(error)) if error == SHUTTING_DOWN => (
            MessageStatus::Interrupted,
            Some(INTERRUPTED.to_string()),
            None,
        ),
        Some(End::Failed(error)) => (MessageStatus::Failed, Some(error), None),
        None => (
            MessageStatus::Interrupted,
            Some(INTERRUPTED.to_string()),
            None,
        ),
    };
    let reply = SavedReply {
        content: text,
        thinking: native::non_empty(reasoning),
        status,
        error,
        stats,
    };
    if let Err(error) = store.save_reply(&message_id, reply).await {
        tracing::warn!(%error, "cannot save an answer");
    }
}

fn stats(counters: &app::api::Counters, time_to_first_token: Option<Duration>) -> MessageStats {
    MessageStats {
        tokens: counters.eval_count,
        time_to_first_token: time_to_first_token
            .map(|after| after.as_nanos().try_into().unwrap_or(u64::MAX)),
        tokens_per_second: (counters.eval_duration > 0)
            .then(|| counters.eval_count as f64 / (counters.eval_duration as f64 / 1e9)),
        counters: *counters,
    }
}
