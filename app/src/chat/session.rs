//! The conversation the page is having: its turns, and sending, stopping
//! and clearing them. The page's components read its signals; only this
//! type changes them (and, in the browser, the transport it drives).

use leptos::prelude::*;

use super::conversation::{Turn, TurnStatus, history};
use crate::api::Role;

/// Everything the chat page knows about the conversation. Copy: it is a
/// handful of signal handles, shared by every component.
#[derive(Clone, Copy)]
pub struct Session {
    pub turns: RwSignal<Vec<Turn>>,
    /// Whether answers stream token by token (else they land whole).
    pub stream: RwSignal<bool>,
    next_id: StoredValue<u64>,
    #[cfg(feature = "hydrate")]
    transport: StoredValue<super::transport::Transport, LocalStorage>,
}

impl Session {
    pub fn new() -> Self {
        Self {
            turns: RwSignal::new(Vec::new()),
            stream: RwSignal::new(true),
            next_id: StoredValue::new(0),
            #[cfg(feature = "hydrate")]
            transport: StoredValue::new_local(super::transport::Transport::default()),
        }
    }

    /// Whether the last answer is still coming.
    pub fn answering(&self) -> bool {
        self.turns.with(|turns| {
            turns
                .last()
                .is_some_and(|turn| turn.status.get().is_pending())
        })
    }

    fn turn(&self, role: Role, text: String, status: TurnStatus) -> Turn {
        let id = self.next_id.get_value() + 1;
        self.next_id.set_value(id);
        Turn::new(id, role, text, status)
    }

    /// Asks `model` about `text`, with the whole conversation so far.
    pub fn send(&self, model: String, text: String) {
        let question = self.turn(Role::User, text, TurnStatus::Sent);
        let answer = self.turn(Role::Assistant, String::new(), TurnStatus::Waiting);
        self.turns.update(|turns| {
            turns.push(question);
            turns.push(answer.clone());
        });
        let messages = self.turns.with_untracked(|turns| history(turns));
        #[cfg(feature = "hydrate")]
        self.transport.with_value(|transport| {
            if self.stream.get_untracked() {
                transport.stream(
                    answer,
                    crate::api::CreateGenerationRequest {
                        model,
                        messages: Some(messages),
                        ..Default::default()
                    },
                );
            } else {
                transport.whole(
                    answer,
                    crate::api::ChatRequest {
                        model,
                        messages,
                        ..Default::default()
                    },
                );
            }
        });
        #[cfg(not(feature = "hydrate"))]
        let _ = (answer, messages, model);
    }

    /// Stops the answer in flight, keeping what it said.
    pub fn stop(&self) {
        #[cfg(feature = "hydrate")]
        self.transport.with_value(|transport| transport.stop());
    }

    /// Stops any answer and forgets the conversation.
    pub fn clear(&self) {
        self.stop();
        self.turns.set(Vec::new());
    }
}
