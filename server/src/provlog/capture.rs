//! A request body that keeps a copy of what the handler reads, up to a bound. Nothing is read
//! ahead: a request the gate refuses is never buffered, and the handler's own size limit still
//! applies.

use axum::body::{Body, Bytes};
use http_body::{Body as HttpBody, Frame, SizeHint};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

/// What the handler read so far (`None` once it went past the bound): the frames themselves,
/// shared with the handler rather than copied (a small body is one frame).
#[derive(Clone)]
pub struct Seen(Arc<Mutex<Option<Frames>>>);

#[derive(Default)]
struct Frames {
    parts: Vec<Bytes>,
    len: usize,
}

impl Seen {
    /// The bytes read, if they stayed within the bound.
    pub fn take(&self) -> Option<Bytes> {
        let mut f = self.0.lock().unwrap_or_else(|p| p.into_inner()).take()?;
        Some(match f.parts.len() {
            0 => Bytes::new(),
            1 => f.parts.pop().unwrap_or_default(),
            _ => {
                let mut all = Vec::with_capacity(f.len);
                for p in &f.parts {
                    all.extend_from_slice(p);
                }
                Bytes::from(all)
            }
        })
    }
}

pub struct Tee {
    inner: Body,
    seen: Seen,
    limit: usize,
}

impl Tee {
    pub fn wrap(inner: Body, limit: usize) -> (Tee, Seen) {
        let seen = Seen(Arc::new(Mutex::new(Some(Frames::default()))));
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
            let over = kept.as_ref().is_some_and(|k| k.len + data.len() > limit);
            if over {
                *kept = None;
            } else if let Some(k) = kept.as_mut() {
                k.len += data.len();
                k.parts.push(data.clone());
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

    fn futures_frames(parts: &[&'static str]) -> Body {
        let frames = parts
            .iter()
            .map(|p| Ok::<_, std::io::Error>(Frame::data(Bytes::from_static(p.as_bytes()))));
        Body::new(http_body_util::StreamBody::new(futures_util::stream::iter(
            frames.collect::<Vec<_>>(),
        )))
    }

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

        // Several frames come back as one body.
        let frames = futures_frames(&["{\"a\":", " 1", "}"]);
        let (tee, seen) = Tee::wrap(frames, 100);
        Body::new(tee).collect().await.unwrap();
        assert_eq!(seen.take().as_deref(), Some(&b"{\"a\": 1}"[..]));

        let (_tee, seen) = Tee::wrap(Body::from("unread"), 100);
        assert_eq!(
            seen.take().as_deref(),
            Some(&b""[..]),
            "nothing read, nothing kept"
        );
    }
}
