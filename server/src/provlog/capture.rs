//! A request body that keeps a copy of what the handler reads, up to a bound. Nothing is read
//! ahead: a request the gate refuses is never buffered, and the handler's own size limit still
//! applies.

use axum::body::{Body, Bytes};
use http_body::{Body as HttpBody, Frame, SizeHint};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

/// What the handler read so far (`None` once it went past the bound).
#[derive(Clone)]
pub struct Seen(Arc<Mutex<Option<Vec<u8>>>>);

impl Seen {
    /// The bytes read, if they stayed within the bound.
    pub fn take(&self) -> Option<Bytes> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
            .map(Bytes::from)
    }
}

pub struct Tee {
    inner: Body,
    seen: Seen,
    limit: usize,
}

impl Tee {
    pub fn wrap(inner: Body, limit: usize) -> (Tee, Seen) {
        let seen = Seen(Arc::new(Mutex::new(Some(Vec::new()))));
        (
            Tee {
                inner,
                seen: seen.clone(),
                limit,
            },
            seen,
        )
    }
}

impl HttpBody for Tee {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let limit = self.limit;
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if let Poll::Ready(Some(Ok(frame))) = &polled
            && let Some(data) = frame.data_ref()
        {
            let mut kept = self.seen.0.lock().unwrap_or_else(|p| p.into_inner());
            let over = kept.as_ref().is_some_and(|k| k.len() + data.len() > limit);
            if over {
                *kept = None;
            } else if let Some(k) = kept.as_mut() {
                k.extend_from_slice(data);
            }
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    #[tokio::test]
    async fn keeps_what_is_read_within_the_bound() {
        let (tee, seen) = Tee::wrap(Body::from("hello"), 10);
        let got = Body::new(tee).collect().await.unwrap().to_bytes();
        assert_eq!(&got[..], b"hello");
        assert_eq!(seen.take().as_deref(), Some(&b"hello"[..]));

        let (tee, seen) = Tee::wrap(Body::from("far too long"), 4);
        let got = Body::new(tee).collect().await.unwrap().to_bytes();
        assert_eq!(
            &got[..],
            b"far too long",
            "the handler still gets everything"
        );
        assert_eq!(seen.take(), None);

        let (_tee, seen) = Tee::wrap(Body::from("unread"), 100);
        assert_eq!(
            seen.take().as_deref(),
            Some(&b""[..]),
            "nothing read, nothing kept"
        );
    }
}
