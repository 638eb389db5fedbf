//! Turning a conversation into the model's prompt: the model's own chat
//! template when its GGUF carries one (llama.cpp applies it), otherwise a
//! plain transcript that even a base model continues sensibly, with stop
//! sequences that end the answer where the next turn would begin.

use crate::inference::{Message, Role};
use llama_cpp_2::model::{LlamaChatMessage, LlamaChatTemplate, LlamaModel};
use llama_cpp_2::token::LlamaToken;

/// Where the answer ends in a transcript: where the model starts the next turn.
const TRANSCRIPT_STOPS: [&str; 3] = ["\nUser:", "\nAssistant:", "\nSystem:"];

/// A base model continuing a transcript may never write the next turn's
/// "User:"; unless the request sets `num_predict`, its answer ends here.
const TRANSCRIPT_MAX_TOKENS: u32 = 256;

/// A prompt ready to decode.
#[derive(Debug)]
pub struct Prompt {
    pub tokens: Vec<LlamaToken>,
    /// Text after which the answer ends (without the stop text itself).
    pub stops: Vec<String>,
    /// Whether the answer's leading spaces should be dropped (a transcript
    /// answer starts after "Assistant:").
    pub trim_start: bool,
    /// The answer's length limit when the request sets none.
    pub default_max_tokens: Option<u32>,
}

/// Builds the prompt for `messages`; `context` (token ids of an earlier
/// exchange, from `/generate`) goes first.
pub fn build(
    model: &LlamaModel,
    template: Option<&LlamaChatTemplate>,
    messages: &[Message],
    context: &[i64],
    extra_stops: &[String],
) -> Prompt {
    let vocab = model.vocab();
    let templated = template.and_then(|template| {
        let chat: Option<Vec<LlamaChatMessage>> = messages
            .iter()
            .map(|m| LlamaChatMessage::new(m.role.as_str().into(), m.content.clone()).ok())
            .collect();
        model.apply_chat_template(template, &chat?, true).ok()
    });
    let (mut tokens, mut stops, trim_start) = match templated {
        Some(text) => {
            // The template may write the BOS token itself; never add a second.
            let bos = String::from_utf8_lossy(&vocab.token_to_piece(vocab.bos(), true, None))
                .into_owned();
            let add_bos = !text.starts_with(&bos);
            (
                vocab.tokenize(text.as_bytes(), add_bos, true),
                Vec::new(),
                false,
            )
        }
        None => {
            let text = transcript(messages);
            // User text is never parsed for special tokens here.
            let tokens = vocab.tokenize(text.as_bytes(), true, false);
            (tokens, TRANSCRIPT_STOPS.map(String::from).to_vec(), true)
        }
    };
    if !context.is_empty() {
        let mut with_context: Vec<LlamaToken> = context
            .iter()
            .filter_map(|&id| i32::try_from(id).ok().map(LlamaToken))
            .collect();
        // The earlier exchange already began with BOS.
        if !with_context.is_empty() && tokens.first() == Some(&vocab.bos()) {
            tokens.remove(0);
        }
        with_context.append(&mut tokens);
        tokens = with_context;
    }
    stops.extend(extra_stops.iter().filter(|stop| !stop.is_empty()).cloned());
    Prompt {
        tokens,
        stops,
        trim_start,
        default_max_tokens: trim_start.then_some(TRANSCRIPT_MAX_TOKENS),
    }
}

/// A prompt already in the model's own format, tokenized as it is: its
/// special tokens (`<|im_start|>`, fill-in-the-middle markers) are the
/// model's, and nothing ends it but the request's own stops.
pub fn raw(model: &LlamaModel, text: &str, context: &[i64], extra_stops: &[String]) -> Prompt {
    let vocab = model.vocab();
    let bos = String::from_utf8_lossy(&vocab.token_to_piece(vocab.bos(), true, None)).into_owned();
    let mut tokens: Vec<LlamaToken> = context
        .iter()
        .filter_map(|&id| i32::try_from(id).ok().map(LlamaToken))
        .collect();
    let add_bos = tokens.is_empty() && !text.starts_with(&bos);
    tokens.extend(vocab.tokenize(text.as_bytes(), add_bos, true));
    Prompt {
        tokens,
        stops: extra_stops
            .iter()
            .filter(|stop| !stop.is_empty())
            .cloned()
            .collect(),
        trim_start: false,
        default_max_tokens: None,
    }
}

/// `System text\n\nUser: …\nAssistant: …\nUser: …\nAssistant:`
pub fn transcript(messages: &[Message]) -> String {
    let mut text = String::new();
    for message in messages {
        let content = message.content.trim();
        match message.role {
            Role::System => {
                text.push_str(content);
                text.push_str("\n\n");
            }
            Role::User => text.push_str(&format!("User: {content}\n")),
            Role::Assistant => text.push_str(&format!("Assistant: {content}\n")),
            Role::Tool => text.push_str(&format!("Tool: {content}\n")),
        }
    }
    text.push_str("Assistant:");
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_transcript_ends_where_the_assistant_speaks() {
        let messages = [
            Message::new(Role::System, "Be brief."),
            Message::new(Role::User, "What is the capital of France?"),
            Message::new(Role::Assistant, "Paris."),
            Message::new(Role::User, "And of Italy?"),
        ];
        assert_eq!(
            transcript(&messages),
            "Be brief.\n\nUser: What is the capital of France?\nAssistant: Paris.\nUser: And of Italy?\nAssistant:"
        );
    }

    /// The base model (with no template of its own), as `make setup` puts
    /// it in place.
    fn default_model() -> LlamaModel {
        model_file("gemma-3-270m-q4_k_m.gguf")
    }

    fn model_file(name: &str) -> LlamaModel {
        let dir = std::env::var_os("LLM_CHAT_MODELS_DIR").map_or_else(
            || {
                std::path::PathBuf::from(std::env::var_os("HOME").expect("HOME is set"))
                    .join(".cache/llm-chat/models")
            },
            std::path::PathBuf::from,
        );
        let backend = super::super::engine::llama_backend().expect("llama.cpp starts");
        LlamaModel::load_from_file(
            backend,
            dir.join(name),
            &llama_cpp_2::model::params::LlamaModelParams::default(),
        )
        .unwrap_or_else(|error| panic!("{name} loads (run `make setup`): {error}"))
    }

    #[test]
    fn the_chat_model_s_own_template_shapes_the_prompt() {
        let model = model_file("smollm2-135m-instruct-q4_1.gguf");
        let template = model
            .chat_template(None)
            .expect("SmolLM2 carries a template");
        let messages = [Message::new(Role::User, "Hi")];

        let prompt = build(&model, Some(&template), &messages, &[], &[]);

        let text = detokenize(&model, &prompt.tokens);
        // llama.cpp recognises the GGUF's Jinja template as ChatML and
        // applies its own rendering of it (without the Jinja's default
        // system prompt).
        assert_eq!(
            text, "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n",
            "{text:?}"
        );
        assert!(prompt.stops.is_empty());
        assert_eq!(prompt.default_max_tokens, None);
    }

    fn detokenize(model: &LlamaModel, tokens: &[LlamaToken]) -> String {
        let vocab = model.vocab();
        tokens
            .iter()
            .map(|&token| {
                String::from_utf8_lossy(&vocab.token_to_piece(token, true, None)).into_owned()
            })
            .collect()
    }

    #[test]
    fn a_chat_template_shapes_the_prompt_and_needs_no_stops() {
        let model = default_model();
        let template = LlamaChatTemplate::new("chatml").unwrap();
        let messages = [
            Message::new(Role::System, "Be brief."),
            Message::new(Role::User, "Hi"),
        ];

        let prompt = build(&model, Some(&template), &messages, &[], &["END".into()]);

        let text = detokenize(&model, &prompt.tokens);
        assert!(
            text.contains("<|im_start|>system\nBe brief.<|im_end|>"),
            "{text:?}"
        );
        assert!(text.ends_with("<|im_start|>assistant\n"), "{text:?}");
        // The template marks turns itself: only the request's own stops.
        assert_eq!(prompt.stops, ["END"]);
        assert!(!prompt.trim_start);
        assert_eq!(prompt.default_max_tokens, None);
        assert_eq!(
            prompt
                .tokens
                .iter()
                .filter(|&&t| t == model.vocab().bos())
                .count(),
            1,
            "one BOS token"
        );
    }

    #[test]
    fn without_a_template_the_prompt_is_a_transcript_with_stops() {
        let model = default_model();
        let messages = [Message::new(Role::User, "Hi <start_of_turn>")];

        let prompt = build(&model, None, &messages, &[], &[]);

        let text = detokenize(&model, &prompt.tokens);
        assert!(
            text.ends_with("User: Hi <start_of_turn>\nAssistant:"),
            "{text:?}"
        );
        assert_eq!(prompt.stops, TRANSCRIPT_STOPS);
        assert!(prompt.trim_start);
        assert_eq!(prompt.default_max_tokens, Some(TRANSCRIPT_MAX_TOKENS));
        // User text is never read as special tokens.
        let start_of_turn = model.vocab().tokenize(b"<start_of_turn>", false, true);
        assert_eq!(start_of_turn.len(), 1, "a special token in this vocabulary");
        assert!(!prompt.tokens.contains(&start_of_turn[0]));
    }
}
