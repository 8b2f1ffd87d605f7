//! One HTTP request made *by the managed host* (`get_url`, `uri`), as
//! Ansible's modules make it there: the host's view of the network is the
//! one that counts (a URL on its private network, its own loopback).
//!
//! The host runs curl (every target convoy supports has it; the pull
//! source of a distribution uses it too). The response body lands in a
//! private temporary file on the host, which stays there for the module
//! to verify and install or drop; its sha1 (and a digest asked for) are
//! computed there, so a large download never crosses back to convoy. The
//! status line, the headers and, when asked, the body come back framed by
//! NULs in one round trip.

use super::ActionContext;
use super::file::last_line;
use crate::transport::{ShellScript, TransportError};

/// The hash tools a checksum may name (`sha256:…`), as Ansible's
/// `digest_from_file` accepts them; each is `<name>sum` on the host.
pub(super) const ALGORITHMS: &[&str] = &["md5", "sha1", "sha224", "sha256", "sha384", "sha512"];

/// What to ask for.
pub(super) struct HttpRequest<'a> {
    pub url: &'a str,
    /// Upper case (`GET`, `HEAD`, `POST`…), checked by the module.
    pub method: &'a str,
    pub headers: &'a [(String, String)],
    pub body: Option<&'a [u8]>,
    pub timeout: u64,
    pub validate_certs: bool,
    pub follow_redirects: bool,
    /// A file on the host whose mtime goes out as `If-Modified-Since`
    /// (Ansible sends it when the destination exists and is not forced).
    pub if_modified_since: Option<&'a str>,
    /// A digest of the body to compute on the host (one of [`ALGORITHMS`]).
    pub digest: Option<&'a str>,
    /// Bring the body back to convoy (`uri`'s content, JSON).
    pub return_body: bool,
    /// Leave the body's temporary file on the host (`get_url` installs it).
    pub keep_body: bool,
}

/// What the host got.
#[derive(Debug, Default)]
pub(super) struct HttpResponse {
    /// The status code; -1 when there was no response (refused, timed out).
    pub status: i64,
    /// The status line's reason phrase (`Not Found`).
    pub reason: String,
    /// The URL finally answered (after redirects).
    pub url: String,
    /// Header names in lower case, in the order received (last response only).
    pub headers: Vec<(String, String)>,
    /// curl's message when there was no response.
    pub error: String,
    /// The temporary file holding the body on the host (removed unless kept).
    pub body_file: String,
    pub body_sha1: String,
    pub body_digest: String,
    pub body_size: u64,
    /// The body, when asked for.
    pub body: Vec<u8>,
}

impl HttpResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// urllib's message for the response, as Ansible's `fetch_url` puts it
    /// in `msg`: `OK (12 bytes)` for a success, `HTTP Error 404: Not Found`
    /// for an error status.
    pub fn msg(&self) -> String {
        if self.status == -1 {
            return format!("Request failed: {}", self.error);
        }
        if (200..300).contains(&self.status) {
            let length = self.header("content-length").unwrap_or("unknown");
            format!("OK ({length} bytes)")
        } else {
            format!("HTTP Error {}: {}", self.status, self.reason)
        }
    }
}

/// Makes the request from the host; a transport failure is the only error
/// (an HTTP failure is a response, with its status).
pub(super) async fn send(
    ctx: &ActionContext<'_>,
    req: &HttpRequest<'_>,
) -> Result<Result<HttpResponse, String>, TransportError> {
    let mut args: Vec<String> = Vec::new();
    for (name, value) in req.headers {
        args.push("-H".into());
        // curl drops a header given as `Name:`; `Name;` sends it empty.
        args.push(if value.is_empty() {
            format!("{name};")
        } else {
            format!("{name}: {value}")
        });
    }
    if !req.validate_certs {
        args.push("-k".into());
    }
    if req.follow_redirects {
        args.push("-L".into());
    }
    match req.method {
        "GET" => {}
        // -I, not -X HEAD: curl would otherwise wait for a body that never comes.
        "HEAD" => args.push("-I".into()),
        other => {
            args.push("-X".into());
            args.push(other.into());
        }
    }
    if req.body.is_some() {
        args.push("--data-binary".into());
        args.push("@-".into());
    }
    let script = ShellScript::new()
        .var("URL", req.url)
        .var("TO", req.timeout.max(1).to_string())
        .var("IMS", req.if_modified_since.unwrap_or_default())
        .var("ALG", req.digest.unwrap_or_default())
        .var("METHOD", req.method)
        .var("RETURN", if req.return_body { "1" } else { "" })
        .var("KEEP", if req.keep_body { "1" } else { "" })
        .args(&args)
        .code(REQUEST);
    // With the task's `environment:`: its proxy variables reach curl.
    let mut run = ctx.script(&script);
    if let Some(body) = req.body {
        run = run.stdin(body);
    }
    let out = ctx.conn.exec(run).await?;
    if !out.success() {
        return Ok(Err(last_line(&out.stderr_str())));
    }
    Ok(parse(&out.stdout).ok_or_else(|| "unexpected answer from the host".to_owned()))
}

/// The request on the host. Without a body, curl's stdin is closed so it
/// never waits on the connection's. The proxy is chosen as Python's
/// urllib chooses it (ansible-core's `fetch_url`), not as curl would:
/// `HTTP_PROXY` counts when `http_proxy` is unset (curl reads only the
/// lower-case one), unless `REQUEST_METHOD` is set (urllib's CGI guard);
/// `all_proxy` does not (urllib has no such variable); `https_proxy`/
/// `HTTPS_PROXY` and `no_proxy`/`NO_PROXY` are read alike, the lower case
/// first.
const REQUEST: &str = r#"command -v curl >/dev/null 2>&1 || { echo "curl is not installed on this host" >&2; exit 127; }
if [ -z "${http_proxy+set}" ] && [ -n "${HTTP_PROXY+set}" ] && [ -z "${REQUEST_METHOD+set}" ]; then
  http_proxy=$HTTP_PROXY; export http_proxy
fi
unset all_proxy ALL_PROXY
d=${TMPDIR:-/tmp}
T=$(mktemp "$d/convoy-http.XXXXXXXX") || exit 1
H=$(mktemp "$d/convoy-http.XXXXXXXX") || { rm -f -- "$T"; exit 1; }
E=$(mktemp "$d/convoy-http.XXXXXXXX") || { rm -f -- "$T" "$H"; exit 1; }
trap 'rm -f -- "$H" "$E"; [ -n "$KEEP" ] || rm -f -- "$T"' EXIT
if [ -n "$IMS" ] && [ -e "$IMS" ]; then
  set -- "$@" -H "If-Modified-Since: $(LC_ALL=C date -u -r "$IMS" '+%a, %d %b %Y %H:%M:%S GMT')"
fi
W=$(curl -sS -g -D "$H" -o "$T" --max-time "$TO" -w '%{http_code} %{url_effective}' "$@" -- "$URL" 2>"$E")
rc=$?
[ "$METHOD" != HEAD ] || : > "$T"
s=$(sha1sum < "$T") || exit 1
g=
if [ -n "$ALG" ]; then g=$("${ALG}sum" < "$T") || exit 1; fi
printf '%s\n%s\n%s\n%s\n%s\n%s\n' "$rc" "$T" "$W" "${s%% *}" "${g%% *}" "$(wc -c < "$T")"
tail -n 1 -- "$E" | tr -d '\n'
printf '\0'
cat -- "$H"
printf '\0'
if [ -n "$RETURN" ]; then cat -- "$T"; fi
"#;

fn parse(out: &[u8]) -> Option<HttpResponse> {
    let mut parts = out.splitn(3, |&b| b == 0);
    let head = std::str::from_utf8(parts.next()?).ok()?;
    let headers = String::from_utf8_lossy(parts.next()?).into_owned();
    let body = parts.next().unwrap_or_default().to_vec();
    let mut lines = head.split('\n');
    let rc: i32 = lines.next()?.parse().ok()?;
    let body_file = lines.next()?.to_owned();
    let (code, url) = lines.next()?.split_once(' ')?;
    let body_sha1 = lines.next()?.to_owned();
    let body_digest = lines.next()?.to_owned();
    let body_size = lines.next()?.trim().parse().ok()?;
    let error = lines.next().unwrap_or_default().to_owned();
    let code: i64 = code.parse().unwrap_or(0);
    let mut response = HttpResponse {
        status: if rc != 0 || code == 0 { -1 } else { code },
        url: url.to_owned(),
        error: error.strip_prefix("curl: ").unwrap_or(&error).to_owned(),
        body_file,
        body_sha1,
        body_digest,
        body_size,
        body,
        ..HttpResponse::default()
    };
    // With redirects and `100 Continue`, curl writes one block per response: the last counts.
    let block = headers
        .split("\r\n\r\n")
        .filter(|b| b.starts_with("HTTP/"))
        .last()
        .unwrap_or_default();
    let mut lines = block.split("\r\n");
    if let Some(status) = lines.next() {
        response.reason = status.splitn(3, ' ').nth(2).unwrap_or_default().to_owned();
    }
    for line in lines {
        if let Some((name, value)) = line.split_once(':') {
            response
                .headers
                .push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
        }
    }
    Some(response)
}

/// The file name a response names in `Content-Disposition: …;
/// filename="x"`, without any directory part (Ansible avoids a traversal
/// the same way).
pub(super) fn disposition_filename(response: &HttpResponse) -> Option<String> {
    let value = response.header("content-disposition")?;
    let param = value.split(';').map(str::trim).find_map(|p| {
        let (k, v) = p.split_once('=')?;
        k.trim().eq_ignore_ascii_case("filename").then(|| v.trim())
    })?;
    let name = param.trim_matches('"');
    let name = name.rsplit('/').next().unwrap_or(name);
    (!name.is_empty()).then(|| name.to_owned())
}

/// The last path segment of a URL (Ansible's `url_filename`), `index.html`
/// when there is none.
pub(super) fn url_filename(url: &str) -> String {
    let without_query = url.split(['?', '#']).next().unwrap_or(url);
    let path = without_query
        .split_once("://")
        .map_or(without_query, |(_, rest)| {
            rest.find('/').map_or("", |i| &rest[i..])
        });
    match path.rsplit('/').next() {
        Some(name) if !name.is_empty() => name.to_owned(),
        _ => "index.html".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_last_response_of_a_redirect() {
        let out = b"0\n/tmp/convoy-http.x\n200 http://h/b\nabc\n\n5\n\0HTTP/1.0 301 Moved\r\nLocation: /b\r\n\r\nHTTP/1.0 200 OK\r\nContent-Length: 5\r\nContent-Type: text/plain\r\n\r\n\0hello";
        let r = parse(out).unwrap();
        assert_eq!((r.status, r.reason.as_str()), (200, "OK"));
        assert_eq!(r.url, "http://h/b");
        assert_eq!(r.header("content-type"), Some("text/plain"));
        assert_eq!(r.header("location"), None);
        assert_eq!(r.msg(), "OK (5 bytes)");
        assert_eq!(r.body, b"hello");
    }

    #[test]
    fn no_response_is_status_minus_one() {
        let out = b"7\n/tmp/x\n000 http://h/\nda39\n\n0\ncurl: (7) Failed to connect\0\0";
        let r = parse(out).unwrap();
        assert_eq!(r.status, -1);
        assert_eq!(r.msg(), "Request failed: (7) Failed to connect");
    }

    #[test]
    fn file_names_from_headers_and_urls() {
        let mut r = HttpResponse::default();
        r.headers.push((
            "content-disposition".into(),
            "attachment; filename=\"../../etc/x.tgz\"".into(),
        ));
        assert_eq!(disposition_filename(&r).as_deref(), Some("x.tgz"));
        assert_eq!(url_filename("http://h:8/a/b.txt?x=1"), "b.txt");
        assert_eq!(url_filename("http://h:8/a/"), "index.html");
        assert_eq!(url_filename("http://h:8"), "index.html");
    }
}
