//! Trace context across the bus: [`link`] makes each hop's span a child of the
//! `traceparent` it received, [`outgoing`] sends that span's own id onwards, so one trace
//! runs from the HTTP call through the bus, the services and their events. (Installing
//! the subscriber and the exporter is the process's business: `proc_kit::telemetry`.)

use crate::trace::TraceParent;
use opentelemetry::trace::{SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState};
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// Makes `span` (not yet entered) a child of the remote `parent`. Does nothing when
/// span export is off.
pub fn link(span: &tracing::Span, parent: &TraceParent) {
    let (Ok(trace_id), Ok(span_id)) = (
        TraceId::from_hex(parent.trace_id()),
        SpanId::from_hex(parent.span_id()),
    ) else {
        return;
    };
    let remote = SpanContext::new(
        trace_id,
        span_id,
        TraceFlags::new(parent.flags()),
        true,
        TraceState::default(),
    );
    let _ = span.set_parent(opentelemetry::Context::new().with_remote_span_context(remote));
}

/// The `traceparent` to send onwards from inside `span`: the exported span's own id
/// when export is on, otherwise the same trace with a fresh span id.
pub fn outgoing(span: &tracing::Span, incoming: &TraceParent) -> TraceParent {
    let cx = span.context();
    let sc = cx.span().span_context().clone();
    if sc.is_valid() && sc.trace_id().to_string() == incoming.trace_id() {
        TraceParent::from_hex(
            &sc.trace_id().to_string(),
            &sc.span_id().to_string(),
            sc.trace_flags().to_u8(),
        )
        .unwrap_or_else(|| incoming.child())
    } else {
        incoming.child()
    }
}
