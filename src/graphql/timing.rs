//! How long queries and mutations take, by operation name, for /metrics. Timed from the
//! request's start (parsing and validation included) to its response, over HTTP and WebSocket
//! alike; subscriptions, which last as long as the client wants, are not timed. The name is the
//! one async-graphql resolved: the requested `operationName`, or the document's only operation.

use std::sync::Arc;
use std::time::Instant;

use async_graphql::Response;
use async_graphql::extensions::{Extension, ExtensionContext, ExtensionFactory, NextExecute};

use crate::metrics::Metrics;

/// Times each request's operation into `metrics`.
pub(super) struct OperationTimer {
    pub metrics: Arc<Metrics>,
}

impl ExtensionFactory for OperationTimer {
    /// Called as a request starts, so the clock starts here.
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(TimedRequest {
            metrics: self.metrics.clone(),
            started: Instant::now(),
        })
    }
}

struct TimedRequest {
    metrics: Arc<Metrics>,
    started: Instant,
}

#[async_trait::async_trait]
impl Extension for TimedRequest {
    async fn execute(
        &self,
        ctx: &ExtensionContext<'_>,
        operation_name: Option<&str>,
        next: NextExecute<'_>,
    ) -> Response {
        let response = next.run(ctx, operation_name).await;
        self.metrics
            .graphql_duration(operation_name, self.started.elapsed());
        response
    }
}
