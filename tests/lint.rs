//! `convoy lint` reports every problem at once, with locations, and contacts
//! no host (the inventory's hosts have no sshd: a connection attempt would
//! fail the lint with "unreachable", and local hosts would leave a marker).

use std::process::Command;

/// `convoy lint -i inv.yml ARGS...` in `dir`: exit code, stdout, stderr
/// (with `dir` shown as `<dir>`).
fn lint_with(dir: &std::path::Path, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_convoy"))
        .current_dir(dir)
        .args(["lint", "-i", "inv.yml"])
        .args(args)
        .output()
        .unwrap();
    let clean = |b: &[u8]| String::from_utf8_lossy(b).replace(&dir.display().to_string(), "<dir>");
    (
        out.status.code().unwrap_or(-1),
        clean(&out.stdout),
        clean(&out.stderr),
    )
}

fn lint(dir: &std::path::Path, playbook: &str) -> (i32, String, String) {
    lint_with(dir, &[playbook])
}

fn project() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let write = |rel: &str, text: &str| {
        let p = dir.path().join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    };
    // 10.213.250.0/24 belongs to no fleet: nothing there answers, and lint must not try.
    write(
        "inv.yml",
        "all:\n  children:\n    app:\n      hosts:\n        a1: { ansible_host: 10.213.250.1, app_port: 80 }\n        a2: { ansible_host: 10.213.250.2 }\n    lb:\n      hosts:\n        p1: { ansible_host: 10.213.250.9 }\n",
    );
    write("templates/app.conf.j2", "port = {{ app_port }}\n");
    write(
        "templates/upstream.conf.j2",
        "upstream app {\n{% for h in upstreams %}  server {{ h.address }}:{{ backend_port }};\n{% endfor %}}\n",
    );
    write("app/VERSION", "1\n");
    write(
        "broken.yml",
        "- hosts: app\n  distribution:\n    name: app\n    version: \"{{ version }}\"\n    source: app\n    root: /srv/app\n  tasks:\n    - name: config\n      template: { src: templates/app.conf.j2, dest: /srv/app.conf }\n    - name: missing template\n      template: { src: templates/nope.j2, dest: /srv/x }\n  proxy:\n    hosts: lb\n    files:\n      - template: templates/upstream.conf.j2\n        dest: /etc/nginx/conf.d/app.conf\n",
    );
    write(
        "fine.yml",
        "- hosts: app\n  vars: { app_port: 8080, version: \"1.0.0\" }\n  distribution:\n    name: app\n    version: \"{{ version }}\"\n    source: app\n    root: /srv/app\n  tasks:\n    - template: { src: templates/app.conf.j2, dest: /srv/app.conf }\n",
    );
    dir
}

#[test]
fn lint_reports_every_problem_at_once_and_contacts_no_host() {
    let dir = project();
    let (code, _, stderr) = lint(dir.path(), "broken.yml");
    assert_eq!(code, 3, "{stderr}");
    // The undefined version (distribution), app_port on a2 (template), the missing
    // template file, and backend_port in the proxy template: four problems, each once.
    assert!(stderr.contains("undefined variable `version`"), "{stderr}");
    assert!(
        stderr.contains("undefined variable `app_port` in templates/app.conf.j2:1"),
        "{stderr}"
    );
    assert!(
        stderr.contains("template file not found: templates/nope.j2"),
        "{stderr}"
    );
    assert!(
        stderr.contains("undefined variable `backend_port`"),
        "{stderr}"
    );
    assert!(stderr.contains("broken.yml: 4 problem(s)"), "{stderr}");
    assert!(
        stderr.contains("--> <dir>/broken.yml:") || stderr.contains("--> broken.yml:"),
        "locations: {stderr}"
    );
    assert!(
        !stderr.contains("unreachable") && !stderr.contains("Connection"),
        "lint tried a host: {stderr}"
    );
}

#[test]
fn lint_passes_a_clean_playbook() {
    let dir = project();
    let (code, stdout, stderr) = lint(dir.path(), "fine.yml");
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("fine.yml: ok"), "{stdout}");
}

/// A project whose proxy section renders `server` blocks for nginx, with a
/// directive chosen by the variable `directive`.
fn proxy_project() -> tempfile::TempDir {
    let dir = project();
    let write = |rel: &str, text: &str| std::fs::write(dir.path().join(rel), text).unwrap();
    write(
        "templates/site.conf.j2",
        "upstream app {\n{% for h in groups['app'] %}    server {{ hostvars[h].ansible_host }}:8080;\n{% endfor %}}\nserver {\n    listen 8081;\n    location / {\n        {{ directive }} http://app;\n    }\n}\n",
    );
    write(
        "proxy.yml",
        "- hosts: lb\n  vars: { directive: proxy_pass }\n  proxy:\n    hosts: lb\n    files:\n      - template: templates/site.conf.j2\n        dest: /etc/nginx/conf.d/app.conf\n    validate: nginx -t\n    reload: nginx -s reload\n",
    );
    dir
}

#[test]
fn lint_validates_proxy_files_with_the_nginx_installed_here() {
    let dir = proxy_project();
    let (code, stdout, stderr) = lint_with(dir.path(), &["proxy.yml"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stdout.contains(
            "proxy files validated with `/usr/sbin/nginx -t` on this machine: 1 proxy host(s)"
        ),
        "{stdout}"
    );

    // A directive nginx does not know: rendering is fine, nginx is not.
    let (code, stdout, stderr) =
        lint_with(dir.path(), &["proxy.yml", "-e", "directive=proxy_passs"]);
    assert_eq!(code, 3, "{stdout}\n{stderr}");
    assert!(
        stderr.contains("`/usr/sbin/nginx -t` on this machine rejects the proxy files rendered for proxy host p1"),
        "{stderr}"
    );
    // nginx's own message, naming the file by its path on the proxy host and the line.
    assert!(
        stderr.contains(
            "nginx: [emerg] unknown directive \"proxy_passs\" in /etc/nginx/conf.d/app.conf:8"
        ),
        "{stderr}"
    );
    assert!(
        stderr.contains("rendered /etc/nginx/conf.d/app.conf (from templates/site.conf.j2)"),
        "{stderr}"
    );
    assert!(
        stderr.contains("> 8 |         proxy_passs http://app;"),
        "{stderr}"
    );
    // The entry of `files:` that rendered it.
    assert!(stderr.contains("proxy.yml:6:9"), "{stderr}");
    assert!(
        !stderr.contains("unreachable") && !stderr.contains("Connection"),
        "lint tried a host: {stderr}"
    );

    // --no-proxy-validate: rendered, not validated.
    let (code, stdout, stderr) = lint_with(
        dir.path(),
        &[
            "proxy.yml",
            "-e",
            "directive=proxy_passs",
            "--no-proxy-validate",
        ],
    );
    assert_eq!(code, 0, "{stderr}");
    assert!(!stdout.contains("validated"), "{stdout}");
}

#[test]
fn the_shipped_proxy_examples_pass_the_real_validators() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("inv.yml"),
        "all:\n  vars: { app_name: hello, app_port: 8080, app_root: /srv }\n  children:\n    app:\n      hosts:\n        a1: { ansible_host: 10.213.250.1 }\n        a2: { ansible_host: 10.213.250.2 }\n    balancers:\n      hosts:\n        p1: { ansible_host: 10.213.250.9 }\n",
    )
    .unwrap();
    for (playbook, validator) in [
        ("playbooks/proxy-deploy.yml", "/usr/sbin/nginx -t"),
        ("playbooks/proxy-domains.yml", "/usr/sbin/nginx -t"),
        ("playbooks/proxy-haproxy.yml", "/usr/sbin/haproxy -c"),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_convoy"))
            .current_dir(root)
            .args(["lint", playbook, "-i"])
            .arg(dir.path().join("inv.yml"))
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{playbook}: {stdout}{stderr}");
        assert!(
            stdout.contains(&format!(
                "proxy files validated with `{validator}` on this machine"
            )),
            "{playbook}: {stdout}"
        );
    }
}

/// The repository's `playbook` copied with its pool templates and the
/// hello app into a temp dir with a pooled inventory (no host answers),
/// its steps replaced by `steps`.
fn pooled_project(playbook: &str, steps: &str) -> tempfile::TempDir {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = tempfile::tempdir().unwrap();
    let copy = |rel: &str, edit: &dyn Fn(String) -> String| {
        let p = dir.path().join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, edit(std::fs::read_to_string(root.join(rel)).unwrap())).unwrap();
    };
    copy(playbook, &|t| {
        let edited = t.replace("steps: [10%, 50%, 100%]", &format!("steps: {steps}"));
        assert_ne!(edited, t);
        edited
    });
    for rel in [
        "templates/nginx/pools.conf.j2",
        "templates/haproxy/pools.cfg.j2",
        "app/hello/VERSION",
        "app/hello/bin/hello",
    ] {
        copy(rel, &|t| t);
    }
    std::fs::write(
        dir.path().join("inv.yml"),
        "all:\n  vars: { app_name: hello, app_port: 8080, app_root: /srv }\n  children:\n    balancers:\n      hosts:\n        p1: { ansible_host: 10.213.250.9 }\n    app:\n      children:\n        blue:\n          hosts:\n            b1: { ansible_host: 10.213.250.1 }\n        green:\n          hosts:\n            g1: { ansible_host: 10.213.250.2 }\n",
    )
    .unwrap();
    dir
}

#[test]
fn lint_validates_the_proxy_files_of_every_traffic_step_with_nginx_and_haproxy() {
    let steps = "[{clients: [10.1.0.0/24]}, {routes: [\"^/api/\"]}, {header: {X-Canary: [1]}}, {cookie: {canary: [beta]}}, 50%, 100%]";
    for (playbook, validator) in [
        ("playbooks/canary.yml", "/usr/sbin/nginx -t"),
        ("playbooks/canary-haproxy.yml", "/usr/sbin/haproxy -c"),
    ] {
        let dir = pooled_project(playbook, steps);
        let (code, stdout, stderr) = lint(dir.path(), playbook);
        assert_eq!(code, 0, "{playbook}: {stdout}{stderr}");
        for step in [
            "step 1/6: clients 10.1.0.0/24",
            "step 2/6: routes ^/api/",
            "step 3/6: header X-Canary 1",
            "step 4/6: cookie canary beta",
            "step 5/6: 50%",
            "step 6/6: 100%",
        ] {
            assert!(
                stdout.contains(&format!(
                    "proxy files ({step}) validated with `{validator}` on this machine"
                )),
                "{playbook}: {step} not validated:\n{stdout}"
            );
        }
    }
}

#[test]
fn lint_names_the_traffic_step_whose_proxy_files_nginx_rejects() {
    let dir = pooled_project(
        "playbooks/canary.yml",
        "[{header: {X-Canary: [1]}}, {cookie: {canary: [beta]}}, 100%]",
    );
    // The header and cookie maps get a third word: nginx refuses them,
    // and only the steps that render a map have one.
    let template = dir.path().join("templates/nginx/pools.conf.j2");
    let text = std::fs::read_to_string(&template).unwrap();
    let broken = text.replace(
        "\"{{ value }}\" {{ app_name }}_{{ traffic.to }};",
        "\"{{ value }}\" {{ app_name }}_{{ traffic.to }} extra;",
    );
    assert_ne!(broken, text);
    std::fs::write(&template, broken).unwrap();
    let (code, stdout, stderr) = lint(dir.path(), "playbooks/canary.yml");
    assert_eq!(code, 3, "{stdout}{stderr}");
    assert!(
        stderr.contains("error: traffic step 1/3: header X-Canary 1: `/usr/sbin/nginx -t` on this machine rejects the proxy files rendered for proxy host p1"),
        "{stderr}"
    );
    assert!(
        stderr.contains(
            "nginx: [emerg] invalid number of the map parameters in /etc/nginx/conf.d/hello.conf:15"
        ),
        "{stderr}"
    );
    assert!(
        stderr.contains(">15 |     \"1\" hello_green extra;"),
        "{stderr}"
    );
    // The files as the play stands (no step) were fine.
    assert!(
        stdout.contains("proxy files validated with `/usr/sbin/nginx -t` on this machine"),
        "{stdout}"
    );
}

#[test]
fn lint_validates_request_pools_with_nginx_and_haproxy() {
    let pools = "    request_pools:\n      heavy:\n        routes: [\"^/upload\", \"^/search\"]\n        methods: [POST, PUT]\n        hosts: blue\n        max_conns: 4\n        timeout: 30s\n      deletes:\n        methods: [DELETE]\n        hosts: app\n        max_conns: 2\n        timeout: 5s\n    pools:\n";
    for (playbook, validator, wanted) in [
        (
            "playbooks/canary.yml",
            "/usr/sbin/nginx -t",
            "server 10.213.250.1:8080 max_conns=4;",
        ),
        (
            "playbooks/canary-haproxy.yml",
            "/usr/sbin/haproxy -c",
            "use_backend hello_rp_heavy if hello_rp_heavy_route hello_rp_heavy_method",
        ),
    ] {
        let dir = pooled_project(playbook, "[{header: {X-Canary: [1]}}, 50%, 100%]");
        let path = dir.path().join(playbook);
        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::write(&path, text.replacen("    pools:\n", pools, 1)).unwrap();
        let (code, stdout, stderr) = lint(dir.path(), playbook);
        assert_eq!(code, 0, "{playbook}: {stdout}{stderr}");
        for step in ["", " (step 1/3: header X-Canary 1)", " (step 2/3: 50%)"] {
            assert!(
                stdout.contains(&format!(
                    "proxy files{step} validated with `{validator}` on this machine"
                )),
                "{playbook}: {stdout}"
            );
        }
        let out = Command::new(env!("CARGO_BIN_EXE_convoy"))
            .current_dir(dir.path())
            .args(["render", playbook, "-i", "inv.yml"])
            .output()
            .unwrap();
        let rendered = String::from_utf8_lossy(&out.stdout);
        assert!(rendered.contains(wanted), "{playbook}:\n{rendered}");
    }
}
