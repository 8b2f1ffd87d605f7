//! What the example Ansible project (`playbooks/ansible-project`) found
//! different from ansible-core, each test named after what broke. The
//! compat case `example-project` compares the whole project with
//! ansible-core; these pin the two mechanisms on a fleet host directly.

mod support;

use support::inventory::app_inventory;
use support::run::run_in;
use support::{Fleet, workdir, write_file};

#[test]
fn role_params_were_not_seen_by_the_roles_handlers() {
    let fleet = Fleet::start(1);
    let work = workdir();
    let dir = work.path();
    app_inventory(&fleet, dir, "");
    write_file(dir, "roles/web/defaults/main.yml", "vhost: default\n");
    write_file(
        dir,
        "roles/web/tasks/main.yml",
        "- copy: {content: \"{{ vhost }}\\n\", dest: /srv/vhost, mode: '0644'}\n  notify: reload\n",
    );
    write_file(
        dir,
        "roles/web/handlers/main.yml",
        "- name: reload\n  shell: echo \"reloaded {{ vhost }}\" > /srv/reloaded\n",
    );
    write_file(
        dir,
        "play.yml",
        "- hosts: app\n  gather_facts: false\n  roles:\n    - role: web\n      vhost: www\n",
    );
    let r = run_in(dir, &["run", "play.yml", "-i", "inventory.yml"]);
    assert_eq!(r.code, 0, "{}", r.dump());
    assert_eq!(
        fleet.exec_ok(1, "cat /srv/vhost /srv/reloaded"),
        "www\nreloaded www\n"
    );
}

#[test]
fn ansible_managed_was_undefined_in_templates() {
    let fleet = Fleet::start(1);
    let work = workdir();
    let dir = work.path();
    app_inventory(&fleet, dir, "");
    write_file(
        dir,
        "templates/conf.j2",
        "{{ ansible_managed | comment }}\nfrom {{ template_path }} to {{ template_destpath }}\n",
    );
    write_file(
        dir,
        "play.yml",
        "- hosts: app\n  gather_facts: false\n  tasks:\n    - template: {src: conf.j2, dest: /srv/conf, mode: '0644'}\n",
    );
    let r = run_in(dir, &["run", "play.yml", "-i", "inventory.yml"]);
    assert_eq!(r.code, 0, "{}", r.dump());
    assert_eq!(
        fleet.exec_ok(1, "cat /srv/conf"),
        "#\n# Ansible managed\n#\nfrom conf.j2 to /srv/conf\n"
    );

    // ansible.cfg's string, with {file} filled in as ansible-core does.
    write_file(
        dir,
        "ansible.cfg",
        "[defaults]\nansible_managed = managed here: {file}\n",
    );
    let r = run_in(dir, &["run", "play.yml", "-i", "inventory.yml"]);
    assert_eq!(r.code, 0, "{}", r.dump());
    let full = std::fs::canonicalize(dir.join("templates/conf.j2")).unwrap();
    assert_eq!(
        fleet.exec_ok(1, "head -2 /srv/conf"),
        format!("#\n# managed here: {}\n", full.display())
    );

    // A strftime directive is refused at load, naming the line, with no host touched.
    write_file(
        dir,
        "ansible.cfg",
        "[defaults]\nansible_managed = managed on %Y-%m-%d\n",
    );
    fleet.exec_ok(1, "rm /srv/conf");
    let r = run_in(dir, &["run", "play.yml", "-i", "inventory.yml"]);
    assert_eq!(r.code, 3, "{}", r.dump());
    assert!(r.stderr.contains("ansible.cfg:2"), "{}", r.dump());
    assert!(r.stderr.contains("strftime"), "{}", r.dump());
    assert_eq!(
        fleet.exec_ok(1, "test -e /srv/conf && echo there || echo absent"),
        "absent\n"
    );
}
