//! `get_url`: download a file from a URL *on the managed host*, as
//! Ansible's `get_url` does, and changed only when the file's content or
//! attributes change.
//!
//! The rules are ansible-core's: an existing `dest` with a matching
//! `checksum` is not downloaded again (unless `force`); otherwise the
//! request carries `If-Modified-Since` (the file's mtime) unless `force`,
//! and a `304` changes nothing; a download is verified against `checksum`
//! before anything is moved (a mismatch fails and leaves no file), then
//! installed only when its sha1 differs from the file there. A `dest`
//! that is a directory gets the name the response gives
//! (`Content-Disposition`) or the URL's last segment. Check mode sends a
//! `HEAD` instead and, as Ansible, reports changed unless nothing would
//! be fetched.
//!
//! Not supported: checksums from a URL, `backup`, `tmp_dest`, client
//! certificates, authentication arguments.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::attributes::Attributes;
use super::download_dest::{Kind, drop_body, install, probe, set_attributes};
use super::file::lenient;
use super::http_request::{self, ALGORITHMS, HttpRequest};
use super::{ActionContext, ModuleSpec, Outcome, parse_args};
use crate::transport::TransportError;
use crate::vars::Value;

pub static SPEC: ModuleSpec = ModuleSpec {
    name: "get_url",
    args: &[
        "url",
        "dest",
        "checksum",
        "force",
        "timeout",
        "headers",
        "validate_certs",
        "mode",
        "owner",
        "group",
    ],
    free_form: false,
    any_name: false,
    build: |args| Ok(Box::new(GetUrl::new(parse_args(args)?)?)),
};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Args {
    #[serde(default, deserialize_with = "lenient::opt_string")]
    url: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    dest: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    checksum: Option<String>,
    #[serde(default, alias = "thirsty", deserialize_with = "lenient::boolean")]
    force: bool,
    #[serde(default = "ten", deserialize_with = "lenient::number")]
    timeout: u64,
    #[serde(default)]
    headers: Option<BTreeMap<String, Value>>,
    #[serde(default = "lenient::yes", deserialize_with = "lenient::boolean")]
    validate_certs: bool,
    mode: Option<Value>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    owner: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    group: Option<String>,
}

fn ten() -> u64 {
    10
}

struct GetUrl {
    url: String,
    dest: String,
    /// (algorithm, lower-case hex digest).
    checksum: Option<(String, String)>,
    force: bool,
    timeout: u64,
    headers: Vec<(String, String)>,
    validate_certs: bool,
    attrs: Attributes,
}

impl GetUrl {
    fn new(a: Args) -> Result<Self, String> {
        let (Some(url), Some(dest)) = (a.url, a.dest) else {
            return Err("missing required arguments: url, dest".into());
        };
        if url.is_empty() || dest.is_empty() {
            return Err("url and dest must not be empty".into());
        }
        Ok(GetUrl {
            checksum: match a.checksum.filter(|c| !c.is_empty()) {
                None => None,
                Some(c) => Some(parse_checksum(&c)?),
            },
            url,
            dest,
            force: a.force,
            timeout: a.timeout,
            headers: header_list(a.headers),
            validate_certs: a.validate_certs,
            attrs: Attributes::from_args(a.mode.as_ref(), a.owner, a.group)?,
        })
    }

    async fn run(&self, ctx: &ActionContext<'_>) -> Result<Outcome, TransportError> {
        let alg = self.checksum.as_ref().map(|(a, _)| a.as_str());
        let base = |o: Outcome, dest: &str| o.with("url", self.url.clone()).with("dest", dest);
        let mut dest = self.dest.clone();
        let mut found = match probe(ctx, &dest, alg).await? {
            Ok(found) => found,
            Err(msg) => return Ok(base(Outcome::failed(msg), &dest)),
        };
        let dest_is_dir = matches!(found.kind, Kind::Directory);
        if let (Kind::File(file), Some((_, want)), false) =
            (&found.kind, &self.checksum, self.force)
            && &file.digest == want
        {
            // Ansible trusts a matching checksum and fetches nothing.
            let changed = set_attributes(ctx, &self.attrs, &dest, file, found.umask).await?;
            let outcome = match changed {
                Err(msg) => Outcome::failed(msg),
                Ok(true) => Outcome::changed(true)
                    .with_msg("file already exists but file attributes changed"),
                Ok(false) => Outcome::ok().with_msg("file already exists"),
            };
            return Ok(base(outcome, &dest)
                .with("checksum_dest", Value::Null)
                .with("checksum_src", Value::Null));
        }
        // A checksum that does not match forces the download: the file's
        // mtime may well be newer than the server's.
        let mismatch = matches!(
            (&found.kind, &self.checksum),
            (Kind::File(f), Some((_, want))) if &f.digest != want
        );
        let conditional = matches!(found.kind, Kind::File(_)) && !self.force && !mismatch;
        let request = HttpRequest {
            url: &self.url,
            method: if ctx.check { "HEAD" } else { "GET" },
            headers: &self.headers,
            body: None,
            timeout: self.timeout,
            validate_certs: self.validate_certs,
            follow_redirects: true,
            if_modified_since: conditional.then_some(dest.as_str()),
            digest: alg,
            return_body: false,
            keep_body: true,
        };
        let response = match http_request::send(ctx, &request).await? {
            Ok(r) => r,
            Err(msg) => return Ok(base(Outcome::failed(msg), &dest)),
        };
        let fail = |o: Outcome, dest: &str| {
            base(o, dest)
                .with("status_code", response.status)
                .with("response", response.msg())
        };
        if response.status == 304 {
            drop_body(ctx, &response).await?;
            return Ok(base(Outcome::ok().with_msg(response.msg()), &dest)
                .with("status_code", response.status));
        }
        if response.status == -1 {
            drop_body(ctx, &response).await?;
            return Ok(base(Outcome::failed(response.msg()), &dest));
        }
        if response.status != 200 {
            drop_body(ctx, &response).await?;
            return Ok(fail(Outcome::failed("Request failed"), &dest));
        }
        if dest_is_dir {
            let name = http_request::disposition_filename(&response)
                .unwrap_or_else(|| http_request::url_filename(&response.url));
            dest = format!("{}/{name}", dest.trim_end_matches('/'));
            found = match probe(ctx, &dest, None).await? {
                Ok(found) => found,
                Err(msg) => {
                    drop_body(ctx, &response).await?;
                    return Ok(base(Outcome::failed(msg), &dest));
                }
            };
        }
        let checksum_dest = match &found.kind {
            Kind::File(f) => Value::from(f.sha1.clone()),
            _ => Value::Null,
        };
        let result = |o: Outcome, dest: &str| {
            base(o, dest)
                .with("checksum_src", response.body_sha1.clone())
                .with("checksum_dest", checksum_dest.clone())
                .with("status_code", response.status)
        };
        match &found.kind {
            Kind::Directory => {
                drop_body(ctx, &response).await?;
                return Ok(result(
                    Outcome::failed(format!("Destination {dest} is a directory")),
                    &dest,
                ));
            }
            Kind::Missing { parent: false } => {
                drop_body(ctx, &response).await?;
                let parent = dest.rsplit_once('/').map_or("", |(d, _)| d);
                return Ok(result(
                    Outcome::failed(format!("Destination {parent} does not exist")),
                    &dest,
                ));
            }
            _ => {}
        }
        let same = matches!(&found.kind, Kind::File(f) if f.sha1 == response.body_sha1);
        if ctx.check {
            drop_body(ctx, &response).await?;
            return Ok(result(
                Outcome::changed(!same).with_msg(response.msg()),
                &dest,
            ));
        }
        if let Some((_, want)) = &self.checksum
            && &response.body_digest != want
        {
            drop_body(ctx, &response).await?;
            let msg = format!(
                "The checksum for {} did not match {want}; it was {}.",
                response.body_file, response.body_digest
            );
            return Ok(result(Outcome::failed(msg), &dest));
        }
        let changed = if same {
            drop_body(ctx, &response).await?;
            let Kind::File(file) = &found.kind else {
                unreachable!("same content means a file")
            };
            match set_attributes(ctx, &self.attrs, &dest, file, found.umask).await? {
                Ok(changed) => changed,
                Err(msg) => return Ok(result(Outcome::failed(msg), &dest)),
            }
        } else {
            let current = match &found.kind {
                Kind::File(f) => Some(f),
                _ => None,
            };
            if let Err(msg) = install(
                ctx,
                &response.body_file,
                &dest,
                current,
                found.umask,
                &self.attrs,
            )
            .await?
            {
                drop_body(ctx, &response).await?;
                return Ok(result(Outcome::failed(msg), &dest));
            }
            true
        };
        Ok(
            result(Outcome::changed(changed).with_msg(response.msg()), &dest)
                .with("size", response.body_size),
        )
    }
}

super::action_by_async_run!(GetUrl);

/// `algorithm:hex`, cleaned as Ansible cleans it (non-word characters
/// dropped, lower case) and checked to be hex.
fn parse_checksum(text: &str) -> Result<(String, String), String> {
    let Some((alg, digest)) = text.split_once(':') else {
        return Err("The checksum parameter has to be in format <algorithm>:<checksum>".into());
    };
    if digest.contains("://") {
        return Err("a checksum read from a URL is not supported; give the digest".into());
    }
    if !ALGORITHMS.contains(&alg) {
        return Err(format!(
            "Could not hash file with algorithm '{alg}'. Available algorithms: {}",
            ALGORITHMS.join(", ")
        ));
    }
    let digest: String = digest
        .chars()
        .filter(|c| c.is_alphanumeric() || *c == '_')
        .collect::<String>()
        .to_lowercase();
    if digest.is_empty() || !digest.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err("The checksum format is invalid".into());
    }
    Ok((alg.to_owned(), digest))
}

/// `headers` as Ansible's `dict` type: values become text.
pub(super) fn header_list(headers: Option<BTreeMap<String, Value>>) -> Vec<(String, String)> {
    headers
        .into_iter()
        .flatten()
        .map(|(k, v)| (k, crate::python_text::str(&v)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksums_as_ansible_reads_them() {
        assert_eq!(
            parse_checksum("sha256:AB\u{200b}CD").unwrap(),
            ("sha256".into(), "abcd".into())
        );
        assert!(
            parse_checksum("abcd")
                .unwrap_err()
                .contains("<algorithm>:<checksum>")
        );
        assert_eq!(
            parse_checksum("sha256:xyz").unwrap_err(),
            "The checksum format is invalid"
        );
        assert!(parse_checksum("crc32:abcd").is_err());
        assert!(parse_checksum("sha256:http://h/SHA256SUMS").is_err());
    }

    #[test]
    fn arguments() {
        let build = |v| GetUrl::new(parse_args(v)?).map(|_| ());
        assert!(build(serde_json::json!({"url": "http://h/x"})).is_err());
        assert!(
            build(serde_json::json!({"url": "http://h/x", "dest": "/x", "backup": true})).is_err()
        );
        assert!(build(serde_json::json!({"url": "http://h/x", "dest": "/x", "force": "yes", "timeout": "5"})).is_ok());
    }
}
