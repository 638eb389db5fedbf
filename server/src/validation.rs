//! Checks that a request names what it must, before any backend is asked.
//! Messages name the field, so a client knows exactly what to fix.

use app::api::{ChatRequest, CreateGenerationRequest, GenerateRequest};

use crate::error::AppError;

fn require(field: &str, value: &str) -> Result<(), AppError> {
    if value.trim().is_empty() {
        return Err(AppError::BadRequest(format!(
            "field `{field}` is required and must not be empty"
        )));
    }
    Ok(())
}

pub fn validate_generate(request: &GenerateRequest) -> Result<(), AppError> {
    require("model", &request.model)?;
    require("prompt", &request.prompt)
}

pub fn validate_chat(request: &ChatRequest) -> Result<(), AppError> {
    require("model", &request.model)?;
    if request.messages.is_empty() {
        return Err(AppError::BadRequest(
            "field `messages` is required and must not be empty".into(),
        ));
    }
    Ok(())
}

pub fn validate_generation(request: &CreateGenerationRequest) -> Result<(), AppError> {
    require("model", &request.model)?;
    match (&request.messages, &request.prompt) {
        (Some(_), Some(_)) => Err(AppError::BadRequest(
            "send either `messages` (a chat) or `prompt` (a completion), not both".into(),
        )),
        (None, None) => Err(AppError::BadRequest(
            "field `messages` (or `prompt`) is required and must not be empty".into(),
        )),
        (Some(messages), None) if messages.is_empty() => Err(AppError::BadRequest(
            "field `messages` is required and must not be empty".into(),
        )),
        (None, Some(prompt)) => require("prompt", prompt),
        (Some(_), None) => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_message_names_the_missing_field() {
        let request = GenerateRequest {
            model: "llama3.2".into(),
            prompt: "  ".into(),
            ..GenerateRequest::default()
        };
        let error = validate_generate(&request).unwrap_err();
        assert_eq!(
            error.to_string(),
            "field `prompt` is required and must not be empty"
        );
        let error = validate_chat(&ChatRequest::default()).unwrap_err();
        assert!(error.to_string().contains("`model`"));
    }
}
