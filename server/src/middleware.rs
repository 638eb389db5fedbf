//! The middleware stack, outermost first: request id → trace → propagate
//! id → catch panic (JSON 500) → compression (never SSE) → JSON for bare
//! errors → body limit.

use std::any::Any;
use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::body::{Body, HttpBody};
use axum::extract::{ConnectInfo, DefaultBodyLimit, Request};
use axum::http::{HeaderName, StatusCode, header};
use axum::response::Response;
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::compression::CompressionLayer;
use tower_http::compression::predicate::{NotForContentType, Predicate, SizeAbove};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;
use tracing::Span;

use crate::error::json_error;

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

pub fn apply(router: Router, body_limit: usize) -> Router {
    // Compressing a stream (SSE, or Ollama's NDJSON) would hold frames back
    // until the compressor's buffer fills: decided by the response's content
    // type, whatever the request's Accept-Encoding says.
    let compress_when = SizeAbove::new(256)
        .and(NotForContentType::SSE)
        .and(NotForContentType::const_new("application/x-ndjson"))
        .and(NotForContentType::GRPC)
        .and(NotForContentType::IMAGES);
    let stack = ServiceBuilder::new()
        .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(request_span)
                .on_request(|_: &Request, _: &Span| tracing::info!("request started"))
                .on_response(log_response)
                // Failures are logged where they happen, with their cause.
                .on_failure(()),
        )
        .layer(PropagateRequestIdLayer::new(REQUEST_ID))
        .layer(CatchPanicLayer::custom(panic_response))
        .layer(CompressionLayer::new().compress_when(compress_when))
        .map_response(json_for_bare_errors);
    router.layer(DefaultBodyLimit::max(body_limit)).layer(stack)
}

/// The span every request's logs carry. Holds no body or query: prompts
/// never reach INFO logs.
fn request_span(request: &Request) -> Span {
    let request_id = request
        .headers()
        .get(REQUEST_ID)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default();
    let remote = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|info| info.0.to_string())
        .unwrap_or_default();
    tracing::info_span!(
        "request",
        method = %request.method(),
        path = %request.uri().path(),
        request_id,
        remote,
    )
}

fn log_response<B>(response: &axum::http::Response<B>, latency: Duration, _: &Span) {
    tracing::info!(
        status = response.status().as_u16(),
        latency_ms = latency.as_secs_f64() * 1000.0,
        "request completed"
    );
}

/// A panic in a handler: logged with its message, answered as JSON 500;
/// the server keeps serving.
fn panic_response(panic: Box<dyn Any + Send + 'static>) -> Response {
    let message = panic
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| panic.downcast_ref::<&str>().copied())
        .unwrap_or("unknown panic");
    tracing::error!(panic = message, "handler panicked");
    json_error(StatusCode::INTERNAL_SERVER_ERROR, "internal server error")
}

/// Axum answers some errors itself with an empty body (405 from the method
/// router, for one); give those the house JSON body.
fn json_for_bare_errors(response: Response) -> Response {
    let status = response.status();
    let is_bare = (status.is_client_error() || status.is_server_error())
        && !response.headers().contains_key(header::CONTENT_TYPE)
        && response.body().size_hint().exact() == Some(0);
    if !is_bare {
        return response;
    }
    let message = match status {
        StatusCode::METHOD_NOT_ALLOWED => "method not allowed".to_string(),
        other => other.canonical_reason().unwrap_or("error").to_lowercase(),
    };
    let (mut parts, _) = response.into_parts();
    let json = json_error(status, message);
    parts.headers.extend(json.headers().clone());
    Response::from_parts(parts, Body::new(json.into_body()))
}
