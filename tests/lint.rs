//! `convoy lint` reports every problem at once, with locations, and contacts
//! no host (the inventory's hosts have no sshd: a connection attempt would
//! fail the lint with "unreachable", and local hosts would leave a marker).

use std::process::Command;

fn lint(dir: &std::path::Path, playbook: &str) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_convoy"))
        .current_dir(dir)
        .args(["lint", playbook, "-i", "inv.yml"])
        .output()
        .unwrap();
    let clean = |b: &[u8]| String::from_utf8_lossy(b).replace(&dir.display().to_string(), "<dir>");
    (
        out.status.code().unwrap_or(-1),
        clean(&out.stdout),
        clean(&out.stderr),
    )
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
