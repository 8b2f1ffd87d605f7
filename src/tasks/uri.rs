//! `uri`: an HTTP request made *by the managed host*, as Ansible's `uri`
//! makes it: the status must be one of `status_code` (else the task fails
//! with "Status code was … and not […]"), the response registers
//! `status`, `url`, `msg`, `redirected`, its headers (lower case, `-` as
//! `_`), `content` (with `return_content`) and `json` (a JSON content
//! type). It changes nothing, except with `dest`, which the body is written
//! to (changed whenever it is written, as in Ansible; an existing `dest`
//! sends `If-Modified-Since`, and a `304` writes nothing). `creates` and
//! `removes` make it do nothing, as `command`'s do. Like ansible-core's,
//! it does not run in check mode: it is skipped.
//!
//! Not supported: `src`, `body_format: form-multipart`, `unix_socket`,
//! authentication and client certificates.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::attributes::Attributes;
use super::download_dest::{Kind, drop_body, install, probe, set_attributes};
use super::file::lenient;
use super::get_url::header_list;
use super::http_request::{self, HttpRequest, HttpResponse};
use super::{ActionContext, ModuleSpec, Outcome, parse_args};
use crate::python_text;
use crate::transport::{ShellScript, TransportError};
use crate::vars::{Value, VarMap};

pub static SPEC: ModuleSpec = ModuleSpec {
    name: "uri",
    args: &[
        "url",
        "method",
        "body",
        "body_format",
        "headers",
        "status_code",
        "return_content",
        "dest",
        "creates",
        "removes",
        "timeout",
        "validate_certs",
        "follow_redirects",
        "force",
        "mode",
        "owner",
        "group",
    ],
    free_form: false,
    any_name: false,
    build: |args| Ok(Box::new(Uri::new(parse_args(args)?)?)),
};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Args {
    #[serde(default, deserialize_with = "lenient::opt_string")]
    url: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    method: Option<String>,
    #[serde(default)]
    body: Option<Value>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    body_format: Option<String>,
    #[serde(default)]
    headers: Option<BTreeMap<String, Value>>,
    #[serde(default)]
    status_code: Option<Value>,
    #[serde(default, deserialize_with = "lenient::boolean")]
    return_content: bool,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    dest: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    creates: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    removes: Option<String>,
    #[serde(default = "thirty", deserialize_with = "lenient::number")]
    timeout: u64,
    #[serde(default = "lenient::yes", deserialize_with = "lenient::boolean")]
    validate_certs: bool,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    follow_redirects: Option<String>,
    #[serde(default, deserialize_with = "lenient::boolean")]
    force: bool,
    mode: Option<Value>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    owner: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    group: Option<String>,
}

fn thirty() -> u64 {
    30
}

struct Uri {
    url: String,
    method: String,
    headers: Vec<(String, String)>,
    body: Option<Vec<u8>>,
    status_code: Vec<i64>,
    return_content: bool,
    dest: Option<String>,
    creates: Option<String>,
    removes: Option<String>,
    timeout: u64,
    validate_certs: bool,
    follow_redirects: bool,
    force: bool,
    attrs: Attributes,
}

impl Uri {
    fn new(a: Args) -> Result<Self, String> {
        let Some(url) = a.url.filter(|u| !u.is_empty()) else {
            return Err("missing required arguments: url".into());
        };
        let method = a.method.unwrap_or_else(|| "GET".into()).to_uppercase();
        if method.is_empty() || !method.bytes().all(|b| b.is_ascii_uppercase()) {
            return Err(
                "Parameter 'method' needs to be a single word in uppercase, like GET or POST."
                    .into(),
            );
        }
        let mut headers = header_list(a.headers);
        let has_type = headers
            .iter()
            .any(|(k, _)| k.eq_ignore_ascii_case("content-type"));
        let format = a.body_format.unwrap_or_else(|| "raw".into()).to_lowercase();
        let body = match (format.as_str(), a.body) {
            (_, None | Some(Value::Null)) => None,
            (_, Some(Value::String(s))) => Some(s),
            ("json", Some(v)) => Some(python_text::json_dumps(&v)),
            ("form-urlencoded", Some(v)) => Some(form_urlencoded(&v)?),
            ("raw", Some(v)) => Some(python_text::str(&v)),
            (other, _) => {
                return Err(format!(
                    "value of body_format must be one of: form-urlencoded, json, raw, got: {other}"
                ));
            }
        };
        let content_type = match format.as_str() {
            "json" => Some("application/json"),
            "form-urlencoded" => Some("application/x-www-form-urlencoded"),
            "raw" => None,
            other => {
                return Err(format!(
                    "value of body_format must be one of: form-urlencoded, json, raw, got: {other}"
                ));
            }
        };
        if let Some(t) = content_type
            && !has_type
        {
            headers.push(("Content-Type".into(), t.into()));
        }
        let follow_redirects = match a.follow_redirects.as_deref().unwrap_or("safe") {
            "all" | "yes" => true,
            "none" | "no" => false,
            "safe" | "urllib2" => matches!(method.as_str(), "GET" | "HEAD"),
            other => {
                return Err(format!(
                    "value of follow_redirects must be one of: all, no, none, safe, urllib2, yes, got: {other}"
                ));
            }
        };
        Ok(Uri {
            status_code: status_codes(a.status_code.as_ref())?,
            url,
            method,
            headers,
            body: body.map(String::into_bytes),
            return_content: a.return_content,
            dest: a.dest.filter(|d| !d.is_empty()),
            creates: a.creates,
            removes: a.removes,
            timeout: a.timeout,
            validate_certs: a.validate_certs,
            follow_redirects,
            force: a.force,
            attrs: Attributes::from_args(a.mode.as_ref(), a.owner, a.group)?,
        })
    }

    async fn run(&self, ctx: &ActionContext<'_>) -> Result<Outcome, TransportError> {
        if ctx.check {
            let mut o = Outcome::ok().with_msg("remote module (uri) does not support check mode");
            o.skipped = true;
            return Ok(o);
        }
        if let Some(stdout) = self.guard(ctx).await? {
            return Ok(Outcome::ok().with("stdout", stdout));
        }
        let mut dest = self.dest.clone();
        let mut found = None;
        if let Some(d) = &dest {
            match probe(ctx, d, None).await? {
                Ok(f) => found = Some(f),
                Err(msg) => return Ok(Outcome::failed(msg)),
            }
        }
        let dest_is_file = matches!(found.as_ref().map(|f| &f.kind), Some(Kind::File(_)));
        let request = HttpRequest {
            url: &self.url,
            method: &self.method,
            headers: &self.headers,
            body: self.body.as_deref(),
            timeout: self.timeout,
            validate_certs: self.validate_certs,
            follow_redirects: self.follow_redirects,
            if_modified_since: (dest_is_file && !self.force)
                .then_some(dest.as_deref())
                .flatten(),
            digest: None,
            return_body: dest.is_none(),
            keep_body: dest.is_some(),
        };
        let response = match http_request::send(ctx, &request).await? {
            Ok(r) => r,
            Err(msg) => return Ok(Outcome::failed(msg)),
        };
        let mut outcome = Outcome::ok();
        outcome.result = self.registered(&response);
        let wanted = self.status_code.contains(&response.status);
        if let (Some(d), Some(f)) = (&mut dest, &mut found) {
            let write = wanted && response.status != 304;
            if write && matches!(f.kind, Kind::Directory) {
                let name = http_request::disposition_filename(&response)
                    .unwrap_or_else(|| "index.html".into());
                *d = format!("{}/{name}", d.trim_end_matches('/'));
                *f = match probe(ctx, d, None).await? {
                    Ok(f) => f,
                    Err(msg) => {
                        drop_body(ctx, &response).await?;
                        return Ok(Outcome::failed(msg));
                    }
                };
            }
            if write {
                if let Err(msg) = self.write(ctx, &response, d, f).await? {
                    return Ok(Outcome::failed(msg).with("path", d.clone()));
                }
                outcome.changed = true;
            } else {
                drop_body(ctx, &response).await?;
            }
            outcome = outcome.with("path", d.clone());
        }
        let msg = response.msg();
        if !wanted {
            let codes: Vec<String> = self.status_code.iter().map(i64::to_string).collect();
            outcome.failed = true;
            outcome.msg = Some(format!(
                "Status code was {} and not [{}]: {msg}",
                response.status,
                codes.join(", ")
            ));
        } else {
            outcome.msg = Some(msg);
        }
        if let Some(Value::String(m)) = outcome.msg.clone().map(Value::from) {
            outcome.result.insert("msg".into(), Value::String(m));
        }
        Ok(outcome)
    }

    /// `creates`/`removes`: the message when there is nothing to do.
    async fn guard(&self, ctx: &ActionContext<'_>) -> Result<Option<String>, TransportError> {
        for (path, wants) in [(&self.creates, false), (&self.removes, true)] {
            let Some(path) = path else { continue };
            let script = ShellScript::new()
                .path_var("p", path)
                .code(r#"if [ -e "$p" ]; then echo yes; else echo no; fi"#);
            let out = ctx.conn.exec(ctx.script(&script)).await?;
            let exists = out.stdout_str().trim() == "yes";
            if exists != wants {
                return Ok(Some(if wants {
                    format!("skipped, since '{path}' does not exist")
                } else {
                    format!("skipped, since '{path}' exists")
                }));
            }
        }
        Ok(None)
    }

    /// Writes the body to `dest` when it differs, then the attributes.
    async fn write(
        &self,
        ctx: &ActionContext<'_>,
        response: &HttpResponse,
        dest: &str,
        found: &super::download_dest::Found,
    ) -> Result<Result<(), String>, TransportError> {
        match &found.kind {
            Kind::Directory => {
                drop_body(ctx, response).await?;
                Ok(Err(format!("Destination {dest} is a directory")))
            }
            Kind::File(f) if f.sha1 == response.body_sha1 => {
                drop_body(ctx, response).await?;
                set_attributes(ctx, &self.attrs, dest, f, found.umask)
                    .await
                    .map(|r| r.map(|_| ()))
            }
            Kind::File(f) => {
                install(
                    ctx,
                    &response.body_file,
                    dest,
                    Some(f),
                    found.umask,
                    &self.attrs,
                )
                .await
            }
            Kind::Missing { .. } => {
                install(
                    ctx,
                    &response.body_file,
                    dest,
                    None,
                    found.umask,
                    &self.attrs,
                )
                .await
            }
        }
    }

    /// The registered result, with Ansible's keys.
    fn registered(&self, response: &HttpResponse) -> VarMap {
        let mut map = VarMap::new();
        for (name, value) in &response.headers {
            map.insert(name.replace('-', "_"), Value::String(value.clone()));
        }
        if let Some(location) = response.header("location") {
            map.insert("location".into(), join_url(&self.url, location).into());
        }
        let url = if response.url.is_empty() {
            self.url.clone()
        } else {
            response.url.clone()
        };
        map.insert("redirected".into(), (url != self.url).into());
        map.insert("url".into(), url.into());
        map.insert("status".into(), response.status.into());
        map.insert("elapsed".into(), 0.into());
        map.insert("cookies".into(), Value::Object(VarMap::new()));
        map.insert("cookies_string".into(), "".into());
        let content_type = response.header("content-type").unwrap_or_default();
        let subtype = content_type
            .split(';')
            .next()
            .and_then(|t| t.split_once('/'))
            .map(|(_, sub)| sub.trim().to_ascii_lowercase())
            .unwrap_or_default();
        let subtype = subtype.rsplit('+').next().unwrap_or_default();
        let maybe_json = matches!(subtype, "json" | "javascript");
        let text = String::from_utf8_lossy(&response.body).into_owned();
        if maybe_json
            && self.dest.is_none()
            && let Ok(json) = serde_json::from_str::<Value>(&text)
        {
            map.insert("json".into(), json);
        }
        if self.return_content && self.dest.is_none() {
            map.insert("content".into(), text.into());
        }
        map
    }
}

super::action_by_async_run!(Uri);

/// `status_code` as Ansible's `list` of `int`: one code, a list, or a
/// comma-separated string.
fn status_codes(value: Option<&Value>) -> Result<Vec<i64>, String> {
    let items: Vec<Value> = match value {
        None | Some(Value::Null) => return Ok(vec![200]),
        Some(Value::Array(a)) => a.clone(),
        Some(Value::String(s)) => s.split(',').map(|p| Value::from(p.trim())).collect(),
        Some(other) => vec![other.clone()],
    };
    items
        .iter()
        .map(|v| match v {
            Value::Number(n) => n.as_i64(),
            Value::String(s) => s.trim().parse().ok(),
            _ => None,
        })
        .collect::<Option<Vec<i64>>>()
        .ok_or_else(|| {
            format!(
                "status_code must be a list of integers, got {}",
                python_text::str(value.unwrap_or(&Value::Null))
            )
        })
}

/// Python's `urlencode(kv_list(body), doseq=True)`: a dict's keys with
/// each value (a list's items one by one), `quote_plus`ed.
fn form_urlencoded(body: &Value) -> Result<String, String> {
    let pairs: Vec<(String, Value)> = match body {
        Value::Object(map) => map.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
        Value::Array(items) => items
            .iter()
            .map(|item| match item {
                Value::Array(kv) if kv.len() == 2 => Ok((python_text::str(&kv[0]), kv[1].clone())),
                _ => Err(
                    "failed to parse body as form_urlencoded: a list item is not a pair".to_owned(),
                ),
            })
            .collect::<Result<_, _>>()?,
        other => return Ok(python_text::str(other)),
    };
    let mut out = Vec::new();
    for (key, value) in pairs {
        let values = match value {
            Value::Array(items) => items,
            v => vec![v],
        };
        for v in values.iter().filter(|v| !v.is_null()) {
            out.push(format!(
                "{}={}",
                quote_plus(&key),
                quote_plus(&python_text::str(v))
            ));
        }
    }
    Ok(out.join("&"))
}

/// Python's `urllib.parse.quote_plus`.
fn quote_plus(text: &str) -> String {
    let mut out = String::new();
    for b in text.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'_' | b'.' | b'-' | b'~' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// A `Location` made absolute against the request's URL (`urljoin` for
/// the forms servers send: absolute, `/path`, or relative).
fn join_url(base: &str, location: &str) -> String {
    if location.contains("://") {
        return location.to_owned();
    }
    let Some((scheme, rest)) = base.split_once("://") else {
        return location.to_owned();
    };
    let host_end = rest.find('/').unwrap_or(rest.len());
    let origin = format!("{scheme}://{}", &rest[..host_end]);
    if location.starts_with('/') {
        return format!("{origin}{location}");
    }
    let path = rest[host_end..].split(['?', '#']).next().unwrap_or("");
    let dir = path.rsplit_once('/').map_or("", |(d, _)| d);
    format!("{origin}{dir}/{location}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_bodies_as_python_encodes_them() {
        let body =
            serde_json::json!({"name": "a b&c", "tags": ["x", "y"], "none": null, "on": true});
        assert_eq!(
            form_urlencoded(&body).unwrap(),
            "name=a+b%26c&tags=x&tags=y&on=True"
        );
    }

    #[test]
    fn status_codes_in_every_form() {
        assert_eq!(status_codes(None).unwrap(), vec![200]);
        assert_eq!(
            status_codes(Some(&serde_json::json!(201))).unwrap(),
            vec![201]
        );
        assert_eq!(
            status_codes(Some(&serde_json::json!([200, "304"]))).unwrap(),
            vec![200, 304]
        );
        assert_eq!(
            status_codes(Some(&serde_json::json!("200, 201"))).unwrap(),
            vec![200, 201]
        );
        assert!(status_codes(Some(&serde_json::json!("ok"))).is_err());
    }

    #[test]
    fn arguments() {
        let build = |v| Uri::new(parse_args(v)?).map(|_| ());
        assert!(build(serde_json::json!({})).is_err());
        assert!(build(serde_json::json!({"url": "http://h/", "method": "GET POST"})).is_err());
        assert!(build(serde_json::json!({"url": "http://h/", "body_format": "xml"})).is_err());
        assert!(build(serde_json::json!({"url": "http://h/", "follow": "all"})).is_err());
        let u = Uri::new(
            parse_args(serde_json::json!({"url": "http://h/", "method": "post",
            "body": {"k": 1}, "body_format": "json"}))
            .unwrap(),
        )
        .unwrap();
        assert_eq!(u.body.as_deref(), Some(&b"{\"k\": 1}"[..]));
        assert_eq!(
            u.headers,
            vec![("Content-Type".to_owned(), "application/json".to_owned())]
        );
        assert!(!u.follow_redirects);
    }

    #[test]
    fn locations_are_made_absolute() {
        assert_eq!(join_url("http://h:8/a/b", "/c"), "http://h:8/c");
        assert_eq!(join_url("http://h:8/a/b", "c"), "http://h:8/a/c");
        assert_eq!(join_url("http://h:8/a/b", "http://x/y"), "http://x/y");
    }
}
