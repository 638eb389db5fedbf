//! The conversation the page is having: every message of its tree, the
//! branch shown, and sending, regenerating, editing, switching branches and
//! stopping. The page's components read its signals; only this type changes
//! them (and, in the browser, the transport and the API calls it drives).

use leptos::prelude::*;

use super::conversation::{Turn, TurnStatus};
use super::tree::{self, Place};
use crate::api::{Conversation, ModelOptions, Role};

/// A message in the tree: its turn and where it hangs.
#[derive(Debug, Clone)]
struct Node {
    place: Place,
    turn: Turn,
}

/// What a conversation asks of every answer.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Settings {
    pub system: String,
    pub options: ModelOptions,
}

/// Everything the chat page knows about the conversation. Copy: a handful
/// of signal handles, shared by every component.
#[derive(Clone, Copy)]
pub struct Session {
    /// The conversation's id once saved (a new chat is saved on its first
    /// question).
    pub conversation: RwSignal<Option<String>>,
    pub title: RwSignal<String>,
    pub settings: RwSignal<Settings>,
    nodes: RwSignal<Vec<Node>>,
    /// The end of the branch shown.
    current: RwSignal<Option<u64>>,
    /// The branch shown, first message first.
    pub shown: Memo<Vec<Turn>>,
    /// The question being edited: the next one sent replaces it (beside it).
    pub editing: RwSignal<Option<Turn>>,
    /// Whether answers stream token by token (else they land whole).
    pub stream: RwSignal<bool>,
    /// Bumped whenever the list of conversations may have changed.
    pub list_changed: RwSignal<u64>,
    /// A question is shown and its answer's row is about to be (see `send`).
    sending: RwSignal<bool>,
    next_key: StoredValue<u64>,
    #[cfg(feature = "hydrate")]
    transport: StoredValue<super::transport::Transport, LocalStorage>,
}

impl Session {
    /// A new chat, or the conversation given as the server keeps it.
    pub fn new(
        conversation: Option<&Conversation>,
        stream: RwSignal<bool>,
        list_changed: RwSignal<u64>,
    ) -> Self {
        let nodes = RwSignal::new(Vec::<Node>::new());
        let current = RwSignal::new(None);
        let shown = Memo::new(move |_| {
            nodes.with(|nodes| {
                let places: Vec<Place> = nodes.iter().map(|node| node.place).collect();
                tree::branch(&places, current.get())
                    .into_iter()
                    .filter_map(|key| nodes.iter().find(|node| node.place.key == key))
                    .map(|node| node.turn.clone())
                    .collect()
            })
        });
        let session = Self {
            conversation: RwSignal::new(None),
            title: RwSignal::new(String::new()),
            settings: RwSignal::new(Settings::default()),
            nodes,
            current,
            shown,
            editing: RwSignal::new(None),
            stream,
            list_changed,
            sending: RwSignal::new(false),
            next_key: StoredValue::new(0),
            #[cfg(feature = "hydrate")]
            transport: StoredValue::new_local(super::transport::Transport::default()),
        };
        if let Some(conversation) = conversation {
            session.load(conversation);
        }
        session
    }

    fn load(&self, conversation: &Conversation) {
        let mut nodes: Vec<Node> = Vec::with_capacity(conversation.messages.len());
        for message in &conversation.messages {
            let parent = message.parent_id.as_ref().and_then(|parent| {
                nodes
                    .iter()
                    .find(|node| node.turn.saved_as.get_untracked().as_ref() == Some(parent))
                    .map(|node| node.place.key)
            });
            let key = self.next_key();
            nodes.push(Node {
                place: Place { key, parent },
                turn: Turn::saved(key, message),
            });
        }
        let current = conversation.current_id.as_ref().and_then(|current| {
            nodes
                .iter()
                .find(|node| node.turn.saved_as.get_untracked().as_ref() == Some(current))
                .map(|node| node.place.key)
        });
        self.conversation.set(Some(conversation.id.clone()));
        self.title.set(conversation.title.clone());
        self.settings.set(Settings {
            system: conversation.system.clone().unwrap_or_default(),
            options: conversation.options.clone(),
        });
        self.nodes.set(nodes);
        self.current.set(current);
    }

    fn next_key(&self) -> u64 {
        let key = self.next_key.get_value() + 1;
        self.next_key.set_value(key);
        key
    }

    fn places(&self) -> Vec<Place> {
        self.nodes
            .with_untracked(|nodes| nodes.iter().map(|node| node.place).collect())
    }

    fn add(&self, parent: Option<u64>, turn: Turn) {
        self.nodes.update(|nodes| {
            nodes.push(Node {
                place: Place {
                    key: turn.id,
                    parent,
                },
                turn,
            });
        });
    }

    fn node(&self, key: u64) -> Option<Node> {
        self.nodes
            .with_untracked(|nodes| nodes.iter().find(|node| node.place.key == key).cloned())
    }

    /// Whether the answer shown last is still coming (or about to be shown).
    pub fn answering(&self) -> bool {
        self.sending.get()
            || self.shown.with(|turns| {
                turns
                    .last()
                    .is_some_and(|turn| turn.status.get().is_pending())
            })
    }

    /// `(position, count)` of a message among its siblings, for `‹ 2/3 ›`.
    pub fn position(&self, turn: &Turn) -> Signal<(usize, usize)> {
        let key = turn.id;
        let nodes = self.nodes;
        Signal::derive(move || {
            nodes.with(|nodes| {
                let places: Vec<Place> = nodes.iter().map(|node| node.place).collect();
                tree::position(&places, key)
            })
        })
    }

    /// Shows the sibling `offset` steps from `turn`, down to the end of its
    /// latest branch, and remembers the choice.
    pub fn switch(&self, turn: &Turn, offset: isize) {
        let places = self.places();
        let Some(sibling) = tree::sibling(&places, turn.id, offset) else {
            return;
        };
        let leaf = tree::leaf_below(&places, sibling);
        self.current.set(Some(leaf));
        #[cfg(feature = "hydrate")]
        if let (Some(conversation), Some(leaf)) = (
            self.conversation.get_untracked(),
            self.node(leaf)
                .and_then(|node| node.turn.saved_as.get_untracked()),
        ) {
            crate::client::fire(async move {
                let url = format!("/api/v1/conversations/{conversation}");
                let body = crate::api::UpdateConversationRequest {
                    current_id: Some(leaf),
                    ..Default::default()
                };
                crate::client::patch_json::<_, Conversation>(&url, &body)
                    .await
                    .map(drop)
            });
        }
    }

    /// Asks `model` about `text`: after the message shown, or, while a
    /// question is being edited, beside it.
    pub fn send(&self, model: String, text: String) {
        let parent = match self.editing.get_untracked() {
            Some(edited) => {
                self.editing.set(None);
                self.node(edited.id).and_then(|node| node.place.parent)
            }
            None => self.current.get_untracked(),
        };
        let question = Turn::new(self.next_key(), Role::User, text, TurnStatus::Sent);
        let answer = Turn::new(
            self.next_key(),
            Role::Assistant,
            String::new(),
            TurnStatus::Waiting,
        );
        self.add(parent, question.clone());
        self.current.set(Some(question.id));
        let session = *self;
        let (question_id, answer_id, shown_answer) = (question.id, answer.id, answer.clone());
        let show_answer = move || {
            session.sending.set(false);
            // Unless another conversation was opened in between.
            if session.current.try_get_untracked().flatten() == Some(question_id) {
                session.add(Some(question_id), shown_answer);
                session.current.set(Some(answer_id));
            }
        };
        // The answer's row is drawn in a task of its own, after the
        // question's. The first message after the page loads is the first
        // time a row is built, and the browser compiles each WASM function on
        // its first call: both rows in the key press's task made it 50-60 ms
        // (traced), a long task; in two, each stays under 40 ms.
        #[cfg(feature = "hydrate")]
        {
            self.sending.set(true);
            set_timeout(show_answer, std::time::Duration::ZERO);
        }
        #[cfg(not(feature = "hydrate"))]
        show_answer();
        #[cfg(feature = "hydrate")]
        {
            // Where the question goes on the server: under the saved parent,
            // first (`null`), or, if the parent was never saved (its request
            // failed), after whatever the server shows now.
            let parent_id = match parent.and_then(|parent| self.node(parent)) {
                None => Some(None),
                Some(node) => node.turn.saved_as.get_untracked().map(Some),
            };
            let session = *self;
            let answering = answer.clone();
            let start = async move {
                let conversation = session.saved_conversation(&model).await?;
                let url = format!("/api/v1/conversations/{conversation}/messages");
                let body = crate::api::PostMessageRequest {
                    content: question.text.get_untracked(),
                    parent_id,
                    model: Some(model),
                    options: None,
                };
                let posted: crate::api::MessagePosted =
                    crate::client::post_json(&url, &body, None).await?;
                question.saved_as.set(Some(posted.message.id));
                saved(&session, &answering, &posted.reply);
                Ok(posted.reply.generation)
            };
            let whole = !self.stream.get_untracked();
            self.transport
                .with_value(|transport| transport.answer(answer, start, whole));
        }
        #[cfg(not(feature = "hydrate"))]
        let _ = (model, question, answer);
    }

    /// A new answer beside `answer`, to the same question.
    pub fn regenerate(&self, answer: &Turn, model: String) {
        let Some(question) = self.node(answer.id).and_then(|node| node.place.parent) else {
            return;
        };
        let again = Turn::new(
            self.next_key(),
            Role::Assistant,
            String::new(),
            TurnStatus::Waiting,
        );
        self.add(Some(question), again.clone());
        self.current.set(Some(again.id));
        #[cfg(feature = "hydrate")]
        {
            let session = *self;
            let previous = answer.saved_as.get_untracked();
            let answering = again.clone();
            let start = async move {
                let (Some(conversation), Some(previous)) =
                    (session.conversation.get_untracked(), previous)
                else {
                    return Err("this answer was never saved, so it cannot be regenerated".into());
                };
                let url =
                    format!("/api/v1/conversations/{conversation}/messages/{previous}/regenerate");
                let body = crate::api::RegenerateRequest {
                    model: Some(model),
                    options: None,
                };
                let regenerated: crate::api::Regenerated =
                    crate::client::post_json(&url, &body, None).await?;
                saved(&session, &answering, &regenerated.reply);
                Ok(regenerated.reply.generation)
            };
            let whole = !self.stream.get_untracked();
            self.transport
                .with_value(|transport| transport.answer(again, start, whole));
        }
        #[cfg(not(feature = "hydrate"))]
        let _ = model;
    }

    /// Picks up an answer the server is still writing (after a reload, or
    /// in a second tab): its text so far comes back from the start of its
    /// generation, then it goes on streaming.
    pub fn resume(&self) {
        #[cfg(feature = "hydrate")]
        {
            let streaming = self.shown.with_untracked(|turns| {
                turns
                    .last()
                    .filter(|turn| turn.status.get_untracked() == TurnStatus::Streaming)
                    .cloned()
            });
            let Some(turn) = streaming else {
                return;
            };
            let Some(generation) = self.generation_of(&turn) else {
                return;
            };
            turn.text.set(String::new());
            turn.thinking.set(String::new());
            turn.status.set(TurnStatus::Waiting);
            let created = crate::api::GenerationCreated {
                events_url: format!("/api/v1/generations/{generation}/events"),
                id: generation,
            };
            self.transport.with_value(|transport| {
                transport.answer(turn, std::future::ready(Ok(created)), false);
            });
        }
    }

    /// Stops the answer in flight, keeping what it said.
    pub fn stop(&self) {
        #[cfg(feature = "hydrate")]
        self.transport.with_value(|transport| transport.stop());
    }
}

#[cfg(feature = "hydrate")]
impl Session {
    /// The conversation's id, saving it first if this is a new chat.
    async fn saved_conversation(&self, model: &str) -> Result<String, String> {
        if let Some(id) = self.conversation.get_untracked() {
            return Ok(id);
        }
        let settings = self.settings.get_untracked();
        let body = crate::api::CreateConversationRequest {
            title: None,
            model: Some(model.to_string()),
            system: Some(settings.system).filter(|system| !system.trim().is_empty()),
            options: Some(settings.options),
        };
        let created: Conversation =
            crate::client::post_json("/api/v1/conversations", &body, None).await?;
        self.conversation.set(Some(created.id.clone()));
        super::location::replace(&super::location::conversation_path(&created.id));
        Ok(created.id)
    }

    /// The generation still writing `turn`, as the server said when loaded.
    fn generation_of(&self, turn: &Turn) -> Option<String> {
        turn.generation.get_untracked()
    }
}

/// Records the server's ids for the answer being written, and that the
/// list of conversations moved.
#[cfg(feature = "hydrate")]
fn saved(session: &Session, answer: &Turn, reply: &crate::api::Reply) {
    answer.saved_as.set(Some(reply.id.clone()));
    answer.generation.set(Some(reply.generation.id.clone()));
    session.list_changed.update(|changes| *changes += 1);
}
