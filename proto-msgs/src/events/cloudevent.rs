//! A CloudEvents 1.0 envelope in structured JSON mode
//! (<https://github.com/cloudevents/spec/blob/v1.0.2/cloudevents/spec.md>).

use crate::trace::TraceParent;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The content type of a structured-mode CloudEvent.
pub const CLOUDEVENTS_CONTENT_TYPE: &str = "application/cloudevents+json";

/// One domain event. `data` is typed by the caller; `serde_json::Value` when unknown.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CloudEvent<T = serde_json::Value> {
    pub specversion: String,
    /// Unique per event; consumers use it to ignore redeliveries.
    pub id: Uuid,
    /// The producing service, e.g. `"order-svc"`.
    pub source: String,
    /// The routing key, e.g. `"order.created"`.
    #[serde(rename = "type")]
    pub event_type: String,
    pub time: DateTime<Utc>,
    /// The id of the entity the event is about.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub datacontenttype: Option<String>,
    pub data: T,
    /// Distributed-tracing extension: the trace this event belongs to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traceparent: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tracestate: Option<String>,
}

impl<T> CloudEvent<T> {
    /// A new event with a fresh id and the current time.
    pub fn new(
        source: impl Into<String>,
        event_type: impl Into<String>,
        subject: impl Into<String>,
        data: T,
    ) -> Self {
        CloudEvent {
            specversion: "1.0".to_owned(),
            id: Uuid::new_v4(),
            source: source.into(),
            event_type: event_type.into(),
            time: Utc::now(),
            subject: Some(subject.into()),
            datacontenttype: Some("application/json".to_owned()),
            data,
            traceparent: None,
            tracestate: None,
        }
    }

    /// Attaches the trace the event is part of.
    pub fn with_trace(
        mut self,
        traceparent: Option<&TraceParent>,
        tracestate: Option<&str>,
    ) -> Self {
        self.traceparent = traceparent.map(|t| t.to_string());
        self.tracestate = tracestate.map(str::to_owned);
        self
    }

    /// The trace context carried by the event, if any and well-formed.
    pub fn trace(&self) -> Option<TraceParent> {
        self.traceparent.as_deref().and_then(|t| t.parse().ok())
    }

    /// Replaces `data`, keeping the envelope.
    pub fn map_data<U>(self, data: U) -> CloudEvent<U> {
        CloudEvent {
            specversion: self.specversion,
            id: self.id,
            source: self.source,
            event_type: self.event_type,
            time: self.time,
            subject: self.subject,
            datacontenttype: self.datacontenttype,
            data,
            traceparent: self.traceparent,
            tracestate: self.tracestate,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn serialises_as_structured_cloudevent() {
        let ev = CloudEvent::new(
            "order-svc",
            "order.created",
            "o-1",
            json!({"total": "1.00"}),
        );
        let v = serde_json::to_value(&ev).unwrap();
        assert_eq!(v["specversion"], "1.0");
        assert_eq!(v["type"], "order.created");
        assert_eq!(v["source"], "order-svc");
        assert_eq!(v["subject"], "o-1");
        assert_eq!(v["data"]["total"], "1.00");
        assert!(v.get("traceparent").is_none());
        let back: CloudEvent = serde_json::from_value(v).unwrap();
        assert_eq!(back, ev);
    }
}
