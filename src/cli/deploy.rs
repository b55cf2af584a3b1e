//! `slugs:upload` and `deploy:dir`: deploy a directory without git.
//!
//! The directory is packed here, with the same deterministic packer the
//! platform uses, so the same tree always yields the same slug digest.

use std::path::{Path, PathBuf};

use super::client::Client;
use super::{output, CliError};
use crate::api::types::{Release, ReleaseCreate, Slug, SlugCreate};
use crate::model::{parse_procfile, AppName, PROCFILE_MAX_BYTES};

/// The default compression level, the same as the daemon's.
const LEVEL: u32 = 6;

/// A packed slug in a temporary file that is removed on drop.
struct Packed {
    path: PathBuf,
    checksum: String,
    size: u64,
}

impl Drop for Packed {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

fn read_procfile(dir: &Path) -> Result<std::collections::BTreeMap<String, String>, CliError> {
    let path = dir.join("Procfile");
    let text = match std::fs::metadata(&path) {
        Ok(meta) if meta.len() > PROCFILE_MAX_BYTES as u64 => {
            return Err(CliError::Usage(format!(
                "{} is larger than {PROCFILE_MAX_BYTES} bytes.",
                path.display()
            )))
        }
        Ok(_) => std::fs::read_to_string(&path).map_err(|source| CliError::Io {
            context: format!("cannot read {}", path.display()),
            source,
        })?,
        Err(_) => {
            return Err(CliError::Usage(format!(
                "{} has no Procfile; add one with lines like \"web: ./server\".",
                dir.display()
            )))
        }
    };
    let types = parse_procfile(&text).map_err(|e| CliError::Usage(e.message))?;
    Ok(types.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
}

async fn pack(dir: &Path) -> Result<Packed, CliError> {
    let dir = dir.to_owned();
    let path = std::env::temp_dir().join(format!("corral-slug-{}.tar.gz", uuid::Uuid::new_v4()));
    let out_path = path.clone();
    let stats = tokio::task::spawn_blocking(move || {
        let file = std::fs::File::create(&out_path)?;
        let mut writer = std::io::BufWriter::new(file);
        let stats = crate::slug::pack(&dir, &mut writer, LEVEL)
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        std::io::Write::flush(&mut writer)?;
        Ok::<_, std::io::Error>(stats)
    })
    .await
    .map_err(|e| CliError::Protocol(format!("the packing task failed: {e}")))?;
    match stats {
        Ok(stats) => Ok(Packed {
            path,
            checksum: stats.digest.to_checksum(),
            size: stats.bytes,
        }),
        Err(source) => {
            let _ = std::fs::remove_file(&path);
            Err(CliError::Io {
                context: "cannot pack the directory".to_owned(),
                source,
            })
        }
    }
}

/// Packs `dir`, creates the slug and uploads it; returns the slug.
async fn upload(
    client: &Client,
    app: &AppName,
    dir: &Path,
    commit: Option<String>,
) -> Result<(Slug, u64), CliError> {
    let process_types = read_procfile(dir)?;
    let packed = pack(dir).await?;
    let request = SlugCreate {
        process_types,
        checksum: Some(packed.checksum.clone()),
        commit,
        ..SlugCreate::default()
    };
    let slug: Slug = client
        .send_json(http::Method::POST, &format!("/apps/{app}/slugs"), &request)
        .await?;
    let blob = slug
        .blob
        .as_ref()
        .ok_or_else(|| CliError::Protocol("the API gave no upload target".to_owned()))?;
    let uploaded: Slug = client.put_file(&blob.url, &packed.path).await?;
    Ok((uploaded, packed.size))
}

pub(super) async fn slugs_upload(
    client: &Client,
    app: &AppName,
    dir: &Path,
    commit: Option<String>,
) -> Result<(), CliError> {
    let (slug, size) = output::action(
        &format!(
            "Uploading {} to {}",
            dir.display(),
            output::app_label(app.as_str())
        ),
        upload(client, app, dir, commit),
    )
    .await?;
    eprintln!("done, {:.1} MB", size as f64 / 1e6);
    println!("{}  {}", slug.id, slug.checksum.unwrap_or_default());
    Ok(())
}

pub(super) async fn deploy_dir(
    client: &Client,
    app: &AppName,
    dir: &Path,
    commit: Option<String>,
) -> Result<(), CliError> {
    let work = async {
        let (slug, size) = upload(client, app, dir, commit).await?;
        let request = ReleaseCreate {
            slug: Some(slug.id.to_string()),
            ..ReleaseCreate::default()
        };
        let release: Release = client
            .send_json(
                http::Method::POST,
                &format!("/apps/{app}/releases"),
                &request,
            )
            .await?;
        Ok::<_, CliError>((slug, size, release))
    };
    let label = format!(
        "Deploying {} to {}",
        dir.display(),
        output::app_label(app.as_str())
    );
    let (slug, size, release) = output::action(&label, work).await?;
    eprintln!("done, v{}", release.version);
    println!(
        "Slug {} ({:.1} MB, {})",
        slug.id,
        size as f64 / 1e6,
        slug.checksum.unwrap_or_default()
    );
    Ok(())
}
