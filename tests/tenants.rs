//! Tenant routing driven by a job, proved through a real nginx (and a real
//! haproxy) on a proxy host of the fleet (playbooks/tenants.yml): 30
//! tenants, two pools on two versions (blue serves 1.0.0, green 2.0.0), a
//! job converting the tenants six at a time on a db host (a script that
//! records the tenant and sleeps), and clients sending requests with each
//! tenant's `X-Tenant` header through the proxy during the whole job.
//!
//! Each answer is judged against the map the job published last, on the
//! run's own timeline (its `tenants: publishing` and `published` lines):
//! a pending tenant gets 1.0.0 only, an in-progress one the maintenance
//! answer (or the old version while that reload lands), a done one 2.0.0,
//! and only after the reload that published it; a tenant the map does not
//! name gets 1.0.0. One tenant's conversion fails: it goes back to 1.0.0,
//! and `convoy job resume --retry-failed` converts it. The proxy reloads
//! once per group and once at the end, never once per tenant; the map
//! rendered on the proxy host and the record beside it are read there.
//!
//! The figures (requests, per state, failures, wrong answers, reloads) go
//! to stderr (--nocapture).

mod support;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use support::client::Spawned;
use support::nginx::{AppServer, Nginx};
use support::run::{Run, run_in};
use support::{Fleet, workdir, write_file};

const STATE_DIR: &str = "/srv/convoy-proxy";
const APP_PORT: u16 = 8080;
const SITE: &str = "hello.test";
const TENANTS: usize = 30;
const GROUP: usize = 6;
/// Its conversion fails the first time (the script exits 1).
const FAILING: &str = "t13";
/// How long a reload lets old and new workers both accept connections
/// (as in tests/traffic.rs), and how late a stamped line may arrive.
const RELOAD_OVERLAP: Duration = Duration::from_secs(1);

fn tenant(i: usize) -> String {
    format!("t{i:02}")
}

/// h1 the proxy (`balancers`), h2 blue (1.0.0), h3 green (2.0.0), h4 the
/// db host the job runs on; the repository's playbook and templates.
struct Project {
    dir: tempfile::TempDir,
}

impl Project {
    fn new(fleet: &Fleet, proxy_vars: &str) -> Project {
        let dir = workdir();
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        for rel in [
            "playbooks/tenants.yml",
            "templates/nginx/tenants.conf.j2",
            "templates/haproxy/tenants.cfg.j2",
        ] {
            write_file(
                dir.path(),
                rel,
                &std::fs::read_to_string(root.join(rel)).unwrap(),
            );
        }
        let names: Vec<String> = (1..=TENANTS).map(tenant).collect();
        write_file(dir.path(), "files/tenants.txt", &(names.join("\n") + "\n"));
        let host = |group: &str, i: usize| {
            format!(
                "    {group}:\n      hosts:\n        {}:\n          ansible_host: {}\n",
                fleet.name(i),
                fleet.addr(i)
            )
        };
        let yaml = format!(
            "all:\n  vars:\n    convoy_ssh_config: {}\n    convoy_proxy_state_dir: {STATE_DIR}\n    app_name: hello\n    app_port: {APP_PORT}\n    proxy_server_name: {SITE}\n    nginx_pidfile: /srv/nginx/nginx.pid\n{proxy_vars}  children:\n{}{}{}{}",
            fleet.ssh_config().display(),
            host("balancers", 1),
            host("blue", 2),
            host("green", 3),
            host("db", 4),
        );
        write_file(dir.path(), "inventory.yml", &yaml);
        // The apps: each pool's host serves its version's VERSION file.
        for (i, version) in [(2, "1.0.0"), (3, "2.0.0")] {
            write_file(
                fleet.host_path(i, "/srv/app"),
                "VERSION",
                &format!("{version}\n"),
            );
            AppServer::start(fleet, i, "/srv/app", APP_PORT);
        }
        // The conversion: records the tenant, takes a while, fails for
        // FAILING while /srv/tenants/fail-FAILING exists.
        write_file(
            fleet.host_path(4, "/srv/tenants"),
            "convert",
            "#!/bin/sh\nset -u\necho \"start $1\" >> /srv/tenants/log\nsleep 2\nif [ -e /srv/tenants/fail-$1 ]; then echo \"cannot convert $1\" >&2; exit 1; fi\necho \"done $1\" >> /srv/tenants/log\n",
        );
        write_file(
            fleet.host_path(4, "/srv/tenants"),
            &format!("fail-{FAILING}"),
            "",
        );
        fleet.exec_ok(4, "chmod +x /srv/tenants/convert");
        Project { dir }
    }

    fn dir(&self) -> &Path {
        self.dir.path()
    }
}

/// One answer to `tenant`'s request (`None`: no `X-Tenant` header).
#[derive(Debug, Clone)]
struct Sample {
    tenant: Option<String>,
    at: Duration,
    answer: Result<(u16, String), String>,
}

/// What an answer is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Seen {
    Old,
    New,
    Maintenance,
    /// The proxy has no config for the site yet (nginx's default server
    /// answers 404, haproxy has no frontend on the port).
    NoSite,
    Other,
}

impl Sample {
    fn seen(&self) -> Seen {
        match &self.answer {
            Ok((200, b)) if b.trim() == "1.0.0" => Seen::Old,
            Ok((200, b)) if b.trim() == "2.0.0" => Seen::New,
            Ok((503, b)) if b.contains("maintenance: this tenant's data is being converted") => {
                Seen::Maintenance
            }
            Ok((404, b)) if b.contains("no such site") => Seen::NoSite,
            Err(e) if e.contains("refused") => Seen::NoSite,
            _ => Seen::Other,
        }
    }

    fn short(&self) -> String {
        let what = match &self.answer {
            Ok((s, b)) => format!("{s} {:?}", b.trim().chars().take(50).collect::<String>()),
            Err(e) => format!("error {e}"),
        };
        format!(
            "{:.3}s {}: {what}",
            self.at.as_secs_f64(),
            self.tenant.as_deref().unwrap_or("(no header)")
        )
    }
}

/// `GET /VERSION` with `Host: SITE` and, when given, `X-Tenant`.
fn request(address: &str, tenant: Option<&str>) -> Result<(u16, String), String> {
    let address: std::net::SocketAddr = address.parse().map_err(|e| format!("{e}"))?;
    let mut stream = TcpStream::connect_timeout(&address, Duration::from_secs(5))
        .map_err(|e| format!("connect {address}: {e}"))?;
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .map_err(|e| e.to_string())?;
    let header = tenant
        .map(|t| format!("X-Tenant: {t}\r\n"))
        .unwrap_or_default();
    let request =
        format!("GET /VERSION HTTP/1.0\r\nHost: {SITE}\r\n{header}Connection: close\r\n\r\n");
    stream
        .write_all(request.as_bytes())
        .map_err(|e| format!("send: {e}"))?;
    let mut response = String::new();
    stream
        .read_to_string(&mut response)
        .map_err(|e| format!("read: {e}"))?;
    let (head, body) = response
        .split_once("\r\n\r\n")
        .ok_or_else(|| format!("not an HTTP answer: {response:?}"))?;
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("no status in {head:?}"))?;
    Ok((status, body.to_owned()))
}

/// Client threads, each going round the tenants (and a tenant the map
/// does not name, and requests without the header) until stopped; bounded
/// in requests and time.
struct Clients {
    stop: Arc<AtomicBool>,
    samples: Arc<Mutex<Vec<Sample>>>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Clients {
    fn start(address: String, clock: Instant, threads: usize) -> Clients {
        let stop = Arc::new(AtomicBool::new(false));
        let samples = Arc::new(Mutex::new(Vec::new()));
        let mut keys: Vec<Option<String>> = (1..=TENANTS).map(|i| Some(tenant(i))).collect();
        keys.push(Some("zz-unknown".into()));
        keys.push(None);
        let threads = (0..threads)
            .map(|n| {
                let (stop, samples, address, keys) =
                    (stop.clone(), samples.clone(), address.clone(), keys.clone());
                std::thread::spawn(move || {
                    let mut k = n * 7;
                    let mut sent = 0;
                    while !stop.load(Ordering::Relaxed)
                        && sent < 20_000
                        && clock.elapsed() < Duration::from_secs(180)
                    {
                        let key = &keys[k % keys.len()];
                        let answer = request(&address, key.as_deref());
                        let at = clock.elapsed();
                        samples.lock().unwrap().push(Sample {
                            tenant: key.clone(),
                            at,
                            answer,
                        });
                        k += 1;
                        sent += 1;
                        std::thread::sleep(Duration::from_millis(5));
                    }
                })
            })
            .collect();
        Clients {
            stop,
            samples,
            threads,
        }
    }

    fn count(&self) -> usize {
        self.samples.lock().unwrap().len()
    }

    /// Waits (bounded) until `n` more answers came, then stops.
    fn finish_after(self, n: usize) -> Vec<Sample> {
        let target = self.count() + n;
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.count() < target && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads {
            t.join().unwrap();
        }
        let mut samples = Arc::try_unwrap(self.samples).unwrap().into_inner().unwrap();
        samples.sort_by_key(|s| s.at);
        samples
    }
}

/// One publish of the tenant map, on the test's clock: when convoy said it
/// starts and when it said the proxy serves it, and what it says why.
#[derive(Debug)]
struct Publish {
    why: String,
    start: Duration,
    end: Duration,
}

fn publishes(lines: &[(Duration, String)], run: &Run) -> Vec<Publish> {
    let starts: Vec<(Duration, String)> = lines
        .iter()
        .filter_map(|(at, l)| {
            let why = l.split("NOTE tenants: publishing (").nth(1)?;
            Some((*at, why.trim_end_matches(')').to_owned()))
        })
        .collect();
    let ends: Vec<Duration> = lines
        .iter()
        .filter(|(_, l)| l.contains("NOTE tenants: published ("))
        .map(|(at, _)| *at)
        .collect();
    assert_eq!(
        starts.len(),
        ends.len(),
        "a publish did not end well:\n{}",
        run.dump()
    );
    starts
        .into_iter()
        .zip(ends)
        .map(|((start, why), end)| Publish { why, start, end })
        .collect()
}

/// What a tenant may see while publish `k` (0-based) is the last one the
/// proxy serves, for this job: groups of GROUP in tenant order, publish k
/// starting group k+1 (and ending group k), the last one ending the last
/// group; FAILING back to the old version once its group ended. `None`
/// for k: before any publish.
fn allowed(tenant: Option<&str>, k: Option<usize>) -> Seen {
    let Some(k) = k else {
        return Seen::NoSite;
    };
    let Some(index) = tenant.and_then(|t| t.strip_prefix('t')?.parse::<usize>().ok()) else {
        return Seen::Old;
    };
    let group = (index - 1) / GROUP; // 0-based: started by publish `group`
    if k < group {
        Seen::Old
    } else if k == group {
        Seen::Maintenance
    } else if tenant == Some(FAILING) {
        Seen::Old
    } else {
        Seen::New
    }
}

/// Per tenant state: requests and answers.
#[derive(Default)]
struct Figures {
    total: usize,
    by_seen: BTreeMap<String, usize>,
    failed: Vec<String>,
    wrong: Vec<String>,
}

/// Judges every answer against the publish in force when it came: between
/// a publish's start and its end (plus the overlap) either the map before
/// or the one published; otherwise exactly the last one published.
fn judge(samples: &[Sample], pubs: &[Publish]) -> Figures {
    let mut f = Figures::default();
    for s in samples {
        f.total += 1;
        let seen = s.seen();
        *f.by_seen.entry(format!("{seen:?}")).or_default() += 1;
        let last = pubs.iter().rposition(|p| p.end + RELOAD_OVERLAP < s.at);
        let landing = pubs
            .iter()
            .position(|p| p.start <= s.at && s.at <= p.end + RELOAD_OVERLAP);
        let mut ok = vec![allowed(s.tenant.as_deref(), last)];
        if let Some(k) = landing {
            ok.push(allowed(s.tenant.as_deref(), k.checked_sub(1)));
            ok.push(allowed(s.tenant.as_deref(), Some(k)));
        }
        if seen == Seen::Other
            || (seen == Seen::NoSite && s.answer.is_err() && !ok.contains(&Seen::NoSite))
        {
            f.failed.push(s.short());
        } else if !ok.contains(&seen) {
            f.wrong.push(format!("{} (allowed {ok:?})", s.short()));
        }
    }
    f
}

fn job(args: &[&str]) -> Vec<String> {
    let mut all: Vec<String> = vec!["job".into()];
    all.extend(args.iter().map(|a| a.to_string()));
    all.extend(["-i".into(), "inventory.yml".into()]);
    all
}

/// The run id a `job run` printed (`NOTE job run RUN: path`).
fn run_id(stdout: &str) -> String {
    stdout
        .lines()
        .find_map(|l| l.split(" NOTE job run ").nth(1))
        .and_then(|rest| rest.split([':', ' ']).next())
        .unwrap_or_else(|| panic!("no `NOTE job run` line in:\n{stdout}"))
        .to_owned()
}

/// The traffic record on the proxy host.
fn record(fleet: &Fleet) -> String {
    let dir = fleet.host_path(1, STATE_DIR);
    std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(Result::ok)
        .find(|e| e.path().extension().is_some_and(|x| x == "traffic"))
        .map(|e| std::fs::read_to_string(e.path()).unwrap())
        .unwrap_or_default()
}

/// A proxy under test: where it listens, where convoy renders its config
/// on h1, whether that config routes a tenant to a pool, its reloads.
struct Proxy<'a> {
    how: &'static str,
    address: String,
    config: &'static str,
    routes: &'a dyn Fn(&str, &str, &str) -> bool,
    reloads: &'a dyn Fn() -> usize,
}

/// The whole conversion under traffic through `proxy`, then the failed
/// tenant converted by a resume, then a resume with nothing to do.
fn conversion_follows_the_job(fleet: &Fleet, project: &Project, proxy: &Proxy) {
    let (address, config, reloads, how) = (
        proxy.address.as_str(),
        proxy.config,
        proxy.reloads,
        proxy.how,
    );
    let groups = TENANTS.div_ceil(GROUP);
    let reloads_before = reloads();
    let clock = Instant::now();
    let clients = Clients::start(address.to_owned(), clock, 4);
    while clients.count() < 20 {
        std::thread::sleep(Duration::from_millis(20));
    }
    let (run, lines) = Spawned::start(project.dir(), job(&["run", "playbooks/tenants.yml"]), clock)
        .finish(Duration::from_secs(150));
    let end = clock.elapsed();
    let samples = clients.finish_after(300);
    // FAILING failed: the job's exit is 2, every other target done.
    assert_eq!(run.code, 2, "{}", run.dump());
    assert!(
        run.stdout.contains("30 targets: done=29 failed=1 "),
        "{}",
        run.stdout
    );
    let pubs = publishes(&lines, &run);
    let whys: Vec<&str> = pubs.iter().map(|p| p.why.as_str()).collect();
    let mut expected: Vec<String> = (1..=groups)
        .map(|g| format!("group {g}/{groups} starts"))
        .collect();
    expected.push(format!("group {groups}/{groups} ended"));
    assert_eq!(whys, expected, "{}", run.stdout);
    let reloaded = reloads() - reloads_before;
    let f = judge(&samples, &pubs);
    let during = samples
        .iter()
        .filter(|s| s.at > pubs[0].end && s.at < end)
        .count();
    eprintln!(
        "tenants through {how}: {TENANTS} tenants in {groups} groups, {} requests ({during} during the job, {} per tenant on average), answers {:?}, failed {}, wrong {}, publishes {}, proxy reloads {reloaded}, job {:.1}s",
        f.total,
        f.total / (TENANTS + 2),
        f.by_seen,
        f.failed.len(),
        f.wrong.len(),
        pubs.len(),
        end.as_secs_f64()
    );
    assert!(f.failed.is_empty(), "failed requests: {:?}", f.failed);
    assert!(f.wrong.is_empty(), "wrong answers: {:#?}", f.wrong);
    assert!(during >= 500, "only {during} requests during the job");
    // One reload per publish, never one per tenant: groups + 1.
    assert_eq!(reloaded, groups + 1, "{}", run.stdout);
    // Every tenant was seen in each of its states while the job ran.
    for i in 1..=TENANTS {
        let t = tenant(i);
        let seen: Vec<Seen> = samples
            .iter()
            .filter(|s| s.tenant.as_deref() == Some(t.as_str()))
            .map(Sample::seen)
            .collect();
        assert!(
            seen.contains(&Seen::Maintenance),
            "{t} never saw the maintenance answer"
        );
        let want = if t == FAILING { Seen::Old } else { Seen::New };
        assert_eq!(seen.last(), Some(&want), "{t} at the end");
    }
    // The hosts' state: the map rendered on the proxy, its record, the log.
    let rendered = std::fs::read_to_string(fleet.host_path(1, config)).unwrap();
    for i in 1..=TENANTS {
        let t = tenant(i);
        let pool = if t == FAILING { "blue" } else { "green" };
        assert!(
            (proxy.routes)(&rendered, &t, pool),
            "{t} not routed to {pool} in the rendered config:\n{rendered}"
        );
    }
    assert!(
        !rendered.contains("maintenance;") && !rendered.contains("_in_progress "),
        "{rendered}"
    );
    let rec = record(fleet);
    assert!(rec.contains(&format!("tenant {FAILING} pending")), "{rec}");
    assert!(
        rec.contains("tenant t01 done") && rec.contains("tenant t30 done"),
        "{rec}"
    );
    let log = std::fs::read_to_string(fleet.host_path(4, "/srv/tenants/log")).unwrap();
    assert_eq!(log.matches("start ").count(), TENANTS, "{log}");

    // Tenants match without regard to case, in both proxies.
    assert_sees(address, &["T01".to_owned()], Seen::New, "as T01");
    assert_sees(
        address,
        &[FAILING.to_uppercase()],
        Seen::Old,
        "in upper case",
    );

    // FAILING converted again by a resume: maintenance, then 2.0.0; the
    // others are not published differently (their records say done).
    std::fs::remove_file(fleet.host_path(4, &format!("/srv/tenants/fail-{FAILING}"))).unwrap();
    let id = run_id(&run.stdout);
    let resume = run_in(
        project.dir(),
        &job(&["resume", &id, "--retry-failed"])
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
    );
    assert_eq!(resume.code, 0, "{}", resume.dump());
    assert!(
        resume
            .stdout
            .contains("tenants: published (group 1/1 starts): done 29, in progress 1, pending 0"),
        "{}",
        resume.stdout
    );
    assert!(
        resume
            .stdout
            .contains("tenants: published (group 1/1 ended): done 30, in progress 0, pending 0"),
        "{}",
        resume.stdout
    );
    assert_eq!(reloads() - reloads_before, groups + 3);
    let answers: Vec<Seen> = (0..20)
        .map(|_| {
            Sample {
                tenant: None,
                at: Duration::ZERO,
                answer: request(address, Some(FAILING)),
            }
            .seen()
        })
        .collect();
    assert!(
        answers.iter().all(|s| *s == Seen::New),
        "{FAILING} after the resume: {answers:?}"
    );
    assert!(record(fleet).contains(&format!("tenant {FAILING} done")));

    // Nothing left to run: a resume publishes what the records say, and
    // nginx is not reloaded (the map is the same).
    let again = run_in(
        project.dir(),
        &job(&["resume", &id])
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
    );
    assert_eq!(again.code, 0, "{}", again.dump());
    assert!(
        again
            .stdout
            .contains("tenants: published (as recorded): done 30"),
        "{}",
        again.stdout
    );
    assert_eq!(reloads() - reloads_before, groups + 3);
}

#[test]
fn tenants_follow_the_job_through_nginx_each_on_its_version_or_in_maintenance() {
    let fleet = Fleet::start(4);
    let nginx = Nginx::start(&fleet, 1);
    let project = Project::new(&fleet, "");
    // The map names every tenant: `t01 hello_green;`.
    let routes =
        |config: &str, t: &str, pool: &str| config.contains(&format!("    {t} hello_{pool};\n"));
    conversion_follows_the_job(
        &fleet,
        &project,
        &Proxy {
            how: "nginx",
            address: nginx.address(),
            config: "/etc/nginx/conf.d/hello-tenants.conf",
            routes: &routes,
            reloads: &|| nginx.reloads(),
        },
    );
}

/// playbooks/tenants.yml's nginx files, validate and reload, as the test
/// replaces them for haproxy (as in playbooks/canary-haproxy.yml).
const HAPROXY_SECTION: &str = r#"    files:
      - template: templates/haproxy/tenants.cfg.j2
        dest: "{{ haproxy_conf_dir }}/{{ app_name }}-tenants.cfg"
    validate: haproxy -c -f {{ haproxy_config }} -f {{ haproxy_conf_dir }}
    reload: |
      pidfile={{ haproxy_pidfile }}
      pid=$(cat "$pidfile") || exit 1
      before=" $(pgrep -d ' ' -P "$pid") "
      kill -USR2 "$pid" || exit 1
      n=0
      until
        new=$(for w in $(pgrep -P "$pid"); do case "$before" in *" $w "*) ;; *) echo "$w" ;; esac; done)
        [ -n "$new" ] && awk '/^SigBlk:/ { b = substr($2, length($2) - 2, 1) }
          /^SigCgt:/ { c = substr($2, length($2) - 2, 1) }
          END { exit !(c ~ /[89a-f]/ && b !~ /[89a-f]/) }' "/proc/$pid/status"
      do
        n=$((n + 1))
        [ "$n" -le 200 ] || { echo "haproxy did not finish reloading" >&2; exit 1; }
        sleep 0.05
      done
"#;

#[test]
fn tenants_follow_the_job_through_haproxy_each_on_its_version_or_in_maintenance() {
    let fleet = Fleet::start(4);
    let haproxy = support::haproxy::Haproxy::start(&fleet, 1);
    let project = Project::new(&fleet, &support::haproxy::inventory_vars(4));
    let path = project.dir().join("playbooks/tenants.yml");
    let text = std::fs::read_to_string(&path).unwrap();
    let at = text.find("    files:\n").expect("a files key");
    std::fs::write(&path, format!("{}{HAPROXY_SECTION}", &text[..at])).unwrap();
    // Done tenants are in the done ACL; the others reach the default backend.
    let routes = |config: &str, t: &str, pool: &str| {
        let done = config
            .lines()
            .find(|l| l.contains("acl hello_tenant_done "))
            .unwrap_or_default();
        let listed = done.split_whitespace().any(|w| w == t);
        match pool {
            "green" => listed && config.contains("use_backend hello_green if hello_tenant_done"),
            _ => !listed && config.contains("default_backend hello_blue"),
        }
    };
    conversion_follows_the_job(
        &fleet,
        &project,
        &Proxy {
            how: "haproxy",
            address: haproxy.address(),
            config: "/srv/haproxy/conf.d/hello-tenants.cfg",
            routes: &routes,
            reloads: &|| haproxy.reloads(),
        },
    );
}

/// The tenants of group `g` (1-based).
fn group_of(g: usize) -> Vec<String> {
    ((g - 1) * GROUP + 1..=g * GROUP).map(tenant).collect()
}

/// What `tenant` gets through `address` now (five requests, all alike).
fn answers(address: &str, tenant: &str) -> Vec<Seen> {
    (0..5)
        .map(|_| {
            Sample {
                tenant: None,
                at: Duration::ZERO,
                answer: request(address, Some(tenant)),
            }
            .seen()
        })
        .collect()
}

fn assert_sees(address: &str, tenants: &[String], want: Seen, when: &str) {
    for t in tenants {
        let seen = answers(address, t);
        assert!(
            seen.iter().all(|s| *s == want),
            "{t} {when}: {seen:?}, wanted {want:?}"
        );
    }
}

#[test]
fn a_job_killed_mid_group_leaves_its_tenants_in_maintenance_and_a_resume_publishes_the_records() {
    let fleet = Fleet::start(4);
    let nginx = Nginx::start(&fleet, 1);
    let project = Project::new(&fleet, "");
    std::fs::remove_file(fleet.host_path(4, &format!("/srv/tenants/fail-{FAILING}"))).unwrap();
    let log =
        || std::fs::read_to_string(fleet.host_path(4, "/srv/tenants/log")).unwrap_or_default();
    let args = job(&["run", "playbooks/tenants.yml"]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut run = support::spawned::Spawned::start(Some(project.dir()), &args);
    // SIGKILL once group 3 is published and every one of its conversions
    // has started on the db host.
    run.wait_for_line("group 3's publish", Duration::from_secs(90), |l| {
        l.contains("NOTE tenants: published (group 3/5 starts)")
    });
    support::spawned::wait_until("group 3 started", Duration::from_secs(30), || {
        group_of(3)
            .iter()
            .all(|t| log().contains(&format!("start {t}\n")))
    });
    let id = run_id(&run.stdout());
    run.kill_hard();
    let address = nginx.address();
    // Nobody drives the proxy: it shows what was published last.
    assert_sees(&address, &group_of(1), Seen::New, "after the kill");
    assert_sees(&address, &group_of(3), Seen::Maintenance, "after the kill");
    assert_sees(&address, &group_of(5), Seen::Old, "after the kill");
    // The conversions go on on the host and record their end; the proxy
    // still keeps those tenants in maintenance (no record published yet).
    // Their records, as `job status` reads them from the host.
    let done = |t: &str| {
        let status = run_in(
            project.dir(),
            &job(&["status", &id, "--output", "json", "--limit-targets", t])
                .iter()
                .map(String::as_str)
                .collect::<Vec<_>>(),
        );
        status.stdout.contains("\"state\":\"done\"")
    };
    support::spawned::wait_until("group 3 recorded done", Duration::from_secs(30), || {
        group_of(3).iter().all(|t| done(t))
    });
    assert_sees(
        &address,
        &group_of(3),
        Seen::Maintenance,
        "before the resume",
    );
    let reloads = nginx.reloads();

    // The resume reads the records: group 3 is done, groups 4 and 5 run.
    let resume = run_in(
        project.dir(),
        &job(&["resume", &id])
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
    );
    assert_eq!(resume.code, 0, "{}", resume.dump());
    for line in [
        "tenants: published (group 1/2 starts): done 18, in progress 6, pending 6",
        "tenants: published (group 2/2 starts): done 24, in progress 6, pending 0",
        "tenants: published (group 2/2 ended): done 30, in progress 0, pending 0",
    ] {
        assert!(
            resume.stdout.contains(line),
            "{line:?} in:\n{}",
            resume.stdout
        );
    }
    assert_eq!(nginx.reloads() - reloads, 3, "{}", resume.stdout);
    let all: Vec<String> = (1..=TENANTS).map(tenant).collect();
    assert_sees(&address, &all, Seen::New, "after the resume");
    // Exactly once: every conversion started once, over both runs.
    let log = log();
    for t in &all {
        assert_eq!(
            log.matches(&format!("start {t}\n")).count(),
            1,
            "{t}:\n{log}"
        );
    }
    // `convoy traffic` shows the map from the proxy's record, and moves
    // nothing by hand for a play routed by tenant.
    let args = ["traffic", "playbooks/tenants.yml", "-i", "inventory.yml"];
    let shown = run_in(project.dir(), &args);
    assert_eq!(shown.code, 0, "{}", shown.dump());
    assert!(
        shown.stdout.contains("  tenants: done 30, in progress 0, pending 0 (pending to blue, done to green)\n    done        t01 t02 "),
        "{}",
        shown.stdout
    );
    let moved = run_in(project.dir(), &[&args[..], &["--to", "green"]].concat());
    assert_eq!(moved.code, 3, "{}", moved.dump());
    assert!(
        moved.stderr.contains("this play routes requests by tenant"),
        "{}",
        moved.stderr
    );
    assert_eq!(nginx.reloads() - reloads, 3);
    eprintln!(
        "tenants: killed in group 3/5, resumed: 2 groups run, 3 reloads, 30 tenants on 2.0.0, each converted once"
    );
}

/// A project without a fleet: the playbook with declared tenants, `by`
/// as given, rendering with the nginx or the haproxy template.
fn declared_project(by: &str, haproxy: bool) -> tempfile::TempDir {
    let dir = workdir();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for rel in [
        "playbooks/tenants.yml",
        "templates/nginx/tenants.conf.j2",
        "templates/haproxy/tenants.cfg.j2",
        "files/tenants.txt",
    ] {
        write_file(
            dir.path(),
            rel,
            &std::fs::read_to_string(root.join(rel)).unwrap(),
        );
    }
    let path = dir.path().join("playbooks/tenants.yml");
    let mut text = std::fs::read_to_string(&path).unwrap();
    text = text.replace(
        "      maintenance: 503\n",
        "      maintenance: 503\n      done: [acme.example]\n      in_progress: [globex]\n      pending: [initech]\n",
    );
    text = text.replace("by: header X-Tenant", &format!("by: {by}"));
    if haproxy {
        let at = text.find("    files:\n").unwrap();
        text = format!(
            "{}    files:\n      - template: templates/haproxy/tenants.cfg.j2\n        dest: /etc/haproxy/conf.d/hello-tenants.cfg\n    validate: haproxy -c -f /etc/haproxy/haproxy.cfg -f /etc/haproxy/conf.d\n",
            &text[..at]
        );
    }
    std::fs::write(&path, text).unwrap();
    write_file(
        dir.path(),
        "inventory.yml",
        "all:\n  vars: {app_name: hello, app_port: 8080}\n  children:\n    balancers: {hosts: {lb1: {ansible_host: 127.0.0.1}}}\n    blue: {hosts: {app1: {ansible_host: 127.0.0.2}}}\n    green: {hosts: {app2: {ansible_host: 127.0.0.3}}}\n    db: {hosts: {db1: {ansible_host: 127.0.0.4}}}\n",
    );
    dir
}

#[test]
fn declared_tenants_render_for_each_kind_of_by_and_the_local_nginx_and_haproxy_accept_them() {
    for (by, nginx_key, haproxy_key) in [
        (
            "header X-Tenant",
            "map $http_x_tenant $hello_tenant_pool {",
            "req.hdr(X-Tenant)",
        ),
        (
            "cookie tenant",
            "map $cookie_tenant $hello_tenant_pool {",
            "req.cook(tenant)",
        ),
        (
            "host",
            "map $host $hello_tenant_pool {",
            "req.hdr(host),field(1,:),lower",
        ),
    ] {
        for haproxy in [false, true] {
            let dir = declared_project(by, haproxy);
            let args = ["playbooks/tenants.yml", "-i", "inventory.yml"];
            let lint = run_in(dir.path(), &[&["lint"][..], &args].concat());
            assert_eq!(lint.code, 0, "{by}, haproxy {haproxy}: {}", lint.dump());
            assert!(lint.stdout.contains("validated with"), "{}", lint.stdout);
            let render = run_in(dir.path(), &[&["render"][..], &args].concat());
            assert_eq!(render.code, 0, "{}", render.dump());
            let out = &render.stdout;
            let wanted: Vec<String> = if haproxy {
                vec![
                    format!("acl hello_tenant_in_progress {haproxy_key} -i -m str globex\n"),
                    "http-request return status 503 ".into(),
                    format!("acl hello_tenant_done {haproxy_key} -i -m str acme.example\n"),
                    "use_backend hello_green if hello_tenant_done\n".into(),
                    "default_backend hello_blue\n".into(),
                ]
            } else {
                vec![
                    nginx_key.into(),
                    "    default hello_blue;\n".into(),
                    "    acme.example hello_green;\n".into(),
                    "    globex maintenance;\n".into(),
                    "    initech hello_blue;\n".into(),
                ]
            };
            for w in wanted {
                assert!(
                    out.contains(&w),
                    "{by}, haproxy {haproxy}: {w:?} in:\n{out}"
                );
            }
            // The pools' own hosts, not the job's (db1).
            assert!(
                out.contains("127.0.0.2:8080") && out.contains("127.0.0.3:8080"),
                "{out}"
            );
            assert!(out.contains("tenant acme.example done\n"), "{out}");
        }
    }
}

#[test]
fn a_map_nginx_rejects_keeps_the_one_before_serving_and_no_further_group_starts() {
    let fleet = Fleet::start(4);
    let nginx = Nginx::start(&fleet, 1);
    let project = Project::new(&fleet, "");
    std::fs::remove_file(fleet.host_path(4, &format!("/srv/tenants/fail-{FAILING}"))).unwrap();
    // The validator refuses any map that routes t07 to green: the publish
    // of group 2's end (with group 3's start) is rejected.
    let path = project.dir().join("playbooks/tenants.yml");
    let text = std::fs::read_to_string(&path).unwrap();
    let strict = "    validate: nginx -t && ! grep -q 't07 hello_green;' /etc/nginx/conf.d/hello-tenants.conf\n";
    std::fs::write(&path, text.replace("    validate: nginx -t\n", strict)).unwrap();
    // Check mode starts nothing and publishes nothing.
    let check = run_in(
        project.dir(),
        &job(&["run", "playbooks/tenants.yml", "-C"])
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
    );
    assert_eq!(check.code, 0, "{}", check.dump());
    assert!(
        check.stdout.contains("check: the proxy's tenant map would follow the targets (it shows done 0, in progress 0, pending 0); nothing was published"),
        "{}",
        check.stdout
    );
    assert!(
        !fleet
            .host_path(1, "/etc/nginx/conf.d/hello-tenants.conf")
            .exists()
    );
    assert_eq!(nginx.reloads(), 0);
    let run = run_in(
        project.dir(),
        &job(&["run", "playbooks/tenants.yml"])
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
    );
    assert_eq!(run.code, 2, "{}", run.dump());
    assert!(
        run.stdout.contains("NOTE tenants: publishing (group 3/5 starts) failed; the proxy keeps the map before (done 6, in progress 6, pending 18); no further group starts"),
        "{}",
        run.stdout
    );
    assert_eq!(nginx.reloads(), 2, "{}", run.stdout);
    let log = std::fs::read_to_string(fleet.host_path(4, "/srv/tenants/log")).unwrap();
    assert!(!log.contains("start t13"), "group 3 started:\n{log}");
    // The proxy serves the map before: group 2 converted, yet still in
    // maintenance (never on a version the proxy did not publish).
    let address = nginx.address();
    assert_sees(
        &address,
        &group_of(1),
        Seen::New,
        "after the rejected publish",
    );
    assert_sees(
        &address,
        &group_of(2),
        Seen::Maintenance,
        "after the rejected publish",
    );
    assert_sees(
        &address,
        &group_of(3),
        Seen::Old,
        "after the rejected publish",
    );
    let rendered =
        std::fs::read_to_string(fleet.host_path(1, "/etc/nginx/conf.d/hello-tenants.conf"))
            .unwrap();
    assert!(rendered.contains("    t07 maintenance;\n"), "{rendered}");
    assert!(
        record(&fleet).contains("tenant t07 in_progress\n"),
        "{}",
        record(&fleet)
    );

    // With the validator as it was, a resume publishes the records.
    std::fs::write(&path, text).unwrap();
    let id = run_id(&run.stdout);
    let resume = run_in(
        project.dir(),
        &job(&["resume", &id])
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
    );
    assert_eq!(resume.code, 0, "{}", resume.dump());
    assert!(
        resume
            .stdout
            .contains("tenants: published (group 1/3 starts): done 12, in progress 6, pending 12"),
        "{}",
        resume.stdout
    );
    let all: Vec<String> = (1..=TENANTS).map(tenant).collect();
    assert_sees(&address, &all, Seen::New, "after the resume");
}
