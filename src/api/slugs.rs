//! `/apps/{app}/slugs` and `/blobs/slugs/{id}`: create a slug, stream its upload into the slug store.

use std::collections::BTreeMap;

use bytes::Bytes;
use http::StatusCode;
use http_body_util::BodyExt;
use uuid::Uuid;

use super::error::ApiError;
use super::request::{base_url, check_compat};
use super::respond::{json, ApiResponse};
use super::{types, Api, STACK_ID, STACK_NAME};
use crate::model::{check_process_types, SlugDigest};
use crate::slug::SlugError;
use crate::state::{self, AppRef, NewSlug};

/// Body chunks in flight between the connection and the disk writer.
const UPLOAD_QUEUE: usize = 16;

impl Api {
    pub(super) async fn create_slug(
        &self,
        app: AppRef,
        req: types::SlugCreate,
        host: Option<&str>,
        rid: &str,
    ) -> Result<ApiResponse, ApiError> {
        check_compat("stack", req.stack.as_deref(), STACK_NAME)?;
        let new = NewSlug {
            process_types: check_process_types(&req.process_types)?,
            expected: req.checksum.as_deref().map(SlugDigest::parse).transpose()?,
            commit: req.commit.filter(|c| !c.is_empty()),
            commit_description: req.commit_description,
        };
        for (field, value) in [
            ("commit", &new.commit),
            ("commit_description", &new.commit_description),
        ] {
            if value
                .as_ref()
                .is_some_and(|v| v.len() > 4096 || v.contains('\0'))
            {
                return Err(ApiError::Invalid(format!(
                    "{field} must be at most 4096 bytes of text without NUL bytes."
                )));
            }
        }
        let (slug, secret) = self
            .store
            .create_slug(app, new)
            .await
            .map_err(|e| ApiError::from_store(e, rid))?;
        let blob = types::Blob {
            method: "PUT".to_owned(),
            url: format!(
                "{}/blobs/slugs/{}?signature={secret}",
                base_url(host),
                slug.id
            ),
        };
        let mut body = slug_json(&slug);
        body.blob = Some(blob);
        Ok(json(StatusCode::CREATED, &body))
    }

    pub(super) async fn get_slug(
        &self,
        app: AppRef,
        id: Uuid,
        rid: &str,
    ) -> Result<ApiResponse, ApiError> {
        let slug = self
            .store
            .get_slug(app, id)
            .await
            .map_err(|e| ApiError::from_store(e, rid))?;
        Ok(json(StatusCode::OK, &slug_json(&slug)))
    }

    /// Streams the request body into the slug store on the blocking pool,
    /// hashing as it writes, then records the digest.
    pub(super) async fn upload_slug<B>(
        &self,
        id: Uuid,
        signature: String,
        body: B,
        rid: &str,
    ) -> Result<ApiResponse, ApiError>
    where
        B: hyper::body::Body<Data = Bytes> + Send,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let slug = self
            .store
            .slug_for_upload(id, signature)
            .await
            .map_err(|_| ApiError::NotFound("Not found.".to_owned()))?;
        let (tx, rx) = tokio::sync::mpsc::channel::<std::io::Result<Bytes>>(UPLOAD_QUEUE);
        let slugs = self.slugs.clone();
        let expected = slug.expected;
        let writer = tokio::task::spawn_blocking(move || {
            slugs.store_reader(ChannelReader::new(rx), expected)
        });
        let mut body = std::pin::pin!(body);
        while let Some(frame) = body.frame().await {
            let chunk = match frame {
                Ok(frame) => match frame.into_data() {
                    Ok(data) => Ok(data),
                    Err(_) => continue,
                },
                Err(e) => Err(std::io::Error::other(e.into())),
            };
            let failed = chunk.is_err();
            // A closed channel means the writer stopped (limit or error):
            // its result says why.
            if tx.send(chunk).await.is_err() || failed {
                break;
            }
        }
        drop(tx);
        let stored = writer
            .await
            .map_err(|e| {
                tracing::error!(request_id = rid, error = %e, "slug writer task failed");
                ApiError::Internal {
                    request_id: rid.to_owned(),
                }
            })?
            .map_err(|e| slug_error(e, rid))?;
        let slug = self
            .store
            .complete_upload(id, stored.digest, stored.size)
            .await
            .map_err(|e| ApiError::from_store(e, rid))?;
        Ok(json(StatusCode::OK, &slug_json(&slug)))
    }
}

fn slug_json(slug: &state::Slug) -> types::Slug {
    let process_types: BTreeMap<String, String> = slug
        .process_types
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect();
    types::Slug {
        blob: None,
        buildpack_provided_description: None,
        checksum: slug.digest.or(slug.expected).map(|d| d.to_checksum()),
        commit: slug.commit.clone(),
        commit_description: slug.commit_description.clone(),
        created_at: slug.created_at,
        id: slug.id,
        process_types,
        size: slug.size,
        stack: types::NamedRef {
            id: STACK_ID,
            name: STACK_NAME.to_owned(),
        },
        updated_at: slug.updated_at,
    }
}

fn slug_error(e: SlugError, rid: &str) -> ApiError {
    match e {
        SlugError::ChecksumMismatch { .. } => ApiError::Invalid(e.to_string()),
        SlugError::TooLarge { limit, .. } => ApiError::TooLarge {
            limit: usize::try_from(limit).unwrap_or(usize::MAX),
        },
        other => {
            tracing::error!(request_id = rid, error = %other, "slug upload failed");
            ApiError::Internal {
                request_id: rid.to_owned(),
            }
        }
    }
}

/// A blocking `Read` over body chunks sent from the async side.
struct ChannelReader {
    rx: tokio::sync::mpsc::Receiver<std::io::Result<Bytes>>,
    current: Bytes,
}

impl ChannelReader {
    fn new(rx: tokio::sync::mpsc::Receiver<std::io::Result<Bytes>>) -> Self {
        Self {
            rx,
            current: Bytes::new(),
        }
    }
}

impl std::io::Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.current.is_empty() {
            match self.rx.blocking_recv() {
                Some(Ok(chunk)) => self.current = chunk,
                Some(Err(e)) => return Err(e),
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.current.len());
        buf[..n].copy_from_slice(&self.current.split_to(n));
        Ok(n)
    }
}
